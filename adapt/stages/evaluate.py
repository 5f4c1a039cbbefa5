"""The evaluate stage: an iteration's ranking of the judged queries against their qrels
(`iter-N/eval.json`, with the ranking itself in `eval-run.jsonl`)."""

import time
from pathlib import Path

from adapt.config import Config
from adapt.data import Qrels, Ranking
from adapt.evaluate import EVAL_VERSION, per_query, summarize
from adapt.io import write_json, write_jsonl
from adapt.retriever.backend import Index
from adapt.stages.context import RunContext, record


def fingerprint(config: Config, eval_digest: str) -> dict:
    return {
        "k": config.search_k,
        "version": EVAL_VERSION,
        "queries": eval_digest,
        "identical_ids": config.data.ignore_identical_ids,
    }


def evaluate(
    ranking: Ranking, qrels: Qrels, out: Path, ignore_identical_ids: bool = False
) -> dict[str, float]:
    """The mean metrics; per-query values (for paired tests) go to `out` beside them."""
    values = per_query(qrels, ranking, ignore_identical_ids=ignore_identical_ids)
    write_json(out, {"metrics": summarize(values), "per_query": values})
    write_jsonl(
        out.parent / "eval-run.jsonl", ({"query_id": q, "hits": h} for q, h in ranking.items())
    )
    return summarize(values)


def step(
    run: RunContext, iteration: int, built: Index | None, upstream: str, step: int = 0
) -> None:
    """`eval.json` of iteration N's checkpoint (the one kept after `step`, 0: its last) in a run
    with qrels; the metrics are printed as they come."""
    inputs = run.inputs
    if not inputs.qrels:
        return
    out = run.folder(iteration, step) / "eval.json"
    fp = record("eval", upstream, **fingerprint(run.config, inputs.eval_digest))
    if run.done(out, fp):
        return
    began = time.time()
    ranking = run.search(iteration, built, inputs.eval_queries, run.config.search_k, step)
    metrics = evaluate(ranking, inputs.qrels, out, run.config.data.ignore_identical_ids)
    run.complete(out, fp, f"{run.name(iteration, step)}/eval", began)
    at = f" (kept at step {step})" if step else ""
    run.console.print(
        f"iteration {iteration}{at}: " + "  ".join(f"{m} {v * 100:.1f}" for m, v in metrics.items())
    )
