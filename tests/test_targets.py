"""Distillation targets: one z-score rule for plain and fused targets, computed by hand here."""

import math

import pytest

from adapt.distill import pairs
from adapt.distill.targets import Weights, build_targets
from adapt.errors import AdaptError

POINTWISE = [{"query_id": "q", "docs": ["a", "b", "c"], "scores": [0.3, 0.2, 0.1]}]
CANDIDATES = [{"query_id": "q", "hits": [["c", 30.0], ["a", 20.0], ["b", 10.0]]}]
BM25 = {"q": {"a": 0.0, "b": 4.0, "c": 2.0}}
Z = math.sqrt(1.5)  # z-scores of three evenly spaced values are -Z, 0, Z


def _by_doc(row: dict) -> dict[str, float]:
    return dict(zip(row["docs"], row["scores"]))


def test_plain_targets_are_the_teachers_z_scores_whatever_its_spread():
    """Sharpness is the temperature's alone: a teacher's 0.1-nat spread and a 10x wider one give
    the same target."""
    plain = _by_doc(build_targets(POINTWISE, CANDIDATES, Weights())[0])
    assert plain == pytest.approx({"a": Z, "b": 0.0, "c": -Z})
    wide = [{**POINTWISE[0], "scores": [3.0, 2.0, 1.0]}]
    assert _by_doc(build_targets(wide, CANDIDATES, Weights())[0]) == pytest.approx(plain)


def test_fused_targets_at_a_quarter_teacher_by_hand():
    # teacher z: a Z, b 0, c -Z; student z: c Z, a 0, b -Z.
    row = build_targets(POINTWISE, CANDIDATES, Weights(teacher=0.25))[0]
    expected = {"a": 0.25 * Z, "b": -0.75 * Z, "c": -0.25 * Z + 0.75 * Z}
    assert _by_doc(row) == pytest.approx(expected)
    assert row["docs"] == ["c", "a", "b"]  # sorted by the fused score


def test_bm25_joins_the_target_with_its_weight():
    # bm25 z: b Z, c 0, a -Z.
    row = build_targets(POINTWISE, CANDIDATES, Weights(teacher=0.5, bm25=0.5), BM25)[0]
    assert _by_doc(row) == pytest.approx({"a": 0.5 * Z - 0.5 * Z, "b": 0.5 * Z, "c": -0.5 * Z})


def test_the_biencoder_joins_the_target_with_its_weight():
    biencoder = {"q": {"a": 0.1, "b": 0.3, "c": 0.2}}  # z: b Z, c 0, a -Z
    weights = Weights(teacher=0.25, bm25=0.25, biencoder=0.25)  # student 0.25: c Z, a 0, b -Z
    row = build_targets(POINTWISE, CANDIDATES, weights, BM25, biencoder)[0]
    expected = {"a": 0.25 * (Z - Z - Z), "b": 0.25 * (Z + Z - Z), "c": 0.25 * (-Z + Z)}
    assert _by_doc(row) == pytest.approx(expected)


def test_the_report_names_every_weighted_signal():
    from adapt.report import targets_text

    assert targets_text({"teacher_weight": 1.0}) == "the teacher's scores (z-scored per query)"
    text = targets_text({"teacher_weight": 0.5, "bm25_weight": 0.3, "biencoder_weight": 0.0})
    assert text == "0.5 x teacher + 0.3 x BM25 + 0.2 x student (z-scored per query)"


def test_weights_that_do_not_add_up_are_refused():
    with pytest.raises(AdaptError, match="sum at most 1"):
        Weights(teacher=0.8, bm25=0.4)


def test_pair_targets_from_the_targets_use_the_same_temperature():
    targets = build_targets(POINTWISE, CANDIDATES, Weights())
    sampled = [{"query_id": "q", "group": ["a", "b", "c"], "pairs": [["a", "b"], ["b", "c"]]}]
    rows = pairs.from_targets(sampled, targets, temperature=2.0)
    expected = 1 / (1 + math.exp(-Z / 2.0))
    assert [p[:2] for p in rows[0]["pairs"]] == [["a", "b"], ["b", "c"]]
    assert [p[2] for p in rows[0]["pairs"]] == pytest.approx([expected, expected])
