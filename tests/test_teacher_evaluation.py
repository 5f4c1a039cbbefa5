"""`adapt teacher-eval`'s measures on the real SmolLM2 teacher, against a student that errs."""

import pytest

from adapt.teacher.cache import ScoreCache
from adapt.teacher.evaluation import evaluate_pairwise, evaluate_pointwise
from adapt.teacher.scoring import TeacherScorer
from adapt.teacher.templates import load_template
from tests.test_teacher import DOCS, QUERY

BY_ID = {d.id: d for d in DOCS}
# The student puts the one relevant passage (paris) last.
RANKING = {QUERY.id: [("owl", 3.0), ("tea", 2.0), ("paris", 1.0)]}
QRELS = {QUERY.id: {"paris": 1}}


class Bars:
    """Records each bar's total and how far it was advanced."""

    def __init__(self) -> None:
        self.bars: list[list[int]] = []

    def __call__(self, total: int):
        bar = [total, 0]
        self.bars.append(bar)

        def advance(n: int) -> None:
            bar[1] += n

        return advance


def test_pointwise_measures_teacher_against_student(smol_backend, tmp_path):
    scorer = TeacherScorer(
        smol_backend, ScoreCache(tmp_path / "c.sqlite"), load_template("query-likelihood")
    )
    bars = Bars()
    result = evaluate_pointwise(scorer, [QUERY], BY_ID, RANKING, QRELS, bars)
    # The teacher ranks paris first (test_teacher.py), the student last.
    assert result["auc"] == 1.0 and result["auc_student"] == 0.0
    assert result["ndcg@10_reranked"] == 1.0 > result["ndcg@10_student"]
    assert result["prompts_per_s"] > 0
    # Rerun from the cache: the bar still fills, and no prompt counts toward the rate.
    again = evaluate_pointwise(scorer, [QUERY], BY_ID, RANKING, QRELS, bars)
    assert bars.bars == [[3, 3], [3, 3]]
    assert again["auc"] == 1.0 and again["prompts_per_s"] is None


def test_pairwise_counts_both_orders(smol_backend, tmp_path):
    scorer = TeacherScorer(
        smol_backend, ScoreCache(tmp_path / "c.sqlite"), None, load_template("ab")
    )
    bars = Bars()
    result = evaluate_pairwise(scorer, [QUERY], BY_ID, RANKING, QRELS, 2, track=bars)
    assert result["pairs"] == 2 and bars.bars == [[4, 4]]
    # Both orders: the accuracy of the log-odds' sign, and its two-sided binomial p
    # (2 pairs: 1.0 when one is right, 0.5 when both or neither are).
    assert result["accuracy_both_orders"] in (0.0, 0.5, 1.0)
    expected_p = 1.0 if result["accuracy_both_orders"] == 0.5 else 0.5
    assert result["p_both_orders"] == pytest.approx(expected_p)
