"""Retrieval metrics, computed once, with trec_eval's implementation (pytrec_eval), as BEIR does.

nDCG@10 and Recall@100 as BEIR reports them; MRR@10 is trec_eval's reciprocal rank over each
run cut to its top 10. Per-query values are kept for paired significance tests.
"""

import math

import pytrec_eval

from adapt.data import Qrels
from adapt.retriever.index import Ranking

METRICS = ("ndcg@10", "recall@100", "mrr@10")
# In every stored evaluation's fingerprint: raised when the same run would score differently, so
# older evaluations are redone on resume (v2: an evaluation split's other half stopped counting).
EVAL_VERSION = "eval-v2"


def _as_run(ranking: Ranking, depth: int) -> dict[str, dict[str, float]]:
    # trec_eval sorts by score; rank-derived scores keep ties (and their order) unambiguous.
    return {
        qid: {doc: float(depth - rank) for rank, (doc, _) in enumerate(hits[:depth])}
        for qid, hits in ranking.items()
    }


def per_query(qrels: Qrels, ranking: Ranking) -> dict[str, dict[str, float]]:
    """metric -> query id -> value, over the judged queries (an unretrieved query scores 0)."""
    judged = {q: docs for q, docs in qrels.items() if any(g > 0 for g in docs.values())}
    full = _as_run(ranking, 100)
    top10 = _as_run(ranking, 10)
    for qid in judged:
        full.setdefault(qid, {})
        top10.setdefault(qid, {})
    deep = pytrec_eval.RelevanceEvaluator(judged, {"ndcg_cut.10", "recall.100"}).evaluate(full)
    shallow = pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"}).evaluate(top10)
    return {
        "ndcg@10": {q: deep.get(q, {}).get("ndcg_cut_10", 0.0) for q in judged},
        "recall@100": {q: deep.get(q, {}).get("recall_100", 0.0) for q in judged},
        "mrr@10": {q: shallow.get(q, {}).get("recip_rank", 0.0) for q in judged},
    }


def summarize(values: dict[str, dict[str, float]]) -> dict[str, float]:
    return {m: (sum(v.values()) / len(v) if v else math.nan) for m, v in values.items()}


def paired_test(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    """Two-sided paired t-test of b against a over shared queries, with wins and losses."""
    from scipy import stats

    shared = sorted(set(a) & set(b))
    diffs = [b[q] - a[q] for q in shared]
    wins = sum(d > 0 for d in diffs)
    losses = sum(d < 0 for d in diffs)
    p = (
        float(stats.ttest_rel([b[q] for q in shared], [a[q] for q in shared]).pvalue)
        if (len(shared) > 1 and any(diffs))
        else 1.0
    )
    return {"delta": sum(diffs) / max(1, len(diffs)), "p_value": p, "wins": wins, "losses": losses}


def describe_test(test: dict[str, float]) -> str:
    """A paired test as reports print it: '+1.4 (p=0.258, 14/7)', tiny p-values as p<0.001."""
    p = test["p_value"]
    shown = "p<0.001" if p < 0.001 else f"p={p:.3f}"
    return f"{test['delta'] * 100:+.1f} ({shown}, {test['wins']}/{test['losses']})"
