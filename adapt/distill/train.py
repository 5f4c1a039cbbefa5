"""The student's training loop: L_ZS = lambda_kd * L_KD + lambda_pair * L_pair, with judged
queries + lambda_cl * L_CL, and with in-batch negatives + lambda_ib * L_IB."""

import math
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from adapt.config import DistillConfig
from adapt.data import Document, Query
from adapt.device import autocast
from adapt.distill import distributed
from adapt.distill.losses import contrastive_loss, kd_loss, pair_loss, standardize
from adapt.distill.targets import confident_pairs
from adapt.errors import AdaptError
from adapt.retriever.student import Student

# In the train stage's record: v2 averages L_pair over pairs, sums MaxSim in fp32 and knows
# distill.steps / schedule / student_scores, so a run trained before them trains again.
TRAINER_VERSION = "trainer-v2"


@dataclass
class Example:
    """One query's training passages in target order, their targets, pair targets, and which
    passages are judged positives (the labels teacher's rows; empty otherwise)."""

    query: Query
    docs: list[Document]
    targets: list[float]
    pairs: list[tuple[int, int, float]]  # (i, j, P(docs[i] > docs[j])), indices into `docs`
    positives: list[bool] = field(default_factory=list)


def load_examples(
    targets: list[dict],
    pairs: list[dict],
    queries: dict[str, Query],
    docs: dict[str, Document],
    min_pair_confidence: float = 0.0,
) -> list[Example]:
    """Examples from a stage's `targets.jsonl` and `pairs.jsonl` rows, joined by ids: each
    query's KD group (the `group` of its pairs row) with its targets, and the pairs among them
    that pass the confidence filter. The one loader `adapt run` and `adapt train` share."""
    by_query = {row["query_id"]: dict(zip(row["docs"], row["scores"])) for row in targets}
    judged = {row["query_id"]: set(row.get("positives", ())) for row in targets}
    examples = []
    for row in pairs:
        scores = by_query[row["query_id"]]
        group = row["group"]
        if len(group) < 2:
            continue  # nothing to distil from a single candidate
        position = {d: i for i, d in enumerate(group)}
        kept = confident_pairs(row["pairs"], min_pair_confidence)
        examples.append(
            Example(
                queries[row["query_id"]],
                [docs[d] for d in group],
                [scores[d] for d in group],
                [(position[p[0]], position[p[1]], p[2]) for p in kept],
                [d in judged[row["query_id"]] for d in group],
            )
        )
    return examples


def train_seed(seed: int, iteration: int) -> int:
    """The training shuffle's seed: one per (seed, iteration), whoever runs the stage."""
    return seed * 1000 + iteration


def _collate(batch: list[Example]) -> dict[str, torch.Tensor]:
    n = max(len(e.docs) for e in batch)
    p = max(1, max(len(e.pairs) for e in batch))
    teacher = torch.zeros(len(batch), n)
    valid = torch.zeros(len(batch), n, dtype=torch.bool)
    pairs = torch.zeros(len(batch), p, 2, dtype=torch.long)
    target = torch.full((len(batch), p), 0.5)
    pair_valid = torch.zeros(len(batch), p, dtype=torch.bool)
    positive = torch.zeros(len(batch), n, dtype=torch.bool)
    for row, example in enumerate(batch):
        teacher[row, : len(example.docs)] = torch.tensor(example.targets)
        valid[row, : len(example.docs)] = True
        positive[row, : len(example.positives)] = torch.tensor(example.positives, dtype=torch.bool)
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
        "positive": positive,
    }


def total_steps(n_examples: int, config: DistillConfig) -> int:
    """Optimizer steps of a training run: `distill.steps` when set, else `epochs` passes.

    >>> total_steps(100, DistillConfig(batch_size=8, epochs=2, steps=0))
    26
    >>> total_steps(100, DistillConfig(batch_size=8, epochs=2, steps=50))
    50
    """
    return config.steps or max(1, math.ceil(n_examples / config.batch_size) * config.epochs)


def kept_steps(total: int, checkpoints: int) -> list[int]:
    """The steps after which training keeps a checkpoint besides its last: `checkpoints` evenly
    spaced over `total` steps, the last of them the end (fewer when the steps are fewer).

    >>> kept_steps(26, 2), kept_steps(10, 4), kept_steps(1, 2), kept_steps(26, 1)
    ([13], [2, 5, 7], [], [])
    """
    return sorted({total * i // checkpoints for i in range(1, checkpoints)} - {0, total})


def learning_rate_factor(step: int, total: int, config: DistillConfig) -> float:
    """The learning rate's multiplier at `step`: linear warmup, then linear decay to zero or
    constant. Constant keeps every checkpoint along the run a fair "trained N steps" model,
    which is what the guard chooses among.

    >>> c = DistillConfig(warmup_ratio=0.2, schedule="constant")
    >>> [round(learning_rate_factor(s, 10, c), 3) for s in (0, 1, 2, 9)]
    [0.333, 0.667, 1.0, 1.0]
    >>> c.schedule = "linear"
    >>> [round(learning_rate_factor(s, 10, c), 3) for s in (0, 1, 2, 9)]
    [0.333, 0.667, 1.0, 0.125]
    """
    warmup = int(total * config.warmup_ratio)
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if config.schedule == "constant":
        return 1.0
    return max(0.0, (total - step) / max(1, total - warmup))


def batches(examples: list[Example], config: DistillConfig, rng: random.Random, total: int):
    """`total` batches of `batch_size` examples: passes over a fresh shuffle each, the last
    batch of a pass smaller (the same order on every rank: same seed)."""
    done = 0
    while True:
        order = list(examples)
        rng.shuffle(order)
        for start in range(0, len(order), config.batch_size):
            if done == total:
                return
            yield order[start : start + config.batch_size]
            done += 1


def train(
    model: Student,
    examples: list[Example],
    config: DistillConfig,
    doc_maxlen: int,
    seed: int,
    on_step: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train in place; returns one log row per step (losses, learning rate). `on_step` sees
    each row after its step, while the model holds that step's weights (checkpoints)."""
    if config.lambda_cl > 0 and not any(any(e.positives) for e in examples):
        raise AdaptError(
            f"distill.lambda_cl = {config.lambda_cl}, but no training query has a judged positive "
            "among its passages: L_CL needs the labels teacher's judgments"
        )
    torch.manual_seed(seed)
    rng = random.Random(seed)
    total = total_steps(len(examples), config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, total, config)
    )
    rank, world = distributed.rank_and_world()
    model.train()
    log: list[dict[str, float]] = []
    with dropout_rates(model, keep=config.dropout):
        for batch in batches(examples, config, rng, total):
            share = batch[rank::world]
            micro = config.micro_batch or len(share) or 1
            optimizer.zero_grad()
            sums: dict[str, torch.Tensor] = {}
            for lo in range(0, len(share), micro):
                chunk = share[lo : lo + micro]
                losses = _losses(model, chunk, config, doc_maxlen)
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
                model.eval()
                on_step(row)
                model.train()
    model.eval()
    return log


@contextmanager
def dropout_rates(model: torch.nn.Module, keep: bool) -> Iterator[None]:
    """Every dropout rate at 0 inside the block unless `keep`, restored after. The rates, not the
    modules' train flags: attention layers read their own flag and their dropout's rate."""
    modules = [] if keep else [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    rates = [m.p for m in modules]
    for module in modules:
        module.p = 0.0
    try:
        yield
    finally:
        for module, rate in zip(modules, rates):
            module.p = rate


def _losses(
    model: Student, batch: list[Example], config: DistillConfig, doc_maxlen: int
) -> dict[str, torch.Tensor]:
    """L_KD, L_pair (and L_CL when weighted) of one forward pass over `batch`, and their
    weighted sum `loss`."""
    device = next(model.parameters()).device
    tensors = {k: v.to(device) for k, v in _collate(batch).items()}
    width = tensors["valid"].shape[1]
    texts = [e.docs[i].full_text if i < len(e.docs) else "" for e in batch for i in range(width)]
    in_batch = config.lambda_ib > 0
    with autocast(model):  # bf16 forward where student.dtype says; weights and Adam stay fp32
        student = model.score_groups(
            [e.query.text for e in batch], texts, width, doc_maxlen, in_batch
        ).float()  # the losses in fp32
    if in_batch:  # [b, b x width]: each query's own group is its diagonal block
        every, student = student, student.view(len(batch), len(batch), width).diagonal().T
    if config.student_scores == "zscore":
        student = standardize(student, tensors["valid"])
    losses = {
        "kd": kd_loss(student, tensors["teacher"], tensors["valid"], config.temperature),
        "pair": pair_loss(student, tensors["pairs"], tensors["target"], tensors["pair_valid"]),
    }
    losses["loss"] = config.lambda_kd * losses["kd"] + config.lambda_pair * losses["pair"]
    if config.lambda_cl > 0:
        losses["cl"] = contrastive_loss(student, tensors["positive"], tensors["valid"])
        losses["loss"] = losses["loss"] + config.lambda_cl * losses["cl"]
    if in_batch:
        positive = in_batch_positives(batch, width).to(device)
        losses["ib"] = _in_batch_loss(every, positive, tensors["valid"], config)
        losses["loss"] = losses["loss"] + config.lambda_ib * losses["ib"]
    return losses


def in_batch_positives(batch: list[Example], width: int) -> torch.Tensor:
    """[b, b x width]: where each query's top-target passage sits in the batch. A passage in
    several queries' candidates is the positive wherever it sits, never its own negative."""
    ids = [e.docs[i].id if i < len(e.docs) else None for e in batch for i in range(width)]
    tops = [e.docs[max(range(len(e.targets)), key=e.targets.__getitem__)].id for e in batch]
    return torch.tensor([[doc == top for doc in ids] for top in tops])


def _in_batch_loss(
    every: torch.Tensor, positive: torch.Tensor, valid: torch.Tensor, config: DistillConfig
) -> torch.Tensor:
    """L_CL over the whole batch: each query's top-target passage the positive, its other
    candidates and every other query's candidates the negatives, on the scores as L_KD sees
    them (z-scored per query over the batch, when `student_scores` says)."""
    b, width = valid.shape
    all_valid = valid.reshape(1, b * width).expand(b, -1)
    if config.student_scores == "zscore":
        every = standardize(every, all_valid)
    return contrastive_loss(every, positive, all_valid)
