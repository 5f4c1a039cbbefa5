"""Metrics agree with their textbook definitions on hand-checkable rankings."""

import math

import pytest

from adapt.evaluate import describe_test, paired_test, per_query, summarize


def test_perfect_and_missing_rankings():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    ranking = {"q1": [("a", 3.0), ("x", 2.0)], "q2": [("y", 1.0)]}
    metrics = summarize(per_query(qrels, ranking))
    assert metrics["ndcg@10"] == 0.5 and metrics["mrr@10"] == 0.5 and metrics["recall@100"] == 0.5


def test_mrr_is_cut_at_ten_and_ndcg_discounts_rank():
    qrels = {"q": {"rel": 1}}
    at_eleven = {"q": [(f"n{i}", 20.0 - i) for i in range(10)] + [("rel", 1.0)]}
    assert summarize(per_query(qrels, at_eleven))["mrr@10"] == 0.0
    at_two = {"q": [("n", 2.0), ("rel", 1.0)]}
    values = summarize(per_query(qrels, at_two))
    assert math.isclose(values["ndcg@10"], 1 / math.log2(3))
    assert values["mrr@10"] == 0.5


# q1 finds a first, q2 finds b second (nDCG 1/log2(3) = 0.63093, RR 1/2), q3 is not in the run.
QRELS = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}}
RUN = {"q1": [("a", 2.0), ("x", 1.0)], "q2": [("y", 2.0), ("b", 1.0)]}


def test_the_mean_is_over_the_judged_queries_the_run_covers():
    values = per_query(QRELS, RUN)
    assert set(values["ndcg@10"]) == {"q1", "q2"}
    metrics = summarize(values)
    assert math.isclose(metrics["ndcg@10"], (1 + 1 / math.log2(3)) / 2)
    assert metrics["mrr@10"] == 0.75 and metrics["recall@100"] == 1.0


def test_complete_counts_every_judged_query_an_unretrieved_one_as_zero():
    values = per_query(QRELS, RUN, complete=True)
    assert values["ndcg@10"]["q3"] == 0.0
    metrics = summarize(values)
    assert math.isclose(metrics["ndcg@10"], (1 + 1 / math.log2(3)) / 3)
    assert metrics["mrr@10"] == 0.5 and math.isclose(metrics["recall@100"], 2 / 3)


def test_no_covered_query_is_nan_not_zero_and_complete_is_zero():
    assert math.isnan(summarize(per_query({"q": {"a": 1}}, {}))["ndcg@10"])
    assert summarize(per_query({"q": {"a": 1}}, {}, complete=True))["ndcg@10"] == 0.0


def test_a_query_judged_only_with_grade_zero_counts_as_zero_when_covered():
    qrels = {"q1": {"a": 1}, "z": {"a": 0, "b": 0}}
    covered = per_query(qrels, {"q1": [("a", 1.0)], "z": [("a", 1.0)]})
    assert covered["ndcg@10"] == {"q1": 1.0, "z": 0.0}
    assert summarize(covered) == {"ndcg@10": 0.5, "recall@100": 0.5, "mrr@10": 0.5}
    assert summarize(per_query(qrels, {"q1": [("a", 1.0)]}))["ndcg@10"] == 1.0


def test_ignore_identical_ids_drops_the_query_itself_before_the_cut():
    # The relevant document is 11th behind the query itself and nine others: out of the top 10
    # (RR 0) until the query's own id is dropped, then 10th (RR 1/10).
    hits = [("q", 20.0)] + [(f"n{i}", 19.0 - i) for i in range(9)] + [("rel", 1.0)]
    qrels = {"q": {"rel": 1}}
    assert per_query(qrels, {"q": hits})["mrr@10"]["q"] == 0.0
    assert per_query(qrels, {"q": hits}, ignore_identical_ids=True)["mrr@10"]["q"] == 0.1


def test_paired_test_counts_wins_and_losses():
    result = paired_test({"a": 0.1, "b": 0.5, "c": 0.2}, {"a": 0.3, "b": 0.4, "c": 0.6})
    assert (result["wins"], result["losses"]) == (2, 1)
    # Differences 0.2, -0.1, 0.4: t^2 = mean^2 / (var / 3) = (1/36) / (19/900) = 25/19 with 2
    # degrees of freedom, where the two-sided p is exactly 1 - t / sqrt(2 + t^2) = 1 - 5/sqrt(63).
    assert result["p_value"] == pytest.approx(1 - 5 / math.sqrt(63), rel=1e-9)
    assert describe_test(result) == "+16.7 (p=0.370, 2/1)"


def test_a_tiny_p_value_is_not_printed_as_zero():
    start = {str(i): 0.1 * (i % 3) for i in range(40)}
    adapted = {q: v + 0.3 + 0.01 * (int(q) % 2) for q, v in start.items()}
    assert describe_test(paired_test(start, adapted)) == "+30.5 (p<0.001, 40/0)"
