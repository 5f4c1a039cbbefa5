"""The guard stage, a label-free check of the adapted checkpoints against their start: which
checkpoint to use when there are no qrels to say (`guard/`).

The teacher writes one query for each of a seeded sample of passages that adaptation never
wrote a query for; each query's own passage is its one relevant document (the known-item test
behind InPars' and Promptagator's filters). Every checkpoint (each iteration's, and those kept
along its training) retrieves for these queries from the whole corpus, and the nDCG@10 of the
source passage makes the call: the checkpoint with the best mean, recommended only when it is
significantly better than the start, paired over queries.

The distillation targets play no part in the check, so a student that learned to agree with a
teacher no better than itself is not rewarded for the agreement. How often the call matches the
labelled one is measured in docs/benchmarks.md (bench/guard.py).
"""

import random
import time
from pathlib import Path

from rich.console import Console

from adapt.config import Config
from adapt.data import Document, Query, Ranking
from adapt.evaluate import SIGNIFICANT, paired_test, per_query, summarize
from adapt.io import read_json, read_jsonl, write_json, write_jsonl
from adapt.stages.context import RunContext, record
from adapt.stages.generate import write_queries, writing
from adapt.teacher import generation
from adapt.teacher.generation import source_of
from adapt.teacher.scoring import TeacherScorer
from adapt.teacher.templates import Template, load_template

NO_CHECK_WITH_LABELS = (
    "the labels teacher writes no queries; with judgments, held-out judged queries are the check"
)
NO_HELD_OUT = (
    "every passage is the source of an adaptation query, so none is held out for it "
    "(write queries for fewer passages with --generate-queries to keep some)"
)


def held_out_passages(docs: list[Document], n: int, seed: int, exclude: set[str]) -> list[Document]:
    """`n` passages (at most those left), seeded apart from the adaptation sample, none of them
    a source of an adaptation query."""
    pool = [d for d in docs if d.id not in exclude]
    return random.Random(f"check-{seed}").sample(pool, min(n, len(pool)))


def known_items(queries: list[Query]) -> dict[str, dict[str, int]]:
    """Qrels with each written query's source passage as its one relevant document."""
    return {q.id: {source_of(q): 1} for q in queries}


def call(start: dict[str, float], adapted: dict[str, float]) -> dict:
    """The recommendation from per-query nDCG@10 of the start and the adapted student: the
    adapted one only when it is significantly better; the start when it is not (a tie costs
    nothing to keep the start) or when it is significantly worse."""
    test = paired_test(start, adapted)
    significant = test["p_value"] < SIGNIFICANT
    if significant and test["delta"] > 0:
        outcome = "better"
    elif significant:
        outcome = "worse"
    else:
        outcome = "no evidence either way"
    return {"outcome": outcome, "recommend": "adapted" if outcome == "better" else "start", **test}


def sources(run_dir: Path) -> set[str]:
    """The passages a corpus-only run wrote its adaptation queries for: never checked on."""
    written = run_dir / "generated" / "written.jsonl"
    return {r["passage_id"] for r in read_jsonl(written)} if written.is_file() else set()


def queries_fingerprint(
    config: Config, template: Template, dtype: str, corpus_digest: str, excluded: set[str]
) -> dict:
    return {
        **writing(config, template, dtype),
        "queries": config.generate.check_queries,
        "corpus": corpus_digest,
        "excluded": sorted(excluded),
    }


def write_check_queries(
    scorer: TeacherScorer,
    config: Config,
    template: Template,
    docs: list[Document],
    excluded: set[str],
    out: Path,
    console: Console,
) -> None:
    """The check's queries (`guard/queries.jsonl`): written by the teacher for held-out
    passages, none a source of an adaptation query."""
    g = config.generate
    passages = held_out_passages(docs, g.check_queries, config.distill.seed, excluded)
    rows, _ = write_queries(scorer, config, template, passages, console, "writing check queries")
    write_jsonl(out, generation.records(generation.unique_queries(rows)))


def check_queries(out: Path) -> list[Query]:
    return [Query(r["_id"], r["text"]) for r in read_jsonl(out)]


def fingerprint(config: Config, queries_fingerprint: str) -> dict:
    return {"queries": queries_fingerprint, "k": config.search_k}


START = "iter-0"


def choose(values: dict[str, dict[str, float]]) -> dict:
    """The call among checkpoints from their per-query nDCG@10 on the check (`START` is the
    start): the adapted checkpoint with the best mean, recommended only when significantly
    better than the start (`call`); the earliest of equal means."""
    adapted = [name for name in values if name != START]
    best = max(adapted, key=lambda name: sum(values[name].values()) / max(1, len(values[name])))
    verdict = call(values[START], values[best])
    return {
        **verdict,
        "checkpoint": best,
        "use": best if verdict["recommend"] == "adapted" else START,
    }


def check(queries: list[Query], rankings: dict[str, Ranking], out: Path) -> None:
    """The start against every adapted checkpoint on the check's queries, each one's source
    passage relevant (`guard/check.json`): `rankings` by checkpoint name (`iter-1/step-13`),
    the start's `START`, in training order."""
    if not queries:  # the report says why there is no call
        write_json(out, {"queries": 0, "reason": NO_HELD_OUT})
        return
    qrels = known_items(queries)
    values = {name: per_query(qrels, ranking) for name, ranking in rankings.items()}
    ndcg = {name: v["ndcg@10"] for name, v in values.items()}
    write_json(
        out,
        {
            "queries": len(queries),
            "checkpoints": {name: summarize(v) for name, v in values.items()},
            "per_query": ndcg,
            "call": choose(ndcg),
        },
    )


def training_order(name: str) -> tuple[int, float]:
    """A checkpoint's place in training: `iter-1/step-13` before `iter-1`, before `iter-2`."""
    iteration, _, step = name.removeprefix("iter-").partition("/step-")
    return int(iteration), int(step) if step else float("inf")


def read_check(path: Path) -> dict:
    """`guard/check.json` with its checkpoints in training order; one written before
    checkpoints were kept (by iteration number, the last one judged) is read in today's names."""
    found = read_json(path)
    if "iterations" in found:
        names = {i: f"iter-{i}" for i in found["iterations"]}
        found["checkpoints"] = {names[i]: v for i, v in found.pop("iterations").items()}
        found["per_query"] = {names[i]: v for i, v in found["per_query"].items()}
        last = f"iter-{found['call'].pop('iteration')}"
        use = last if found["call"]["recommend"] == "adapted" else START
        found["call"].update(checkpoint=last, use=use)
    for key in ("checkpoints", "per_query"):
        if key in found:
            found[key] = dict(sorted(found[key].items(), key=lambda kv: training_order(kv[0])))
    return found


def queries_step(run: RunContext) -> tuple[list[Query], str]:
    """`guard/queries.jsonl` in a run directory (written while the teacher is loaded for the
    first iteration's scores), and its record."""
    out = run.path / "guard" / "queries.jsonl"
    template = load_template(run.config.generate.prompt, "generate")
    excluded = sources(run.path)
    fp = record(
        "check-queries",
        **queries_fingerprint(
            run.config, template, run.teacher_dtype, run.inputs.corpus_digest, excluded
        ),
    )
    if not run.done(out, fp):
        began = time.time()
        write_check_queries(
            run.scorer(), run.config, template, run.inputs.docs, excluded, out, run.console
        )
        run.complete(out, fp, "guard/queries", began)
    return check_queries(out), fp


def step(run: RunContext, upstream: str) -> tuple[list[Query], str] | None:
    """`guard/check.json` once the last iteration is indexed: the start and every checkpoint of
    every iteration (those kept along training too) retrieve for the check's queries, which are
    returned with their record for the hybrid stage to choose its weights on (None: no check)."""
    out = run.path / "guard" / "check.json"
    if run.labels:  # the report says why there is no call
        if not run.done(out, upstream):
            write_json(out, {"queries": 0, "reason": NO_CHECK_WITH_LABELS})
            run.complete(out, upstream, "guard/check", time.time())
        return None
    queries, queries_fp = queries_step(run)
    fp = record("check", upstream, **fingerprint(run.config, queries_fp))
    if run.done(out, fp):
        return queries, queries_fp
    began = time.time()
    k, last = run.config.search_k, run.config.iterations
    points = [(0, 0)] + [(i, s) for i in range(1, last + 1) for s in [*run.kept(i), 0]]
    rankings = (
        {run.name(i, s): run.search(i, None, queries, k, s) for i, s in points} if queries else {}
    )
    check(queries, rankings, out)
    run.complete(out, fp, "guard/check", began)
    return queries, queries_fp
