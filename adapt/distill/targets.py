"""The targets stage: what the student is pulled toward, per query and document id, on disk.

A target is a weighted sum of per-query z-scores of up to four signals over the student's
candidates: the teacher's pointwise scores, the student's own retrieval scores, BM25's, and the
start encoder's as it ships (a bi-encoder: mean pooling, cosine).

    target = w_t z(teacher) + w_b z(bm25) + w_e z(bi-encoder) + (1 - w_t - w_b - w_e) z(student)

One normalisation rule for every target, plain (w_teacher = 1) or fused: each signal is z-scored
per query, so `distill.temperature` alone sets how sharp the KD softmax is. (Raw teacher scores
would make sharpness depend on the prompt: query likelihood spreads about 0.5 nats over a top-8,
Yes/No log-odds several.) A weak teacher's scores are noise around the student's order; fusing
keeps the student's order where the teacher has no opinion; BM25 adds the lexical evidence a
start without domain training lacks, and the bi-encoder what its encoder already knows when it
ranks better pooled than token by token (the demo, docs/benchmarks.md). All are label-free.
"""

import statistics
from dataclasses import dataclass

from adapt.errors import AdaptError


@dataclass(frozen=True)
class Weights:
    teacher: float = 1.0
    bm25: float = 0.0
    biencoder: float = 0.0

    def __post_init__(self) -> None:
        parts = (self.teacher, self.bm25, self.biencoder)
        if not (all(0 <= w <= 1 for w in parts) and sum(parts) <= 1 + 1e-9):
            raise AdaptError(
                f"distill.teacher_weight {self.teacher}, bm25_weight {self.bm25} and "
                f"biencoder_weight {self.biencoder}: each must lie in [0, 1] and their sum at "
                "most 1 (the student gets the rest)"
            )

    @property
    def student(self) -> float:
        return max(0.0, 1.0 - self.teacher - self.bm25 - self.biencoder)


def zscores(values: list[float]) -> list[float]:
    """Per-query standardisation; a constant signal carries no order and becomes all zeros.

    >>> zscores([1.0, 2.0, 3.0])
    [-1.224744871391589, 0.0, 1.224744871391589]
    """
    mean = statistics.fmean(values)
    spread = statistics.pstdev(values) if len(values) > 1 else 0.0
    return [(v - mean) / spread if spread > 0 else 0.0 for v in values]


def build_targets(
    pointwise: list[dict],
    candidates: list[dict],
    weights: Weights,
    bm25: dict[str, dict[str, float]] | None = None,
    biencoder: dict[str, dict[str, float]] | None = None,
) -> list[dict]:
    """`targets.jsonl` rows {query_id, docs, scores}, best first by the weighted z-sum.

    `pointwise` rows are the teacher's ({query_id, docs, scores}), `candidates` the student's
    ({query_id, hits: [[doc_id, score], ...]}), `bm25` and `biencoder` query id -> doc id ->
    score (needed when their weight is > 0). Every lookup is by id, so row order does not
    matter.

    >>> rows = [{"query_id": "q", "docs": ["a", "b", "c"], "scores": [3.0, 2.0, 1.0]}]
    >>> hits = [{"query_id": "q", "hits": [["c", 9.0], ["b", 8.0], ["a", 1.0]]}]
    >>> build_targets(rows, hits, Weights(teacher=0.5))[0]["docs"]
    ['b', 'a', 'c']
    """
    if (weights.bm25 > 0 and bm25 is None) or (weights.biencoder > 0 and biencoder is None):
        raise ValueError("a weighted signal's scores are missing")
    student = {r["query_id"]: dict((d, s) for d, s, *_ in r["hits"]) for r in candidates}
    rows = []
    for row in pointwise:
        qid, docs = row["query_id"], row["docs"]
        signals = [(weights.teacher, row["scores"])]
        if weights.student > 0:
            signals.append((weights.student, [student[qid][d] for d in docs]))
        if weights.bm25 > 0:
            signals.append((weights.bm25, [bm25[qid].get(d, 0.0) for d in docs]))
        if weights.biencoder > 0:
            signals.append((weights.biencoder, [biencoder[qid][d] for d in docs]))
        total = [0.0] * len(docs)
        for weight, values in signals:
            total = [t + weight * z for t, z in zip(total, zscores(values))]
        order = sorted(range(len(docs)), key=lambda i: -total[i])
        rows.append(
            {"query_id": qid, "docs": [docs[i] for i in order], "scores": [total[i] for i in order]}
        )
    return rows


def with_positives(rows: list[dict], judged: list[dict]) -> list[dict]:
    """`targets.jsonl` rows with each query's judged positives (`positives`: the candidates its
    judgment scores above 0), for L_CL; `judged` rows are the labels teacher's pointwise ones.

    >>> with_positives([{"query_id": "q", "docs": ["b", "a"], "scores": [1.0, -1.0]}],
    ...     [{"query_id": "q", "docs": ["a", "b"], "scores": [0.0, 2.0]}])[0]["positives"]
    ['b']
    """
    found = {
        r["query_id"]: [d for d, score in zip(r["docs"], r["scores"]) if score > 0] for r in judged
    }
    return [{**row, "positives": found[row["query_id"]]} for row in rows]


def confident_pairs(pairs: list[list], min_confidence: float) -> list[list]:
    """Pairs whose two orders agree, each at least `min_confidence` away from 0.5.

    Rows are `[doc_i, doc_j, P(i > j), P(A) with i first, P(A) with j first]`; rows without both
    orders (one-order or pointwise-derived pairs) are kept, having nothing to check against.

    >>> confident_pairs([["a", "b", 0.8, 0.9, 0.3], ["a", "c", 0.6, 0.9, 0.7]], 0.1)
    [['a', 'b', 0.8, 0.9, 0.3]]
    """
    if min_confidence <= 0:
        return pairs
    kept = []
    for pair in pairs:
        if len(pair) < 5 or pair[3] is None or pair[4] is None:
            kept.append(pair)
            continue
        forward, backward = pair[3] - 0.5, 0.5 - pair[4]  # both > 0 when i wins in both orders
        if forward * backward > 0 and min(abs(forward), abs(backward)) >= min_confidence:
            kept.append(pair)
    return kept
