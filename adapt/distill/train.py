"""The student's training loop: L_ZS = lambda_kd * L_KD + lambda_pair * L_pair (+ L_CL)."""

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import torch

from adapt.config import DistillConfig
from adapt.data import Document, Query
from adapt.distill import distributed
from adapt.distill.losses import contrastive_loss, kd_loss, pair_loss
from adapt.retriever.student import Student


@dataclass
class Example:
    """One query's training passages, teacher-sorted, with their teacher targets."""

    query: Query
    docs: list[Document]
    teacher_scores: list[float]
    pairs: list[tuple[int, int, float]]  # (i, j, P(docs[i] > docs[j])) from the pairwise teacher
    positive: int | None = None  # index of a labelled relevant passage, when labels exist


def load_examples(
    pointwise: list[dict],
    pairs: list[dict],
    queries: dict[str, Query],
    docs: dict[str, Document],
    nway: int,
) -> list[Example]:
    """Examples from a stage's `pointwise.jsonl` and `pairs.jsonl` rows: each query's `nway`
    teacher-best passages with their scores and the pair targets among them."""
    by_query = {row["query_id"]: row for row in pointwise}
    examples = []
    for row in pairs:
        point = by_query[row["query_id"]]
        n = min(nway, len(point["docs"]))
        if n < 2:
            continue  # nothing to distil from a single candidate
        examples.append(
            Example(
                queries[row["query_id"]],
                [docs[d] for d in point["docs"][:n]],
                point["scores"][:n],
                [(p[0], p[1], p[2]) for p in row["pairs"] if p[1] < n],
            )
        )
    return examples


def _collate(batch: list[Example]) -> dict[str, torch.Tensor]:
    n = max(len(e.docs) for e in batch)
    p = max(1, max(len(e.pairs) for e in batch))
    teacher = torch.zeros(len(batch), n)
    valid = torch.zeros(len(batch), n, dtype=torch.bool)
    pairs = torch.zeros(len(batch), p, 2, dtype=torch.long)
    target = torch.full((len(batch), p), 0.5)
    pair_valid = torch.zeros(len(batch), p, dtype=torch.bool)
    for row, example in enumerate(batch):
        teacher[row, : len(example.docs)] = torch.tensor(example.teacher_scores)
        valid[row, : len(example.docs)] = True
        for col, (i, j, prob) in enumerate(example.pairs):
            pairs[row, col] = torch.tensor([i, j])
            target[row, col] = prob
            pair_valid[row, col] = True
    return {
        "teacher": teacher,
        "valid": valid,
        "pairs": pairs,
        "target": target,
        "pair_valid": pair_valid,
    }


def train(
    model: Student,
    examples: list[Example],
    config: DistillConfig,
    doc_maxlen: int,
    seed: int,
    on_step: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train in place; returns one log row per step (losses, learning rate)."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    steps_per_epoch = math.ceil(len(examples) / config.batch_size)
    total = max(1, steps_per_epoch * config.epochs)
    warmup = int(total * config.warmup_ratio)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: (
            (step + 1) / (warmup + 1)
            if step < warmup
            else max(0.0, (total - step) / max(1, total - warmup))
        ),
    )
    use_cl = config.lambda_cl > 0 and any(e.positive is not None for e in examples)
    rank, world = distributed.rank_and_world()
    model.train()
    log: list[dict[str, float]] = []
    for _ in range(config.epochs):
        order = list(examples)
        rng.shuffle(order)  # the same order on every rank: same seed
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            share = batch[rank::world]
            micro = config.micro_batch or len(share) or 1
            optimizer.zero_grad()
            sums: dict[str, torch.Tensor] = {}
            for lo in range(0, len(share), micro):
                chunk = share[lo : lo + micro]
                losses = _losses(model, chunk, config, doc_maxlen, use_cl)
                # Losses are means over a chunk's queries: weighting each chunk by its share of
                # the global batch makes the summed gradients those of the whole batch at once.
                weight = len(chunk) / len(batch)
                (weight * losses["loss"]).backward()
                for name, value in losses.items():
                    sums[name] = sums.get(name, 0.0) + weight * value.detach()
            if world > 1:
                sums = distributed.sum_gradients_and_values(model, sums)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            row = {name: float(value) for name, value in sums.items()}
            row.update(lr=schedule.get_last_lr()[0], step=len(log) + 1)
            log.append(row)
            if on_step:
                on_step(row)
    model.eval()
    return log


def _losses(
    model: Student, batch: list[Example], config: DistillConfig, doc_maxlen: int, use_cl: bool
) -> dict[str, torch.Tensor]:
    """L_KD, L_pair (and L_CL) of one forward pass over `batch`, and their weighted sum `loss`."""
    device = next(model.parameters()).device
    tensors = {k: v.to(device) for k, v in _collate(batch).items()}
    width = tensors["valid"].shape[1]
    texts = [e.docs[i].full_text if i < len(e.docs) else "" for e in batch for i in range(width)]
    student = model.score_groups([e.query.text for e in batch], texts, width, doc_maxlen)
    losses = {
        "kd": kd_loss(student, tensors["teacher"], tensors["valid"], config.temperature),
        "pair": pair_loss(student, tensors["pairs"], tensors["target"], tensors["pair_valid"]),
    }
    total = config.lambda_kd * losses["kd"] + config.lambda_pair * losses["pair"]
    if use_cl:
        positive = torch.tensor(
            [e.positive if e.positive is not None else 0 for e in batch], device=device
        )
        losses["cl"] = contrastive_loss(student, tensors["valid"], positive)
        total = total + config.lambda_cl * losses["cl"]
    losses["loss"] = total
    return losses
