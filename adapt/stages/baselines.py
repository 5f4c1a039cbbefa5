"""The baselines stage: what every adapted student stands beside, BM25 and the start's encoder
as it ships (a bi-encoder: mean pooling, no ColBERT head). A user compares adapt with these, so
`adapt run` with qrels and every `adapt bench` domain compute them through this one module.

Each result is a small JSON (metrics, per-query values for paired tests, settings, wall time)
kept under a fingerprint of what it depends on, so reruns skip it.
"""

import hashlib
import json
import time
from pathlib import Path

from rich.console import Console

from adapt.config import Config
from adapt.data import Document, Query, Ranking
from adapt.evaluate import EVAL_VERSION, per_query, summarize
from adapt.inputs import Inputs
from adapt.io import read_json, write_json
from adapt.stages.context import RunContext

LABELS = {"bm25": "BM25", "biencoder": "bi-encoder (start's encoder, mean pooling)"}


def applicable(config: Config, fresh_start: bool) -> list[str]:
    """BM25 always; the bi-encoder when the start is a plain encoder given a fresh ColBERT head
    (a ColBERT checkpoint ships as ColBERT, and a dense student's start is the bi-encoder)."""
    return ["bm25", "biencoder"] if fresh_start and config.student.kind == "colbert" else ["bm25"]


def fingerprint(name: str, config: Config, inputs: Inputs) -> str:
    """What a baseline's numbers depend on: the content of the corpus, the evaluation queries
    and their judgments (the run's own digests of them: a file edited in place is new data),
    the depth, and for the bi-encoder its model and passage length."""
    s = config.student
    parts = {
        "corpus": inputs.corpus_digest,
        "evaluation": inputs.eval_digest,
        "search_k": config.search_k,
        "identical_ids": config.data.ignore_identical_ids,
        "eval": EVAL_VERSION,
        **({"model": s.model, "doc_maxlen": s.eval_doc_maxlen} if name == "biencoder" else {}),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def retrieve(
    name: str, config: Config, docs: list[Document], queries: list[Query]
) -> tuple[Ranking, dict]:
    """The baseline's top-`search_k` per query, and the settings it used."""
    if name == "bm25":
        from adapt.retriever.bm25 import bm25_search

        return bm25_search(docs, queries, config.search_k)
    from adapt.retriever.dense import exact_search

    s = config.student
    ranking = exact_search(s.model, s.eval_doc_maxlen, docs, queries, config.search_k)
    return ranking, {"model": s.model, "doc_maxlen": s.eval_doc_maxlen}


def evaluate(name: str, config: Config, inputs: Inputs, out: Path, console: Console) -> dict:
    """The baseline's evaluation of `inputs`' evaluation queries at `out`, computed unless
    stored for the same fingerprint."""
    fp = fingerprint(name, config, inputs)
    if out.is_file() and (stored := read_json(out)).get("fingerprint") == fp:
        return stored
    console.print(f"baseline: {LABELS[name]}")
    start = time.time()
    ranking, settings = retrieve(name, config, inputs.docs, inputs.eval_queries)
    values = per_query(inputs.qrels, ranking, ignore_identical_ids=config.data.ignore_identical_ids)
    result = {
        "fingerprint": fp,
        "label": LABELS[name],
        "settings": settings,
        "metrics": summarize(values),
        "per_query": values,
        "wall_s": round(time.time() - start, 3),
    }
    write_json(out, result)
    return result


def step(run: RunContext) -> None:
    """`baselines/` in a run with qrels: every reported number stands beside what the user has
    without adapt. Each baseline keeps its own record in its file."""
    if not run.inputs.qrels:
        return
    fresh = read_json(run.folder(0) / "start.json").get("fresh_head", False)
    wanted = applicable(run.config, fresh)
    for stale in (run.path / "baselines").glob("*.json"):
        if stale.stem not in wanted:  # e.g. a bi-encoder left from another start
            stale.unlink()
    for name in wanted:
        evaluate(name, run.config, run.inputs, run.path / "baselines" / f"{name}.json", run.console)
