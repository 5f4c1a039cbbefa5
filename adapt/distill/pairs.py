"""The pairs stage: each query's KD group and pair targets, by document id, on disk.

`pairs.jsonl` rows are {query_id, group: [doc ids in target order], pairs: [[doc_i, doc_j,
P(i > j)] or [doc_i, doc_j, P(i > j), P(A) with i first, P(A) with j first]]}. Sampling is seeded
per (seed, iteration, query), so a query gets the same group and pairs whether the queries are
processed together or in shards.
"""

import math
import random

from adapt.config import DistillConfig
from adapt.data import Document, Query
from adapt.distill.sampling import training_set


def sample(targets: list[dict], d: DistillConfig, iteration: int) -> list[dict]:
    """{query_id, group, pairs: [[doc_i, doc_j]]} for each `targets.jsonl` row."""
    rows = []
    for row in targets:
        rng = random.Random(f"{d.seed}/{iteration}/{row['query_id']}")
        group, pairs = training_set(row["docs"], d.nway, d.delta, d.n_pairs, rng)
        rows.append(
            {"query_id": row["query_id"], "group": group, "pairs": [list(p) for p in pairs]}
        )
    return rows


def from_targets(sampled: list[dict], targets: list[dict], temperature: float) -> list[dict]:
    """Pair targets with no prompts: P(i > j) = sigmoid((t_i - t_j) / temperature) of the
    pointwise targets, the same sharpness rule as L_KD's softmax."""
    score = {r["query_id"]: dict(zip(r["docs"], r["scores"])) for r in targets}
    rows = []
    for row in sampled:
        s = score[row["query_id"]]
        pairs = [[i, j, 1 / (1 + math.exp(-(s[i] - s[j]) / temperature))] for i, j in row["pairs"]]
        rows.append({**row, "pairs": pairs})
    return rows


def prompts(
    sampled: list[dict], queries: dict[str, Query], docs: dict[str, Document]
) -> list[tuple[Query, Document, Document]]:
    """The (query, first, second) items a pairwise teacher scores, in `sampled` order."""
    return [
        (queries[row["query_id"]], docs[i], docs[j]) for row in sampled for i, j in row["pairs"]
    ]


def from_scores(sampled: list[dict], scores: list) -> list[dict]:
    """Rows with the pairwise teacher's `scores` (PairScore, in `prompts` order) attached."""
    rows, cursor = [], 0
    for row in sampled:
        chunk = scores[cursor : cursor + len(row["pairs"])]
        cursor += len(row["pairs"])
        pairs = [
            [i, j, s.prob, s.prob_a_forward, s.prob_a_backward]
            for (i, j), s in zip(row["pairs"], chunk)
        ]
        rows.append({**row, "pairs": pairs})
    return rows
