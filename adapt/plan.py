"""What a run says before it works: its plan (stages, prompts, the time its scoring takes at the
rate last measured on this machine) and, on a rerun, what it keeps."""

from pathlib import Path

from adapt.config import Config
from adapt.inputs import Inputs
from adapt.progress import duration, estimate_s, known_rate, passage_chars, teacher_rate_key
from adapt.stages.guard import NO_CHECK_WITH_LABELS, NO_HELD_OUT
from adapt.teacher.cache import count_scores
from adapt.teacher.labels import is_labels, labels_path
from adapt.teacher.templates import FROM_POINTWISE


def plan(
    config: Config, inputs: Inputs, run_dir: Path, cache: Path, dtype: str, checking: bool
) -> str:
    """What this run will do and what it costs in teacher prompts, before any of it."""
    c, t, d = config, config.teacher, config.distill
    n = len(inputs.queries) or min(c.generate.queries, len(inputs.docs))
    pairwise = (
        "pair targets from the pointwise scores (no prompts)"
        if t.pairwise_prompt == FROM_POINTWISE
        else f"{n * d.n_pairs * (2 if t.both_orders else 1)} A/B prompts at most"
    )
    evaluation = (
        f"evaluated on {len(inputs.eval_queries)} judged queries beside BM25 and the "
        "start's encoder"
        if inputs.qrels
        else "no qrels: no evaluation"
    )
    labels = is_labels(t.model)
    known = None if labels else known_rate(teacher_rate_key(t, dtype, t.pointwise_prompt))
    chars = passage_chars(t, inputs.docs, t.pointwise_prompt)
    timing = (
        f"about {duration(estimate_s(known, n * d.top_k, chars))} of pointwise scoring per "
        f"iteration (measured on this machine {known['date']}: {known['prompts_per_s']:.2f} "
        f"prompts/s, scaled to these passages), less what the cache holds"
        if known
        else "the judgments answer at once"
        if labels
        else "the teacher's rate is measured on its first prompts and the time left printed"
    )
    held_out = len(inputs.docs) - (0 if inputs.queries else n)
    teacher = (
        f"labels (the judgments in {labels_path(c.data)})" if labels else f"{t.model} in {dtype}"
    )
    check = (
        ""
        if not checking
        else f"; no label-free check: {NO_CHECK_WITH_LABELS}"
        if labels
        else f"; no label-free check: {NO_HELD_OUT}"
        if held_out == 0
        else f"; then a label-free check on {min(c.generate.check_queries, held_out)} queries "
        "the teacher writes for held-out passages, choosing among the start and the "
        f"{d.checkpoints} checkpoint(s) each iteration keeps along its training, and the "
        "weights of each one's fusion with BM25 and the start's encoder (hybrid search)"
    )
    written = (
        ""
        if inputs.queries
        else f"the teacher writes {n} queries ({c.generate.prompt}) for {n} sampled "
        f"passages, kept where the start ranks their passage in its top-{d.top_k}; then "
    )
    return (
        f"plan: {run_dir}; {written}{c.iterations} iteration(s), each {n} queries x "
        f"top-{d.top_k} "
        f"= {n * d.top_k} pointwise prompts ({t.pointwise_prompt}) and {pairwise}; teacher "
        f"{teacher}; {len(inputs.docs)} passages; {evaluation}"
        f"{check}; {timing}. "
        f"Scores already in the cache ({cache}) are not asked again."
    )


def resuming(run_dir: Path, stages: dict[str, str], cache: Path) -> str | None:
    """What a rerun keeps, before it goes on: the finished stages and the stored scores."""
    done = [key for key in stages if (run_dir / key).exists()]
    if not done:
        return None
    last = max(done, key=lambda key: (run_dir / key).stat().st_mtime)
    scores = f"; {count_scores(cache)} teacher scores in {cache}"
    return (
        f"resuming {run_dir}: {len(done)} finished stages kept (the latest: "
        f"{last}){scores if cache.is_file() else ''}"
    )
