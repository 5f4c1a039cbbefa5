"""The distillation losses against their definitions (METHOD.md), computed by hand."""

import math

import pytest
import torch

from adapt.distill.losses import kd_loss, pair_loss, standardize

S = torch.tensor([[1.0, 0.0, -1.0]])
T = torch.tensor([[0.0, 2.0, 0.0]])
ALL = torch.ones(1, 3, dtype=torch.bool)


def _softmax(values: list[float]) -> list[float]:
    total = sum(math.exp(v) for v in values)
    return [math.exp(v) / total for v in values]


def _kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q))


def test_kd_is_kl_of_the_teacher_against_the_student_not_the_reverse():
    teacher, student = _softmax([0.0, 2.0, 0.0]), _softmax([1.0, 0.0, -1.0])
    assert kd_loss(S, T, ALL).item() == pytest.approx(_kl(teacher, student), abs=1e-6)
    assert _kl(teacher, student) != pytest.approx(_kl(student, teacher), abs=1e-3)


def test_temperature_divides_the_teacher_only():
    expected = _kl(_softmax([0.0, 1.0, 0.0]), _softmax([1.0, 0.0, -1.0]))  # T / 2, S as is
    assert kd_loss(S, T, ALL, temperature=2.0).item() == pytest.approx(expected, abs=1e-6)


def test_padded_passages_are_left_out_of_kd():
    padded_s = torch.tensor([[1.0, 0.0, -1.0, 50.0]])
    padded_t = torch.tensor([[0.0, 2.0, 0.0, -50.0]])
    valid = torch.tensor([[True, True, True, False]])
    assert kd_loss(padded_s, padded_t, valid).item() == pytest.approx(kd_loss(S, T, ALL).item())


def test_pair_loss_is_the_kl_of_each_pair_target_averaged_over_pairs():
    pairs = torch.tensor([[[0, 1], [1, 2]]])
    target = torch.tensor([[0.9, 0.2]])
    valid = torch.tensor([[True, True]])
    sigma = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = (
        _kl([0.9, 0.1], [sigma(1.0), 1 - sigma(1.0)])
        + _kl([0.2, 0.8], [sigma(1.0), 1 - sigma(1.0)])
    ) / 2
    assert pair_loss(S, pairs, target, valid).item() == pytest.approx(expected, abs=1e-6)
    only_first = torch.tensor([[True, False]])
    first = _kl([0.9, 0.1], [sigma(1.0), 1 - sigma(1.0)])
    assert pair_loss(S, pairs, target, only_first).item() == pytest.approx(first, abs=1e-6)


def test_pair_loss_weighs_each_query_alike_whatever_its_number_of_pairs():
    scores = torch.tensor([[1.0, 0.0, -1.0], [1.0, 0.0, -1.0]])
    pairs = torch.tensor([[[0, 1], [1, 2]], [[0, 1], [0, 0]]])
    target = torch.tensor([[0.2, 0.2], [0.9, 0.5]])
    valid = torch.tensor([[True, True], [True, False]])
    first = pair_loss(scores[:1], pairs[:1], target[:1], valid[:1]).item()
    second = pair_loss(scores[1:], pairs[1:, :1], target[1:, :1], valid[1:, :1]).item()
    both = pair_loss(scores, pairs, target, valid).item()
    assert both == pytest.approx((first + second) / 2, abs=1e-6)


def test_a_batch_without_pairs_adds_nothing_and_keeps_the_graph():
    scores = torch.tensor([[1.0, 0.0]], requires_grad=True)
    none = torch.zeros(1, 1, dtype=torch.bool)
    loss = pair_loss(scores, torch.zeros(1, 1, 2, dtype=torch.long), torch.tensor([[0.5]]), none)
    loss.backward()
    assert loss.item() == 0.0 and scores.grad is not None


def test_standardized_scores_ignore_each_querys_scale_and_padding():
    valid = torch.tensor([[True, True, True, False]])
    short = torch.tensor([[0.1, 0.2, 0.3, 0.0]])
    long = torch.tensor([[10.0, 20.0, 30.0, 99.0]])
    assert torch.allclose(standardize(short, valid), standardize(long, valid), atol=1e-5)
    assert standardize(long, valid)[0, 3].item() == 0.0
    flat = torch.tensor([[2.0, 2.0, 2.0, 2.0]], requires_grad=True)
    out = standardize(flat, torch.ones(1, 4, dtype=torch.bool))
    out.sum().backward()
    assert out.abs().sum().item() == 0.0 and torch.isfinite(flat.grad).all()
