"""The score stage: the teacher's pointwise scores of each query's candidates, through the score
cache, re-sorted best first (`iter-N/pointwise.jsonl`), and the label-free check of the teacher:
how far its order agrees with the student's (`pointwise-diagnostics.json`). `adapt run`, its
shard runs, `adapt score` and the bench's teacher reranking all score here."""

import time
from pathlib import Path

from rich.console import Console

from adapt.config import Config, TeacherConfig
from adapt.data import Document, Query, read_candidates, read_corpus, read_queries
from adapt.distill.pairs import prompts, sample
from adapt.errors import AdaptError, ShardDone
from adapt.inputs import Inputs, digest
from adapt.io import read_jsonl, write_json, write_jsonl
from adapt.progress import TeacherBar, make_progress
from adapt.stages.context import RunContext, record
from adapt.stages.targets import targets
from adapt.teacher.agreement import NOISE_TAU, agreement_with_student
from adapt.teacher.cache import ScoreCache
from adapt.teacher.ray_engine import load_teacher
from adapt.teacher.scoring import TeacherScorer, score_candidates
from adapt.teacher.shard import in_shard
from adapt.teacher.templates import FROM_POINTWISE, load_template


def fingerprint(t: TeacherConfig, dtype: str) -> dict:
    return {
        "teacher": t.model,
        "template": load_template(t.pointwise_prompt, "pointwise").digest,
        "dtype": dtype,
        "max_document_tokens": t.max_document_tokens,
    }


def score(
    scorer: TeacherScorer,
    candidates: list[dict],
    queries: dict[str, Query],
    docs: dict[str, Document],
    console: Console,
    label: str = "teacher: pointwise",
) -> tuple[list[dict], TeacherBar]:
    """`pointwise.jsonl` records for candidate rows ({query_id, hits}), and the bar that
    measured the teacher's rate."""
    with make_progress(console) as progress:
        shown = TeacherBar(progress, label, sum(len(r["hits"]) for r in candidates))
        return score_candidates(scorer, candidates, queries, docs, shown), shown


def check_agreement(found: dict, floor: float | None, out: Path, console: Console) -> None:
    """Keep the teacher-student agreement (`found`, Kendall tau) at `out`; warn when it looks
    like noise, refuse to train below `floor` (teacher.min_student_agreement)."""
    write_json(out, found)
    tau = 0.0 if found["teacher_student_tau"] is None else found["teacher_student_tau"]
    message = (
        f"the teacher's scores barely agree with the student's (Kendall tau {tau:.3f} over "
        f"{found['queries']} queries): this teacher may be noise on this domain; "
        "`adapt teacher-eval` on a few labelled queries tells for sure"
    )
    if floor is not None and tau < floor:
        raise AdaptError(f"{message}. Refusing to train (teacher.min_student_agreement {floor})")
    if tau < NOISE_TAU:
        console.print(f"[yellow]warning:[/] {message}")


def score_shard(
    scorer: TeacherScorer,
    config: Config,
    inputs: Inputs,
    candidates: list[dict],
    iteration: int,
    shard: tuple[int, int],
    console: Console,
) -> None:
    """Score this shard's prompts of `iteration` into the cache, then stop the run. Its targets
    and pairs come from the same functions as the whole run's, so the merged run finds every
    prompt in the cache."""
    queries, docs = inputs.query_by_id, inputs.doc_by_id
    rows = [r for r in candidates if in_shard(r["query_id"], shard)]
    records, _ = score(scorer, rows, queries, docs, console, "teacher: pointwise (shard)")
    if config.teacher.pairwise_prompt != FROM_POINTWISE:
        sampled = sample(targets(config, inputs, records, rows), config.distill, iteration)
        items = prompts(sampled, queries, docs)
        with make_progress(console) as progress:
            total = scorer.pair_prompts(len(items))
            scorer.score_pairs(items, TeacherBar(progress, "teacher: pairwise (shard)", total))
    raise ShardDone(
        f"shard {shard[0]}/{shard[1]} of iteration {iteration}: {len(rows)} queries, "
        f"{scorer.computed} prompts scored, {scorer.reused} already stored in "
        f"{scorer.cache.path}. When every shard is done: `adapt merge` the caches into "
        "this run's, then run again without --shard"
    )


def step(run: RunContext, iteration: int, upstream: str) -> str:
    """`iter-N/pointwise.jsonl` from its candidates in a run directory; a shard run scores its
    share of the prompts and stops here."""
    folder, t = run.folder(iteration), run.config.teacher
    out = folder / "pointwise.jsonl"
    labels = {"labels": digest(sorted(run.inputs.labels.items()))} if run.labels else {}
    fp = record("pointwise", upstream, **fingerprint(t, run.teacher_dtype), **labels)
    if run.done(out, fp):
        return fp
    began = time.time()
    rows = read_jsonl(folder / "candidates.jsonl")
    if run.shard:
        score_shard(run.scorer(), run.config, run.inputs, rows, iteration, run.shard, run.console)
    inputs = run.inputs
    records, shown = score(run.scorer(), rows, inputs.query_by_id, inputs.doc_by_id, run.console)
    run.record_rate(t.pointwise_prompt, shown)
    diagnostics = folder / "pointwise-diagnostics.json"
    found = agreement_with_student(rows, records)
    check_agreement(found, t.min_student_agreement, diagnostics, run.console)
    write_jsonl(out, records)
    run.complete(out, fp, f"iter-{iteration}/pointwise", began)
    return fp


def score_files(
    candidates: Path,
    corpus: Path,
    queries: Path,
    out: Path,
    t: TeacherConfig,
    prompt: str,
    cache: Path,
    console: Console,
    shard: tuple[int, int] | None = None,
) -> tuple[TeacherScorer, int]:
    """`adapt score`: a candidates file scored by a pointwise teacher into `out` (only the
    queries of `shard`, if given): the scorer (what it computed and reused) and the prompts."""
    template = load_template(prompt, "pointwise")
    corpus_docs, query_list = read_corpus(corpus), read_queries(queries)
    rows = read_candidates(candidates, query_list, corpus_docs)
    if shard:
        rows = [r for r in rows if in_shard(r["query_id"], shard)]
    scorer = TeacherScorer(load_teacher(t), ScoreCache(cache), template)
    docs, by_id = {d.id: d for d in corpus_docs}, {q.id: q for q in query_list}
    records, _ = score(scorer, rows, by_id, docs, console)
    write_jsonl(out, records)
    return scorer, sum(len(r["hits"]) for r in rows)
