"""Distillation targets that can beat both parents (issue #8): the teacher's scores fused with the
student's own, and pair targets kept only where the teacher answers the same in both orders.

A weak teacher's scores are noise around the student's order; distilling them pulls the student
off what it already knows. Fusing z-scored teacher and student scores per query keeps the
student's order where the teacher has no opinion and moves it where the teacher is sure.
"""

import statistics


def _z(values: list[float]) -> list[float]:
    mean = statistics.fmean(values)
    spread = statistics.pstdev(values) if len(values) > 1 else 0.0
    return [(v - mean) / spread if spread > 0 else 0.0 for v in values]


def fuse(pointwise: list[dict], candidates: list[dict], teacher_weight: float) -> list[dict]:
    """Rows like `pointwise.jsonl`'s, re-sorted by w * z(teacher) + (1 - w) * z(student).

    The student's scores are its retrieval scores in `candidates.jsonl`. At w = 1 the rows are
    returned unchanged (raw teacher scores, which the KD temperature was tuned for).

    >>> rows = [{"query_id": "q", "docs": ["a", "b", "c"], "scores": [3.0, 2.0, 1.0]}]
    >>> hits = [{"query_id": "q", "hits": [["c", 9.0], ["b", 8.0], ["a", 1.0]]}]
    >>> fuse(rows, hits, 0.5)[0]["docs"]
    ['b', 'a', 'c']
    """
    if teacher_weight >= 1.0:
        return pointwise
    student = {r["query_id"]: dict((d, s) for d, s in r["hits"]) for r in candidates}
    fused = []
    for row in pointwise:
        own = student[row["query_id"]]
        teacher, mine = _z(row["scores"]), _z([own[d] for d in row["docs"]])
        scores = [teacher_weight * t + (1 - teacher_weight) * s for t, s in zip(teacher, mine)]
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        fused.append(
            {
                "query_id": row["query_id"],
                "docs": [row["docs"][i] for i in order],
                "scores": [scores[i] for i in order],
            }
        )
    return fused


def confident_pairs(pairs: list[list], min_confidence: float) -> list[list]:
    """Pairs whose two orders agree, each at least `min_confidence` away from 0.5.

    Rows are `[i, j, P(i > j), P(A) with i first, P(A) with j first]`; rows without both orders
    (one-order or pointwise-derived pairs) are kept, having nothing to check against.

    >>> confident_pairs([[0, 1, 0.8, 0.9, 0.3], [0, 2, 0.6, 0.9, 0.7]], 0.1)
    [[0, 1, 0.8, 0.9, 0.3]]
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
