"""The pairs stage: each query's KD group and the pairs the pair loss compares, by document id
(`iter-N/pairs.jsonl`), with P(i > j) from the pairwise teacher's A/B prompts or, with no
prompts, from the targets (`from-pointwise`). Sampling is in adapt/distill/pairs.py."""

import time
from collections.abc import Callable

from rich.console import Console

from adapt.config import Config
from adapt.distill.pairs import from_scores, from_targets, prompts, sample
from adapt.inputs import Inputs
from adapt.io import read_jsonl, write_json, write_jsonl
from adapt.progress import TeacherBar, make_progress
from adapt.stages.context import RunContext, record
from adapt.teacher.scoring import TeacherScorer, pair_diagnostics
from adapt.teacher.templates import FROM_POINTWISE, load_template


def fingerprint(config: Config) -> dict:
    d, t = config.distill, config.teacher
    template = (
        FROM_POINTWISE
        if t.pairwise_prompt == FROM_POINTWISE
        else load_template(t.pairwise_prompt, "pairwise").digest
    )
    return {
        "template": template,
        "both_orders": t.both_orders,
        "sampling": [d.seed, d.nway, d.delta, d.n_pairs, d.temperature],
    }


def pairs(
    targets: list[dict],
    config: Config,
    iteration: int,
    inputs: Inputs,
    teacher: Callable[[], TeacherScorer],
    console: Console,
) -> tuple[list[dict], dict, TeacherBar | None]:
    """(`pairs.jsonl` rows, the pairwise teacher's diagnostics, the bar that measured its rate
    or None without prompts) for `targets.jsonl` rows. `teacher` loads the teacher, asked only
    when there are A/B prompts."""
    d = config.distill
    sampled = sample(targets, d, iteration)
    if config.teacher.pairwise_prompt == FROM_POINTWISE:
        return from_targets(sampled, targets, d.temperature), {"source": FROM_POINTWISE}, None
    items = prompts(sampled, inputs.query_by_id, inputs.doc_by_id)
    scorer = teacher()
    with make_progress(console) as progress:
        shown = TeacherBar(progress, "teacher: pairwise", scorer.pair_prompts(len(items)))
        scores = scorer.score_pairs(items, shown)
    return from_scores(sampled, scores), pair_diagnostics(scores), shown


def step(run: RunContext, iteration: int, upstream: str) -> str:
    """`iter-N/pairs.jsonl` (and the teacher's diagnostics) from its targets in a run
    directory."""
    folder = run.folder(iteration)
    out = folder / "pairs.jsonl"
    fp = record("pairs", upstream, **fingerprint(run.config))
    if run.done(out, fp):
        return fp
    began = time.time()
    targets = read_jsonl(folder / "targets.jsonl")
    rows, diagnostics, shown = pairs(
        targets, run.config, iteration, run.inputs, run.scorer, run.console
    )
    if shown is not None:
        run.record_rate(run.config.teacher.pairwise_prompt, shown)
    write_json(folder / "teacher-diagnostics.json", diagnostics)
    write_jsonl(out, rows)
    run.complete(out, fp, f"iter-{iteration}/pairs", began)
    return fp
