"""Run reports: the verdict against baselines and start comes first, floats are rounded."""

from adapt.report import best_reference, rounded, verdict


def _entry(label: str, values: list[float], checkpoint: str | None = None) -> dict:
    per_query = {f"q{i}": v for i, v in enumerate(values)}
    entry = {
        "label": label,
        "metrics": {"ndcg@10": sum(values) / len(values)},
        "per_query": {"ndcg@10": per_query},
    }
    return {**entry, "checkpoint": checkpoint} if checkpoint else entry


BM25 = _entry("BM25", [0.9, 0.8, 0.7, 0.9, 0.8, 0.7, 0.9, 0.9])
START = _entry("ColBERT start", [0.5, 0.6, 0.5, 0.6, 0.5, 0.6, 0.5, 0.6], "iter-0/checkpoint")


def test_a_student_below_a_baseline_is_called_worse_and_the_baseline_recommended():
    adapted = _entry("adapted, iteration 1", [0.6, 0.7, 0.6, 0.7, 0.6, 0.7, 0.6, 0.7], "iter-1/c")
    lines = verdict([BM25, START], [adapted])
    assert lines[0] == "**adapted, iteration 1: nDCG@10 65.0.**"
    # Below BM25 on 7 queries, level on one.
    assert lines[1].startswith("**Worse than:** BM25 (82.5, -17.5 (p=0.002, 0/7))")
    # Above the start by 0.1 on all 8 queries: significant, and said.
    assert lines[2].startswith("Better than: ColBERT start (55.0, +10.0 (p<0.001, 8/0)")
    assert "BM25 (no checkpoint of this run beats it)" in lines[3]
    assert best_reference([BM25, START]) is BM25


def test_the_best_checkpoint_is_recommended_when_it_beats_everything():
    adapted = _entry("adapted, iteration 1", [1.0, 0.9, 0.8, 1.0, 0.9, 0.8, 1.0, 0.9], "iter-1/c")
    lines = verdict([BM25, START], [adapted])
    assert not any(line.startswith("**Worse") for line in lines)
    assert "`iter-1/c`" in lines[-1]


def test_references_it_is_level_with_are_named_too():
    adapted = _entry("adapted, iteration 1", [0.6, 0.6, 0.5, 0.6, 0.5, 0.6, 0.5, 0.6], "iter-1/c")
    lines = verdict([BM25, START], [adapted])
    assert lines[1].startswith("**Worse than:** BM25")
    assert lines[2].startswith("Not significantly different from: ColBERT start (55.0, +1.2")


def test_no_difference_is_said_as_such():
    same = _entry("adapted, iteration 1", [0.5, 0.6, 0.5, 0.6, 0.5, 0.6, 0.5, 0.6], "iter-1/c")
    lines = verdict([START], [same])
    assert lines[1] == "Not significantly different from the start or any baseline."


def test_floats_are_rounded_to_four_significant_digits_all_the_way_down():
    value = {"first_loss": 4.2828826904296875, "p": [1.23456789e-8], "n": 3, "s": "x"}
    assert rounded(value) == {"first_loss": 4.283, "p": [1.235e-8], "n": 3, "s": "x"}
