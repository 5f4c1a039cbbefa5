"""Metrics agree with their textbook definitions on hand-checkable rankings."""

import math

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


def test_unretrieved_judged_query_counts_as_zero():
    assert summarize(per_query({"q": {"a": 1}}, {}))["ndcg@10"] == 0.0


def test_paired_test_counts_wins_and_losses():
    result = paired_test({"a": 0.1, "b": 0.5, "c": 0.2}, {"a": 0.3, "b": 0.4, "c": 0.6})
    assert (result["wins"], result["losses"]) == (2, 1)
    assert 0.0 <= result["p_value"] <= 1.0
    assert describe_test(result).startswith("+16.7 (p=0.")


def test_a_tiny_p_value_is_not_printed_as_zero():
    start = {str(i): 0.1 * (i % 3) for i in range(40)}
    adapted = {q: v + 0.3 + 0.01 * (int(q) % 2) for q, v in start.items()}
    assert describe_test(paired_test(start, adapted)) == "+30.5 (p<0.001, 40/0)"
