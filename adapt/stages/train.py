"""The train stage: the next iteration's student, trained on the stored targets and pairs
(`iter-N/checkpoint`, `train-log.jsonl`, and the checkpoints kept along the way in
`iter-N/step-S/checkpoint`). The losses and the loop are in adapt/distill/; `adapt
run` and `adapt train` (under torchrun too) train through here, so both give the same weights."""

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from adapt.config import Config, DistillConfig
from adapt.data import Document, Query, read_corpus, read_queries
from adapt.distill import distributed
from adapt.distill.train import (
    TRAINER_VERSION,
    Example,
    kept_steps,
    load_examples,
    total_steps,
    train,
    train_seed,
)
from adapt.errors import AdaptError
from adapt.io import read_jsonl, replace_dir, write_jsonl
from adapt.progress import make_progress
from adapt.retriever.student import Student, load_student
from adapt.stages.context import RunContext, record


def fingerprint(config: Config) -> dict:
    return {
        "distill": config.fingerprint("distill"),
        "doc_maxlen": config.student.doc_maxlen,
        "trainer": TRAINER_VERSION,
    }


def examples(
    targets: list[dict],
    pairs: list[dict],
    queries: dict[str, Query],
    docs: dict[str, Document],
    d: DistillConfig,
    source: Path,
) -> list[Example]:
    """The training examples of a stage's `targets.jsonl` and `pairs.jsonl` rows (`source`),
    joined by ids; none is an error."""
    found = load_examples(targets, pairs, queries, docs, d.min_pair_confidence)
    if not found:
        raise AdaptError(f"{source}: no query has two or more candidates to train on")
    return found


def train_student(
    model: Student,
    examples: list[Example],
    config: Config,
    iteration: int,
    on_step: Callable[[dict], None] | None = None,
    console: Console | None = None,
) -> list[dict]:
    """Train `model` in place, seeded by (distill.seed, `iteration`); one log row per step, each
    also given to `on_step`. With a `console`, a bar shows the steps and the loss."""
    d = config.distill
    seed, maxlen = train_seed(d.seed, iteration), config.student.doc_maxlen
    if console is None:
        return train(model, examples, d, maxlen, seed, on_step)
    with make_progress(console) as progress:
        label = f"training (iteration {iteration})"
        task = progress.add_task(label, total=total_steps(len(examples), d))

        def advance(row: dict) -> None:
            progress.update(task, advance=1, description=f"{label} loss {row['loss']:.3f}")
            if on_step:
                on_step(row)

        return train(model, examples, d, maxlen, seed, advance)


def save(model: Student, out: Path, metadata: dict) -> None:
    """A checkpoint written beside `out` and renamed into place: a kill leaves none half-written."""
    tmp = out.parent / f".{out.name}.tmp"
    model.save(tmp, metadata, location=out)
    replace_dir(tmp, out)


def step(run: RunContext, iteration: int, upstream: str) -> str:
    """`iter-N/checkpoint` (and `train-log.jsonl`): iteration N-1's student trained on
    iteration N's targets and pairs in a run directory, keeping `distill.checkpoints` along the
    way (`iter-N/step-S/checkpoint`, for the label-free check to choose among)."""
    folder = run.folder(iteration)
    out = folder / "checkpoint"
    fp = record("train", upstream, **fingerprint(run.config))
    if run.done(out, fp):
        return fp
    run.release_teacher()
    began = time.time()
    pairs = folder / "pairs.jsonl"
    queries, docs = run.inputs.query_by_id, run.inputs.doc_by_id
    found = examples(
        read_jsonl(folder / "targets.jsonl"),
        read_jsonl(pairs),
        queries,
        docs,
        run.config.distill,
        pairs,
    )
    start_from = run.folder(iteration - 1) / "checkpoint"
    model = load_student(run.config.student, str(start_from))  # trained in place
    for stale in folder.glob("step-*"):  # another setting's, or a killed run's
        shutil.rmtree(stale)
    kept = kept_steps(total_steps(len(found), run.config.distill), run.config.distill.checkpoints)

    def keep(row: dict) -> None:
        if row["step"] in kept:
            at = run.folder(iteration, row["step"]) / "checkpoint"
            save(model, at, {"adapt_iteration": iteration, "adapt_step": row["step"]})

    log = train_student(model, found, run.config, iteration, keep, console=run.console)
    write_jsonl(folder / "train-log.jsonl", log)
    save(model, out, {"adapt_iteration": iteration})
    run.complete(out, fp, f"iter-{iteration}/train", began)
    return fp


def train_files(
    checkpoint: str,
    targets: Path,
    pairs: Path,
    corpus: Path,
    queries: Path,
    out: Path,
    config: Config,
    iteration: int,
    console: Console,
) -> tuple[int, int, int] | None:
    """`adapt train`: one iteration's training on a run's stored targets and pairs, from
    `checkpoint` to `out`. Under torchrun the batch is split across the processes and rank 0
    alone reports and saves: (steps, queries, processes) there, None elsewhere."""
    found = examples(
        read_jsonl(targets),
        read_jsonl(pairs),
        {q.id: q for q in read_queries(queries)},
        {doc.id: doc for doc in read_corpus(corpus)},
        config.distill,
        pairs,
    )
    model = load_student(config.student, checkpoint)  # the recipe's kind and device
    rank, world = distributed.init_from_env(model.encoder.device)

    def say(row: dict) -> None:
        if rank == 0:
            console.print(f"step {row['step']}: loss {row['loss']:.4f}")

    log = train_student(model, found, config, iteration, say)
    if rank == 0:
        model.save(out)
    distributed.finish()
    return (len(log), len(found), world) if rank == 0 else None
