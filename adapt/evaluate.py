"""Retrieval metrics, computed once, with trec_eval's implementation (pytrec_eval), as BEIR does.

nDCG@10 and Recall@100 as BEIR reports them; MRR@10 is trec_eval's reciprocal rank over each
run cut to its top 10. Per-query values are kept for paired significance tests.

Which queries count, as measured on pytrec_eval-terrier 0.5.11: `evaluate(run)` scores exactly
the queries present in both the qrels and the run. A judged query absent from the run is left out,
and so is a run query the qrels do not judge (or judge with an empty set). A query judged only
with grade 0 that the run covers is scored, 0 on every metric (nothing relevant to find), and so
is a run query with no hits. BEIR's `EvaluateRetrieval.evaluate` averages over the queries
pytrec_eval returned: the mean over the judged queries the run covers, the default here.
`complete=True` is trec_eval -c: every judged query counts, a missing one as 0.
"""

import math
from collections.abc import Callable
from pathlib import Path
from string import ascii_letters

import pytrec_eval

from adapt.data import Qrels, Ranking, read_qrels, read_run
from adapt.errors import AdaptError

METRICS = ("ndcg@10", "recall@100", "mrr@10")
DEPTHS = {"ndcg@10": 10, "recall@100": 100, "mrr@10": 10}
"""How many hits of each query a metric reads."""
# In every stored evaluation's fingerprint: raised when the same run would score differently, so
# older evaluations are redone on resume (v2: an evaluation split's other half stopped counting;
# v3: BEIR's semantics, so a query judged only with grade 0 now counts, as 0, in the mean).
EVAL_VERSION = "eval-v3"


def _as_run(ranking: Ranking, queries: list[str], depth: int) -> dict[str, dict[str, float]]:
    # trec_eval sorts by score; rank-derived scores keep ties (and their order) unambiguous.
    return {
        qid: {
            doc: float(depth - rank) for rank, (doc, _) in enumerate(ranking.get(qid, [])[:depth])
        }
        for qid in queries
    }


def without_identical_ids(ranking: Ranking) -> Ranking:
    """BEIR's ignore_identical_ids: on ArguAna, Quora and CQADupStack a query is also a document,
    and finding itself is no answer. Dropped before the cut, so the next hit moves up."""
    return {qid: [hit for hit in hits if hit[0] != qid] for qid, hits in ranking.items()}


def per_query(
    qrels: Qrels, ranking: Ranking, *, complete: bool = False, ignore_identical_ids: bool = False
) -> dict[str, dict[str, float]]:
    """metric -> query id -> value, over the judged queries the run covers (BEIR), or with
    `complete` over every judged query, an unretrieved one scoring 0 (trec_eval -c)."""
    if ignore_identical_ids:
        ranking = without_identical_ids(ranking)
    queries = [q for q, judged in qrels.items() if judged and (complete or q in ranking)]
    deep = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(
        _as_run(ranking, queries, 100)
    )
    shallow = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(
        _as_run(ranking, queries, 10)
    )
    return {
        "ndcg@10": {q: deep[q]["ndcg_cut_10"] for q in queries},
        "recall@100": {q: deep[q]["recall_100"] for q in queries},
        "mrr@10": {q: shallow[q]["recip_rank"] for q in queries},
    }


def summarize(values: dict[str, dict[str, float]]) -> dict[str, float]:
    """The mean of each metric over its queries; NaN, not 0, when no query counts."""
    return {m: (sum(v.values()) / len(v) if v else math.nan) for m, v in values.items()}


SIGNIFICANT = 0.05  # the paired t-test level at which adapt calls a difference real


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


def evaluate_run_file(
    run_file: Path,
    qrels: Path,
    say: Callable[[str], None],
    complete: bool = False,
    ignore_identical_ids: bool = False,
) -> dict[str, float]:
    """`adapt eval`: the mean metrics of a TREC or JSONL run file against qrels (a file, or a
    BEIR folder's test split), with BEIR's semantics. What a reader must know about the means
    (the split read, the queries covered, a run cut shallower than a metric) goes to `say`."""
    judged = read_qrels(qrels_file(qrels, say))
    ranking = read_run(run_file)
    _coverage(run_file, list(ranking), list(judged), complete, say)
    deepest = max(len(hits) for hits in ranking.values())
    cut = [f"{m} is {m.split('@')[0]}@{deepest}" for m, depth in DEPTHS.items() if deepest < depth]
    if cut:  # a run cut at K hits (`adapt search --k K`) turns recall@100 into recall@K
        say(f"warning: the run has at most {deepest} hits per query: {', '.join(cut)}")
    values = per_query(
        judged, ranking, complete=complete, ignore_identical_ids=ignore_identical_ids
    )
    return summarize(values)


def qrels_file(path: Path, say: Callable[[str], None]) -> Path:
    """A qrels file, or a BEIR folder (or its qrels/): its test split, the one BEIR reports."""
    if not path.is_dir():
        return path
    folder = path / "qrels" if (path / "qrels").is_dir() else path
    chosen = folder / "test.tsv"
    if not chosen.is_file():
        splits = ", ".join(sorted(p.stem for p in folder.glob("*.tsv"))) or "none"
        raise AdaptError(f"{folder}: no test.tsv; splits present: {splits} (pass one as --qrels)")
    say(f"qrels: {chosen}, the test split of {path}")
    return chosen


def _coverage(
    run_file: Path,
    run_ids: list[str],
    judged_ids: list[str],
    complete: bool,
    say: Callable[[str], None],
) -> None:
    """A run that misses judged queries changes what the mean means: say how many it covers."""
    covered = len(set(run_ids) & set(judged_ids))
    if not covered:
        hint = _id_hint(run_ids, judged_ids)
        raise AdaptError(f"{run_file}: covers none of the {len(judged_ids)} judged queries{hint}")
    line = f"{run_file}: covers {covered} of {len(judged_ids)} judged queries"
    if covered < len(judged_ids):
        line += (
            "; the other ones count as 0 (--complete)"
            if complete
            else "; the mean is over these only (--complete counts the others as 0)"
        )
    say(line)
    unjudged = len(set(run_ids) - set(judged_ids))
    if unjudged:
        say(
            f"warning: {unjudged} of the run's {len(set(run_ids))} queries have no judgments: "
            "are these the qrels of the run's queries?"
        )


def _id_hint(run_ids: list[str], judged_ids: list[str]) -> str:
    """Why nothing matched, when the two sides differ only by a prefix ('q1' against '1').

    >>> _id_hint(["q1"], ["1"])
    "; its ids look like 'q1', the qrels' like '1'"
    """

    def bare(qid: str) -> str:
        return qid.lstrip(ascii_letters + "_-")

    judged = {bare(q): q for q in judged_ids if bare(q)}
    for qid in run_ids:
        if bare(qid) in judged:
            return f"; its ids look like '{qid}', the qrels' like '{judged[bare(qid)]}'"
    return ""
