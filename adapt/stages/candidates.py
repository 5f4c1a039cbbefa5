"""The candidates stage: each adaptation query's top-k by the previous iteration's student
(`iter-N/candidates.jsonl`, rows {query_id, hits: [[doc_id, score], ...]}), what the teacher
scores next."""

import time
from pathlib import Path

from adapt.config import Config
from adapt.data import Query, Ranking
from adapt.io import write_jsonl
from adapt.retriever.backend import Index
from adapt.stages.context import RunContext, record


def fingerprint(config: Config, queries_digest: str) -> dict:
    return {"top_k": config.distill.top_k, "queries": queries_digest}


def candidates(ranking: Ranking, queries: list[Query], out: Path) -> None:
    """Write `ranking`'s rows in the order of `queries`."""
    write_jsonl(out, ({"query_id": q.id, "hits": ranking[q.id]} for q in queries))


def step(run: RunContext, iteration: int, built: Index | None, upstream: str) -> str:
    """`iter-(N+1)/candidates.jsonl` from iteration N's student in a run directory."""
    out = run.folder(iteration + 1) / "candidates.jsonl"
    fp = record("candidates", upstream, **fingerprint(run.config, run.inputs.digest))
    if not run.done(out, fp):
        began = time.time()
        queries = run.inputs.queries
        ranking = run.search(iteration, built, queries, run.config.distill.top_k)
        candidates(ranking, queries, out)
        run.complete(out, fp, f"iter-{iteration + 1}/candidates", began)
    return fp
