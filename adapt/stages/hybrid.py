"""The hybrid stage: each evaluated student fused at query time with BM25 and the start's encoder
as a bi-encoder (adapt/retriever/hybrid.py), the report's hybrid rows (`iter-N/eval-hybrid.json`)
beside the student alone; `adapt search --hybrid` and `Run.search(hybrid=True)` search the same
way. Not for PLAID, whose vectors cannot score the documents BM25 adds.

The BM25 and bi-encoder indexes do not depend on the student, so a run builds them once
(`hybrid/bm25`, `hybrid/biencoder`, each with a record of its settings and corpus, refused for
another corpus). The weights are the label-free default: equal per-query z-scores of the three
signals, measured against BM25's weight and RRF on dev splits (docs/benchmarks.md, "Hybrid
search"). Without a bi-encoder (a dense student, or a start that ships as ColBERT) the student and
BM25 weigh half each.
"""

import time
from pathlib import Path

from rich.console import Console

from adapt.data import Document, Qrels, Query, Ranking
from adapt.evaluate import per_query, summarize
from adapt.io import read_json, write_json
from adapt.retriever.backend import Index, open_index
from adapt.retriever.bm25 import BM25Index
from adapt.retriever.hybrid import (
    FaissSignal,
    HybridSearcher,
    Weights,
    build_biencoder,
    load_biencoder,
    student_signal,
)
from adapt.retriever.student import Student
from adapt.stages import baselines
from adapt.stages.context import RunContext, record
from adapt.stages.evaluate import fingerprint as evaluation


def weights(with_biencoder: bool) -> Weights:
    signals = ("student", "bm25", "biencoder") if with_biencoder else ("student", "bm25")
    return Weights.equal(signals)


def label(weights_used: Weights) -> str:
    """The signals a hybrid row adds to its student, as the report names them."""
    return "BM25 + bi-encoder" if weights_used.biencoder > 0 else "BM25"


def indexes(
    folder: Path,
    docs: list[Document],
    encoder: str | None,
    maxlen: int,
    console: Console,
) -> tuple[BM25Index, FaissSignal | None]:
    """The run's BM25 index, and the bi-encoder's when `encoder` names one, built once."""
    bm25_dir, biencoder_dir = folder / "bm25", folder / "biencoder"
    if (bm25_dir / "doc_ids.json").is_file():
        bm25 = BM25Index.load(bm25_dir, docs)
    else:
        console.print("hybrid: indexing the corpus for BM25")
        bm25 = BM25Index.build(docs)
        bm25.save(bm25_dir)
    if encoder is None:
        return bm25, None
    if biencoder_dir.is_dir():
        return bm25, load_biencoder(biencoder_dir, docs)
    console.print("hybrid: indexing the corpus with the start's encoder as a bi-encoder")
    return bm25, build_biencoder(encoder, docs, maxlen, biencoder_dir)


def evaluate(
    index: object,
    student: Student,
    bm25: BM25Index,
    biencoder: FaissSignal | None,
    queries: list[Query],
    qrels: Qrels,
    k: int,
    ignore_identical_ids: bool,
) -> dict:
    """The fused ranking's metrics and per-query values (eval.json's shape), and its weights."""
    used = weights(biencoder is not None)
    searcher = HybridSearcher(student_signal(index, student), bm25, biencoder)
    ranking = searcher.search(queries, k, used)
    values = per_query(qrels, ranking, ignore_identical_ids=ignore_identical_ids)
    return {
        "metrics": summarize(values),
        "per_query": values,
        "signals": label(used),
        "weights": {"student": used.student, "bm25": used.bm25, "biencoder": used.biencoder},
        "method": "zscore",
        "settings": bm25.settings,
    }


def search(folder: Path, index: Index, student: Student, queries: list[Query], k: int) -> Ranking:
    """The student fused with the BM25 (and bi-encoder) index a run keeps in `folder`
    (RUN/hybrid), with the default weights, as the report's rows."""
    bm25 = BM25Index.load(folder / "bm25")
    biencoder = load_biencoder(folder / "biencoder") if (folder / "biencoder").is_dir() else None
    searcher = HybridSearcher(student_signal(index, student), bm25, biencoder)
    return searcher.search(queries, k, weights(biencoder is not None))


def step(run: RunContext, iteration: int, built: Index | None, upstream: str) -> None:
    """`iter-N/eval-hybrid.json` in a run with qrels, with the run's BM25 and bi-encoder indexes
    (`hybrid/`) built on first use."""
    path, kind = run.index_path(iteration)
    if not run.inputs.qrels or kind == "plaid":
        return
    s, inputs = run.config.student, run.inputs
    fresh = read_json(run.folder(0) / "start.json").get("fresh_head", False)
    encoder = s.model if "biencoder" in baselines.applicable(run.config, fresh) else None
    out = run.folder(iteration) / "eval-hybrid.json"
    fp = record(
        "eval-hybrid",
        upstream,
        **evaluation(run.config, inputs.eval_digest),
        weights=str(weights(encoder is not None)),
        biencoder=[encoder, s.eval_doc_maxlen],
    )
    if run.done(out, fp):
        return
    began = time.time()
    bm25, biencoder = indexes(
        run.path / "hybrid", inputs.docs, encoder, s.eval_doc_maxlen, run.console
    )
    result = evaluate(
        built or open_index(path),
        run.student(iteration),
        bm25,
        biencoder,
        inputs.eval_queries,
        inputs.qrels,
        run.config.search_k,
        run.config.data.ignore_identical_ids,
    )
    write_json(out, result)
    run.complete(out, fp, f"iter-{iteration}/eval-hybrid", began)
