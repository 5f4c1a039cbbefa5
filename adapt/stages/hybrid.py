"""The hybrid stage: each evaluated student fused at query time with BM25 and the start's encoder
as a bi-encoder (adapt/retriever/hybrid.py), the report's hybrid rows (`iter-N/eval-hybrid.json`)
beside the student alone; `adapt search --hybrid` and `Run.search(hybrid=True)` search the same
way. Not for PLAID, whose vectors cannot score the documents BM25 adds.

The BM25 and bi-encoder indexes do not depend on the student, so a run builds them once
(`hybrid/bm25`, `hybrid/biencoder`, each with a record of its settings and corpus, refused for
another corpus). The signals' per-query z-scores are added with equal weights (the label-free
default, measured against other weights, agreement and RRF in docs/benchmarks.md, "Hybrid
search"), unless BM25 at another share of the sweep finds the check's passages significantly
better for that checkpoint (`iter-N/hybrid-weights.json`). Choosing by the check's mean alone
gained 1.6 points on the demo and lost 3.1 on Cranfield: its 50 written queries told the
weightings apart on five queries at most. A run without a check (the labels teacher, a bench, no
held-out passage) fuses equally. The weights used are also kept by checkpoint fingerprint in
`hybrid/weights.json`, where `adapt search --hybrid` finds them. Without a bi-encoder (a dense
student, or a start that ships as ColBERT) the student and BM25 share what BM25 leaves.
"""

import statistics
import time
from pathlib import Path

from rich.console import Console

from adapt.data import Document, Qrels, Query, Ranking
from adapt.evaluate import SIGNIFICANT, paired_test, per_query, summarize
from adapt.hub import weights_fingerprint
from adapt.io import read_json, write_json
from adapt.retriever.backend import Index, open_index
from adapt.retriever.bm25 import BM25Index
from adapt.retriever.hybrid import (
    FaissSignal,
    HybridSearcher,
    Weights,
    build_biencoder,
    fuse,
    load_biencoder,
    student_signal,
)
from adapt.retriever.student import Student
from adapt.stages import baselines
from adapt.stages.context import RunContext, record
from adapt.stages.evaluate import fingerprint as evaluation
from adapt.stages.guard import known_items

BM25_SHARES = (0.25, 0.5, 0.75)  # the sweep of docs/benchmarks.md, "Hybrid search"
CHOSEN = "weights.json"  # in a run's hybrid/: each checkpoint's chosen weights, by fingerprint


def signals(with_biencoder: bool) -> tuple[str, ...]:
    return ("student", "bm25", "biencoder") if with_biencoder else ("student", "bm25")


def candidates(with_biencoder: bool) -> list[Weights]:
    """The weightings the check chooses among, equal weights first (kept on a tie): BM25 at each
    share of the sweep, the student and the bi-encoder sharing the rest alike.

    >>> [w.bm25 for w in candidates(False)]
    [0.5, 0.25, 0.75]
    """
    equal = Weights.equal(signals(with_biencoder))
    rest = 2 if with_biencoder else 1  # the signals sharing what BM25 leaves
    swept = [
        Weights(student=(1 - w) / rest, bm25=w, biencoder=(1 - w) / rest * (rest - 1))
        for w in BM25_SHARES
    ]
    return [equal, *(w for w in swept if w != equal)]


def choose(searcher: HybridSearcher, queries: list[Query], with_biencoder: bool, k: int) -> dict:
    """The weighting whose fusion finds the check's passages best (nDCG@10, each written query's
    own passage relevant) among those significantly better than equal weights (paired t-test,
    the guard's rule for checkpoints); equal weights when none is. One search pools every
    signal; each weighting only fuses the pools."""
    qrels, pools = known_items(queries), searcher.pools(queries, k)
    weightings = candidates(with_biencoder)
    values = [per_query(qrels, fuse(pools, w, "zscore", k))["ndcg@10"] for w in weightings]
    tried = [
        {
            "weights": vars(w),
            "ndcg@10": statistics.fmean(v.values()),
            "vs_equal": paired_test(values[0], v),
        }
        for w, v in zip(weightings, values)
    ]
    better = [
        t
        for t in tried[1:]
        if t["vs_equal"]["delta"] > 0 and t["vs_equal"]["p_value"] < SIGNIFICANT
    ]
    best = max(better, key=lambda t: t["ndcg@10"], default=tried[0])
    return {"weights": best["weights"], "chosen_on": len(queries), "tried": tried}


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


def chosen(folder: Path, fingerprint: str, with_biencoder: bool) -> Weights:
    """The weights a run chose for the checkpoint with this weights fingerprint (its
    `hybrid/weights.json`), else equal weights."""
    path = folder / CHOSEN
    found = read_json(path).get(fingerprint) if path.is_file() else None
    return Weights(**found["weights"]) if found else Weights.equal(signals(with_biencoder))


def evaluate(
    index: object,
    student: Student,
    bm25: BM25Index,
    biencoder: FaissSignal | None,
    queries: list[Query],
    qrels: Qrels,
    k: int,
    ignore_identical_ids: bool,
    used: Weights,
) -> dict:
    """The fused ranking's metrics and per-query values (eval.json's shape), and its weights."""
    searcher = HybridSearcher(student_signal(index, student), bm25, biencoder)
    ranking = searcher.search(queries, k, used)
    values = per_query(qrels, ranking, ignore_identical_ids=ignore_identical_ids)
    return {
        "metrics": summarize(values),
        "per_query": values,
        "signals": label(used),
        "weights": vars(used),
        "method": "zscore",
        "settings": bm25.settings,
    }


def search(
    folder: Path, index: Index, student: Student, queries: list[Query], k: int, fingerprint: str
) -> Ranking:
    """The student fused with the BM25 (and bi-encoder) index a run keeps in `folder`
    (RUN/hybrid), with the weights the run chose for this checkpoint, as the report's rows."""
    bm25 = BM25Index.load(folder / "bm25")
    biencoder = load_biencoder(folder / "biencoder") if (folder / "biencoder").is_dir() else None
    searcher = HybridSearcher(student_signal(index, student), bm25, biencoder)
    return searcher.search(queries, k, chosen(folder, fingerprint, biencoder is not None))


def _encoder(run: RunContext) -> str | None:
    """The bi-encoder the hybrid fuses: the start's encoder, where it ships as one."""
    fresh = read_json(run.folder(0) / "start.json").get("fresh_head", False)
    applicable = "biencoder" in baselines.applicable(run.config, fresh)
    return run.config.student.model if applicable else None


def weights_step(
    run: RunContext,
    iteration: int,
    built: Index | None,
    upstream: str,
    check: tuple[list[Query], str] | None,
) -> Weights:
    """`iter-N/hybrid-weights.json`: the weights iteration N's hybrid fuses with, chosen on the
    label-free check's queries (`check`: the queries and their record) when the run has them,
    and kept by fingerprint in `hybrid/weights.json` for `adapt search --hybrid`."""
    encoder, s = _encoder(run), run.config.student
    out = run.folder(iteration) / "hybrid-weights.json"
    queries, queries_fp = check or ([], "")
    fp = record(
        "hybrid-weights",
        upstream,
        queries=queries_fp,
        k=run.config.search_k,
        candidates=[str(w) for w in candidates(encoder is not None)],
        rule="significantly better than equal",
        biencoder=[encoder, s.eval_doc_maxlen],
    )
    if run.done(out, fp):
        return Weights(**read_json(out)["weights"])
    began = time.time()
    equal = Weights.equal(signals(encoder is not None))
    found = {"checkpoint": run.name(iteration), "weights": vars(equal), "chosen_on": 0}
    if queries:
        bm25, biencoder = indexes(
            run.path / "hybrid", run.inputs.docs, encoder, s.eval_doc_maxlen, run.console
        )
        student = student_signal(
            built or open_index(run.index_path(iteration)[0]), run.student(iteration)
        )
        searcher = HybridSearcher(student, bm25, biencoder)
        found.update(choose(searcher, queries, encoder is not None, run.config.search_k))
        shown = ", ".join(f"{n} {v:.2g}" for n, v in found["weights"].items() if v)
        run.console.print(f"iteration {iteration}: hybrid weights chosen on the check: {shown}")
    table = run.path / "hybrid" / CHOSEN
    known = read_json(table) if table.is_file() else {}
    checkpoint = run.folder(iteration) / "checkpoint"
    write_json(table, {**known, weights_fingerprint(checkpoint): found})
    write_json(out, found)
    run.complete(out, fp, f"{run.name(iteration)}/hybrid-weights", began)
    return Weights(**found["weights"])


def step(
    run: RunContext,
    iteration: int,
    built: Index | None,
    upstream: str,
    check: tuple[list[Query], str] | None = None,
) -> None:
    """Iteration N's hybrid weights (chosen on the check's queries when the run has them), and
    with qrels `iter-N/eval-hybrid.json`, with the run's BM25 and bi-encoder indexes (`hybrid/`)
    built on first use."""
    path, kind = run.index_path(iteration)
    if kind == "plaid" or not (run.inputs.qrels or check):
        return
    used = weights_step(run, iteration, built, upstream, check)
    if not run.inputs.qrels:
        return
    encoder, s, inputs = _encoder(run), run.config.student, run.inputs
    out = run.folder(iteration) / "eval-hybrid.json"
    fp = record(
        "eval-hybrid",
        upstream,
        **evaluation(run.config, inputs.eval_digest),
        weights=str(used),
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
        used,
    )
    write_json(out, result)
    run.complete(out, fp, f"iter-{iteration}/eval-hybrid", began)
