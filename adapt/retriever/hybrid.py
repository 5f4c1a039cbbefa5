"""Hybrid search: the student fused at query time with BM25 and, optionally, the start encoder
as a bi-encoder (mean pooling, as it ships), as search engines offer it (Elasticsearch,
OpenSearch, Vespa, Weaviate).

Per query, each signal returns its top-`depth` (BM25: of the documents sharing a term with the
query); their union is the pool, and every signal scores every pooled document exactly. Nothing
is imputed, and exactness costs nothing extra: exact MaxSim and BM25 score the whole corpus to
find their top-k anyway (the pool reads those rows), and a faiss flat index gives back the stored
vectors of the few pooled documents it did not return. PLAID is approximate and keeps no
scorable vectors, so hybrid search needs the exact index.

Two fusions of a pool:
- `zscore`: sum over signals of weight x the signal's per-query z-score over the pool. Scale-free,
  so BM25's unbounded scores and cosine similarities add up; a signal constant over the pool
  carries no order and adds 0.
- `rrf`: reciprocal rank fusion, sum of weight / (60 + rank) over the signals whose own top-`depth`
  holds the document (Cormack et al. 2009; what the engines call RRF). Ranks only, no scores.

The default is `zscore` with equal weights over the signals given; over student, BM25 and
bi-encoder it was the best label-free setting on the dev splits (docs/benchmarks.md, "hybrid
search").

Computing the pools is the search; fusing them is cheap, so one `pools` call serves any number of
fusions (bench/hybrid.py fuses one set of pools a dozen ways).
"""

from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from adapt.data import Document, Query, Ranking, corpus_digest
from adapt.device import autocast, resolve
from adapt.errors import AdaptError
from adapt.io import read_json, write_json
from adapt.retriever.bm25 import BM25Index
from adapt.retriever.colbert import ColBERT
from adapt.retriever.dense import DenseEncoder, DenseIndex
from adapt.retriever.index import ExactIndex

if TYPE_CHECKING:
    from rich.progress import Progress

RRF_K = 60
METHODS = ("zscore", "rrf")
BIENCODER_RECORD = "adapt-biencoder.json"


@dataclass(frozen=True)
class Weights:
    """How much each signal counts; only ratios matter. A signal with weight 0 is not searched.

    >>> Weights(bm25=0.75, student=0.25).active
    ('student', 'bm25')
    """

    student: float = 0.0
    bm25: float = 0.0
    biencoder: float = 0.0

    def __post_init__(self) -> None:
        values = [getattr(self, f.name) for f in fields(self)]
        if any(not np.isfinite(w) or w < 0 for w in values) or not any(values):
            raise AdaptError(f"hybrid weights {self}: each must be >= 0, and one > 0")

    @property
    def active(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self) if getattr(self, f.name) > 0)

    @classmethod
    def equal(cls, signals: tuple[str, ...]) -> "Weights":
        """The label-free default: every signal alike (measured against the alternatives in
        docs/benchmarks.md, "hybrid search": equal weights over student, BM25 and bi-encoder
        were chosen on the dev splits).

        >>> Weights.equal(("student", "bm25"))
        Weights(student=0.5, bm25=0.5, biencoder=0.0)
        """
        return cls(**{name: 1 / len(signals) for name in signals})


def zscores(values: np.ndarray) -> np.ndarray:
    """Standardised over the pool; a constant signal (no order) becomes all zeros.

    >>> zscores(np.array([1.0, 2.0, 3.0])).round(4).tolist()
    [-1.2247, 0.0, 1.2247]
    >>> zscores(np.array([2.0, 2.0])).tolist()
    [0.0, 0.0]
    """
    spread = values.std()
    if not np.isfinite(spread) or spread <= 1e-12 * max(1.0, float(np.abs(values).max())):
        return np.zeros_like(values, dtype=np.float64)
    return (values - values.mean()) / spread


@dataclass
class Pool:
    """One query's candidates: the union of the signals' top-`depth` (corpus order), each
    signal's exact score of every one, and its rank in the signal's own top-`depth` (0: not
    there)."""

    doc_ids: list[str]
    scores: dict[str, np.ndarray]
    ranks: dict[str, np.ndarray]

    def only(self, signals: tuple[str, ...]) -> "Pool":
        """The pool those signals alone would have made: the documents one of them returned,
        scored by them. One search of every signal serves every subset's fusion.

        >>> pool = Pool(["a", "b"], {"student": np.array([1.0, 2.0]), "bm25": np.array([3.0, 0.0])},
        ...     {"student": np.array([0, 1]), "bm25": np.array([1, 0])})
        >>> pool.only(("student",)).doc_ids
        ['b']
        """
        keep = np.flatnonzero(np.any([self.ranks[s] > 0 for s in signals], axis=0))
        return Pool(
            [self.doc_ids[i] for i in keep],
            {s: self.scores[s][keep] for s in signals},
            {s: self.ranks[s][keep] for s in signals},
        )

    def fuse(self, weights: Weights, method: str = "zscore") -> list[tuple[str, float]]:
        """The pool ranked by the weighted fusion, best first; ties keep corpus order."""
        missing = [s for s in weights.active if s not in self.scores]
        if missing:
            raise AdaptError(f"hybrid weights name {', '.join(missing)}, which was not searched")
        fused = np.zeros(len(self.doc_ids))
        for name in weights.active:
            w = getattr(weights, name)
            if method == "zscore":
                fused += w * zscores(self.scores[name].astype(np.float64))
            elif method == "rrf":
                ranks = self.ranks[name]
                fused += np.where(ranks > 0, w / (RRF_K + ranks), 0.0)
            else:
                raise AdaptError(f"fusion '{method}': choose one of {', '.join(METHODS)}")
        order = np.argsort(-fused, kind="stable")
        return [(self.doc_ids[i], float(fused[i])) for i in order]


Pools = dict[str, Pool]


def fuse(pools: Pools, weights: Weights, method: str = "zscore", k: int = 100) -> Ranking:
    """Every query's pool fused, cut to its top-k: a ranking of document ids.

    >>> pool = Pool(["a", "b", "c"], {"student": np.array([3.0, 2.0, 1.0]),
    ...     "bm25": np.array([0.0, 9.0, 0.0])}, {})
    >>> [doc for doc, _ in fuse({"q": pool}, Weights(student=0.5, bm25=0.5), k=2)["q"]]
    ['b', 'a']
    """
    return {qid: pool.fuse(weights, method)[:k] for qid, pool in pools.items()}


class Batch(Protocol):
    """One signal's view of a batch of queries, in the signal's own document rows."""

    def top(self, query: int, depth: int) -> np.ndarray: ...

    def at(self, query: int, rows: np.ndarray) -> np.ndarray: ...


class Signal(Protocol):
    doc_ids: list[str]

    def batch(self, queries: list[Query], depth: int) -> Batch: ...


@dataclass
class FullBatch:
    """Scores of every document (exhaustive signals: exact MaxSim, BM25)."""

    scores: np.ndarray  # [n queries, n docs]
    matches_only: bool = False  # BM25: a document sharing no term (score 0) is not retrieved

    def top(self, query: int, depth: int) -> np.ndarray:
        row = self.scores[query]
        depth = min(depth, len(row))
        part = np.argpartition(-row, depth - 1)[:depth]
        if self.matches_only:
            part = part[row[part] > 0]
        return part[np.lexsort((part, -row[part]))]  # best first, ties by the index's order

    def at(self, query: int, rows: np.ndarray) -> np.ndarray:
        return self.scores[query, rows]


@dataclass
class ExactSignal:
    """A ColBERT student over its exact index: MaxSim of every document, as its search does."""

    index: ExactIndex
    model: ColBERT

    @property
    def doc_ids(self) -> list[str]:
        return self.index.doc_ids

    @torch.no_grad()
    def batch(self, queries: list[Query], depth: int) -> FullBatch:
        del depth  # every document is scored
        with autocast(self.model):
            encoded = self.model.encode_queries([q.text for q in queries])
        return FullBatch(self.index.score(encoded.float()).cpu().numpy())


@dataclass
class BM25Signal:
    index: BM25Index

    @property
    def doc_ids(self) -> list[str]:
        return self.index.doc_ids

    def batch(self, queries: list[Query], depth: int) -> FullBatch:
        del depth  # every document is scored
        return FullBatch(self.index.score_all(queries), matches_only=True)


@dataclass
class FaissBatch:
    vectors: np.ndarray  # [n queries, dim]
    found: np.ndarray  # [n queries, depth] rows of faiss's top-depth
    index: object  # faiss.IndexFlatIP

    def top(self, query: int, depth: int) -> np.ndarray:
        rows = self.found[query, :depth]
        return rows[rows >= 0]

    def at(self, query: int, rows: np.ndarray) -> np.ndarray:
        return self.index.reconstruct_batch(rows.astype(np.int64)) @ self.vectors[query]


@dataclass
class FaissSignal:
    """One vector per document in a faiss flat index: a dense student, or the start encoder as a
    bi-encoder. Its top-`depth` from faiss; other pooled documents scored by their stored
    vectors."""

    index: DenseIndex
    model: DenseEncoder

    @property
    def doc_ids(self) -> list[str]:
        return self.index.doc_ids

    @torch.no_grad()
    def batch(self, queries: list[Query], depth: int) -> FaissBatch:
        with autocast(self.model):
            encoded = self.model.encode([q.text for q in queries])
        vectors = encoded.float().cpu().numpy()
        _, found = self.index.index.search(vectors, min(depth, len(self.doc_ids)))
        return FaissBatch(vectors, found, self.index.index)


def student_signal(index: object, model: object) -> Signal:
    """The signal of a student and its index: exact MaxSim (ColBERT) or faiss (dense)."""
    if isinstance(index, ExactIndex) and isinstance(model, ColBERT):
        return ExactSignal(index, model)
    if isinstance(index, DenseIndex) and isinstance(model, DenseEncoder):
        return FaissSignal(index, model)
    raise AdaptError(
        f"hybrid search needs the student's exact or faiss index, not {type(index).__name__}: "
        "PLAID's compressed vectors cannot score the documents BM25 adds (adapt index --kind "
        "exact)"
    )


def _floored(values: np.ndarray) -> np.ndarray:
    """-inf (MaxSim of a passage with no scorable token) raised to the pool's lowest score.

    >>> _floored(np.array([2.0, -np.inf, 1.0])).tolist()
    [2.0, 1.0, 1.0]
    """
    finite = np.isfinite(values)
    if finite.all():
        return values
    return np.where(finite, values, values[finite].min() if finite.any() else 0.0)


class HybridSearcher:
    """The student's index with BM25's, and optionally the bi-encoder's, over one corpus."""

    def __init__(
        self, student: Signal, bm25: BM25Index | None = None, biencoder: Signal | None = None
    ) -> None:
        self.signals: dict[str, Signal] = {"student": student}
        if bm25 is not None:
            self.signals["bm25"] = BM25Signal(bm25)
        if biencoder is not None:
            self.signals["biencoder"] = biencoder
        self.doc_ids = student.doc_ids
        position = {d: i for i, d in enumerate(self.doc_ids)}
        # Each signal's rows, mapped to and from the student's: ids, never positions, cross over.
        self._to_common: dict[str, np.ndarray] = {}
        self._from_common: dict[str, np.ndarray] = {}
        for name, signal in self.signals.items():
            if len(signal.doc_ids) != len(position) or set(signal.doc_ids) != position.keys():
                raise AdaptError(
                    f"the {name} index holds {len(signal.doc_ids)} documents, the student's "
                    f"{len(position)}, not the same ones: index one corpus for both"
                )
            to_common = np.array([position[d] for d in signal.doc_ids])
            self._to_common[name] = to_common
            self._from_common[name] = np.argsort(to_common)

    def pools(
        self,
        queries: list[Query],
        depth: int,
        signals: tuple[str, ...] | None = None,
        batch_size: int = 32,
        progress: "Progress | None" = None,
    ) -> Pools:
        """Each query's pool: the union of `signals`' (default: all) top-`depth`, every one
        scored by every signal."""
        names = signals or tuple(self.signals)
        if unknown := [n for n in names if n not in self.signals]:
            raise AdaptError(f"no {', '.join(unknown)} index was given to hybrid search")
        task = progress.add_task("searching (hybrid)", total=len(queries)) if progress else None
        pools: Pools = {}
        for start in range(0, len(queries), batch_size):
            batch = queries[start : start + batch_size]
            views = {n: self.signals[n].batch(batch, depth) for n in names}
            for i, query in enumerate(batch):
                tops = {n: self._to_common[n][v.top(i, depth)] for n, v in views.items()}
                rows = np.unique(np.concatenate(list(tops.values())))
                scores, ranks = {}, {}
                for name, view in views.items():
                    values = view.at(i, self._from_common[name][rows]).astype(np.float64)
                    scores[name] = _floored(values)
                    rank = np.zeros(len(rows), dtype=np.int64)
                    rank[np.searchsorted(rows, tops[name])] = np.arange(1, len(tops[name]) + 1)
                    ranks[name] = rank
                pools[query.id] = Pool([self.doc_ids[r] for r in rows], scores, ranks)
            if progress is not None:
                progress.advance(task, len(batch))
        return pools

    def search(
        self,
        queries: list[Query],
        k: int,
        weights: Weights | None = None,
        method: str = "zscore",
        depth: int | None = None,
        progress: "Progress | None" = None,
    ) -> Ranking:
        """The fused top-k per query, pooling each weighted signal's top-`depth` (default k);
        by default every signal given counts alike."""
        weights = weights or Weights.equal(tuple(self.signals))
        if method not in METHODS:
            raise AdaptError(f"fusion '{method}': choose one of {', '.join(METHODS)}")
        pools = self.pools(queries, depth or k, weights.active, progress=progress)
        return fuse(pools, weights, method, k)


def bm25_path(index: Path) -> Path:
    """Where a student index's BM25 index lives: beside it, `index.pt` -> `index.pt.bm25`."""
    return index.with_name(index.name + ".bm25")


def biencoder_path(index: Path) -> Path:
    """Where a student index's bi-encoder index lives: `index.pt` -> `index.pt.biencoder`."""
    return index.with_name(index.name + ".biencoder")


def build_biencoder(
    model: str,
    docs: list[Document],
    maxlen: int,
    out: Path,
    batch_size: int = 32,
    progress: "Progress | None" = None,
) -> FaissSignal:
    """The start encoder as it ships (mean pooling, fp32 as the bi-encoder baseline runs it)
    over `docs` in a faiss flat index at `out`, with a record of the model and the corpus."""
    encoder = DenseEncoder.load(model, maxlen).to(resolve("auto"))
    index = DenseIndex.build(encoder, docs, maxlen, batch_size, progress)
    index.save(out)
    record = {"model": model, "maxlen": maxlen, "corpus_digest": corpus_digest(docs)}
    write_json(out / BIENCODER_RECORD, {**record, "documents": len(docs)})
    return FaissSignal(index, encoder)


def load_biencoder(path: Path, docs: list[Document] | None = None) -> FaissSignal:
    """The bi-encoder index at `path` and its encoder; given `docs`, refused for another
    corpus."""
    if not (path / BIENCODER_RECORD).is_file():
        raise AdaptError(f"{path}: no bi-encoder index (build it with `adapt index`)")
    record = read_json(path / BIENCODER_RECORD)
    if docs is not None and corpus_digest(docs) != record["corpus_digest"]:
        raise AdaptError(f"{path} holds another corpus than the one given: build it again")
    encoder = DenseEncoder.load(record["model"], record["maxlen"]).to(resolve("auto"))
    return FaissSignal(DenseIndex.load(path), encoder)
