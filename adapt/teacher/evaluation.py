"""How good is a teacher before hours go into it: measured inside the student's own top-k.

Pointwise templates: per-query AUC of relevant vs non-relevant passages (0.5 = chance), beside
the student's own AUC on the same passages, and nDCG@10 after reranking the top-k by the teacher
beside the student's own order. Pairwise templates: accuracy on (relevant, non-relevant) pairs
from one prompt order and from both, and the share of "A" answers (position bias). Prompts/s
counts only prompts the model scored (not cached).
"""

import random
import time
from collections.abc import Callable

import numpy as np

from adapt.data import Document, Qrels, Query, Ranking
from adapt.evaluate import per_query, summarize
from adapt.teacher.scoring import Progress, TeacherScorer

Track = Callable[[int], Progress]  # given the prompts to come, returns what to advance


def auc(relevant: list[float], other: list[float]) -> float | None:
    """P(a relevant score beats a non-relevant one), ties counting half; None without both.

    >>> auc([3.0, 1.0], [2.0, 0.0])
    0.75
    """
    if not relevant or not other:
        return None
    wins = sum((r > o) + 0.5 * (r == o) for r in relevant for o in other)
    return wins / (len(relevant) * len(other))


def split_auc(values, relevant: list[bool]) -> float | None:
    """`auc` of the scores `values`, split by the relevance flags beside them."""
    return auc(
        [v for v, r in zip(values, relevant) if r], [v for v, r in zip(values, relevant) if not r]
    )


def _timed(scorer: TeacherScorer, fn):
    computed, start = scorer.computed, time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    done = scorer.computed - computed
    return result, (done / elapsed if done and elapsed > 0 else None)


def evaluate_pointwise(
    scorer: TeacherScorer,
    queries: list[Query],
    docs: dict[str, Document],
    ranking: Ranking,
    qrels: Qrels,
    track: Track | None = None,
) -> dict:
    items = [(q, docs[d]) for q in queries for d, _ in ranking[q.id]]
    advance = track(len(items)) if track else None
    scores, rate = _timed(scorer, lambda: scorer.score_pointwise(items, advance))
    reranked: Ranking = {}
    aucs, own_aucs, cursor = [], [], 0
    for q in queries:
        hits = ranking[q.id]
        values = scores[cursor : cursor + len(hits)]
        cursor += len(hits)
        relevant = [qrels.get(q.id, {}).get(d, 0) > 0 for d, _ in hits]
        value = split_auc(values, relevant)
        if value is not None:
            aucs.append(value)
            own_aucs.append(split_auc([s for _, s in hits], relevant))
        order = np.argsort(-values, kind="stable")
        reranked[q.id] = [(hits[i][0], float(values[i])) for i in order]
    subset = {q.id: qrels[q.id] for q in queries if q.id in qrels}
    return {
        "auc": float(np.mean(aucs)) if aucs else None,
        "auc_queries": len(aucs),
        "auc_student": float(np.mean(own_aucs)) if own_aucs else None,
        "ndcg@10_reranked": summarize(per_query(subset, reranked))["ndcg@10"],
        "ndcg@10_student": summarize(per_query(subset, {q.id: ranking[q.id] for q in queries}))[
            "ndcg@10"
        ],
        "prompts_per_s": rate,
    }


def evaluate_pairwise(
    scorer: TeacherScorer,
    queries: list[Query],
    docs: dict[str, Document],
    ranking: Ranking,
    qrels: Qrels,
    pairs_per_query: int,
    seed: int = 0,
    track: Track | None = None,
) -> dict:
    rng = random.Random(seed)
    items = []
    for q in queries:
        judged = qrels.get(q.id, {})
        relevant = [d for d, _ in ranking[q.id] if judged.get(d, 0) > 0]
        other = [d for d, _ in ranking[q.id] if judged.get(d, 0) <= 0]
        pairs = [(r, o) for r in relevant for o in other]
        for r, o in rng.sample(pairs, min(pairs_per_query, len(pairs))):
            items.append((q, docs[r], docs[o]))
    if not items:
        return {"pairs": 0}
    advance = track(scorer.pair_prompts(len(items))) if track else None
    results, rate = _timed(scorer, lambda: scorer.score_pairs(items, advance))
    from scipy.stats import binomtest

    forward = np.array([s.prob_a_forward for s in results])  # relevant shown as A
    backward = np.array([s.prob_a_backward for s in results])  # relevant shown as B
    right = sum(s.prob > 0.5 for s in results)
    return {
        "pairs": len(items),
        "accuracy_one_order": float(np.mean(np.concatenate([forward > 0.5, backward < 0.5]))),
        "accuracy_both_orders": right / len(results),
        # Two-sided, against a coin: whether the both-order log-odds order pairs at all.
        "p_both_orders": float(binomtest(right, len(results), 0.5).pvalue),
        "share_answer_a": float(np.mean(np.concatenate([forward > 0.5, backward > 0.5]))),
        "prompts_per_s": rate,
    }
