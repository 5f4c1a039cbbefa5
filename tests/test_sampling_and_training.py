"""Pair sampling and the training loop, on the tiny BERT student."""

import random

import pytest
import torch

from adapt.config import DistillConfig, StudentConfig
from adapt.data import Document, Query
from adapt.distill.sampling import sample_pairs
from adapt.distill.train import Example, train
from adapt.retriever.colbert import ColBERT
from adapt.retriever.student import load_student
from tests.conftest import DOCS


def test_pairs_respect_delta_and_budget():
    pairs = sample_pairs(100, delta=10, n_pairs=50, rng=random.Random(1))
    assert len(pairs) == len(set(pairs)) == 50
    assert all(0 <= i < j < 100 and j - i < 10 for i, j in pairs)


def test_short_lists_give_every_pair_and_never_fail():
    assert sample_pairs(1, delta=10, n_pairs=50, rng=random.Random(0)) == []
    assert sample_pairs(3, delta=10, n_pairs=50, rng=random.Random(0)) == [(0, 1), (0, 2), (1, 2)]


@pytest.mark.parametrize("kind", ["colbert", "dense"])
def test_training_moves_the_student_towards_the_teacher(tiny_bert, kind):
    """A teacher that ranks the documents in reverse of the student's order: after training, the
    student's order agrees with the teacher more than before (both student kinds)."""
    settings = StudentConfig(str(tiny_bert), kind, dim=16, query_maxlen=12, doc_maxlen=16)
    model = load_student(settings)
    query = Query("q", "how do i sort a list")
    docs = [Document(i, t) for i, t in DOCS]

    def student_order() -> list[int]:
        with torch.no_grad():
            scores = model.score_groups([query.text], [d.text for d in docs], len(docs), 16)
        return scores[0].argsort(descending=True).tolist()

    before = student_order()
    teacher_docs = [docs[i] for i in reversed(before)]  # teacher-sorted: best first
    teacher_scores = [float(len(docs) - rank) for rank in range(len(docs))]
    pairs = [(i, j, 0.95) for i, j in sample_pairs(len(docs), 4, 20, random.Random(0))]
    example = Example(query, teacher_docs, teacher_scores, pairs)
    config = DistillConfig(lr=3e-3, batch_size=1, epochs=30, warmup_ratio=0.0)
    log = train(model, [example], config, doc_maxlen=16, seed=0)
    after = student_order()
    teacher_rank = {docs.index(d): r for r, d in enumerate(teacher_docs)}

    def agreement(order: list[int]) -> float:
        return sum(
            teacher_rank[a] < teacher_rank[b] for x, a in enumerate(order) for b in order[x + 1 :]
        ) / (len(order) * (len(order) - 1) / 2)

    assert agreement(after) > agreement(before) + 0.3
    assert log[-1]["loss"] < log[0]["loss"]
    assert set(log[0]) == {"kd", "pair", "loss", "lr", "step"}


def test_training_is_seeded(tiny_bert):
    runs = []
    for _ in range(2):
        model = ColBERT.load(str(tiny_bert), dim=16, query_maxlen=12, doc_maxlen=16)
        example = Example(
            Query("q", "read a file"),
            [Document(i, t) for i, t in DOCS[:4]],
            [3.0, 2.0, 1.0, 0.0],
            [(0, 1, 0.9), (1, 2, 0.8)],
        )
        train(model, [example], DistillConfig(lr=1e-3, batch_size=1, epochs=2), 16, seed=7)
        runs.append(model.linear.weight.detach().clone())
    assert torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("kind", ["colbert", "dense"])
def test_training_without_dropout_draws_no_masks(tiny_bert, kind):
    """With `dropout = false` the seed no longer changes the trained weights (one example: no
    shuffling to differ), while with the encoder's dropout it does; the rates are restored."""
    settings = StudentConfig(str(tiny_bert), kind, dim=16, query_maxlen=12, doc_maxlen=16)
    example = Example(
        Query("q", "read a file"),
        [Document(i, t) for i, t in DOCS[:4]],
        [3.0, 2.0, 1.0, 0.0],
        [(0, 1, 0.9), (1, 2, 0.8)],
    )
    weights = {}
    for dropout in (True, False):
        for seed in (7, 8):
            model = load_student(settings)
            rates = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
            config = DistillConfig(lr=1e-3, batch_size=1, epochs=2, dropout=dropout)
            train(model, [example], config, 16, seed=seed)
            assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == rates
            assert max(rates) > 0
            weights[dropout, seed] = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert not torch.equal(weights[True, 7], weights[True, 8])
    assert torch.equal(weights[False, 7], weights[False, 8])


def test_the_kd_group_holds_the_pairs_and_reaches_below_the_top_nway():
    from adapt.distill.sampling import training_set

    docs = [f"d{i}" for i in range(20)]
    reached_below = False
    for seed in range(20):
        group, pairs = training_set(docs, nway=6, delta=3, n_pairs=4, rng=random.Random(seed))
        assert len(group) == 6 and len(set(group)) == 6
        assert group == sorted(group, key=docs.index)  # the target's order
        assert all(i in group and j in group for i, j in pairs)
        assert all(docs.index(j) - docs.index(i) in (1, 2) for i, j in pairs)  # |i - j| < delta
        reached_below |= any(docs.index(d) >= 6 for d in group)
    assert reached_below  # the teacher's low ranks are trained on, not only its best nway


def test_a_query_with_fewer_candidates_than_nway_keeps_them_all():
    from adapt.distill.sampling import training_set

    group, pairs = training_set(["a", "b", "c"], nway=8, delta=10, n_pairs=50, rng=random.Random(0))
    assert group == ["a", "b", "c"] and pairs == [("a", "b"), ("a", "c"), ("b", "c")]


@pytest.mark.parametrize("kind", ["colbert", "dense"])
def test_in_batch_scores_hold_each_querys_own_group_on_their_diagonal(tiny_bert, kind):
    settings = StudentConfig(str(tiny_bert), kind, dim=16, query_maxlen=12, doc_maxlen=16)
    model = load_student(settings)
    queries = ["how do i sort a list", "what is a tuple", "read a file"]
    texts = [t for _, t in DOCS][:6]  # two passages per query
    with torch.no_grad():
        own = model.score_groups(queries, texts, 2, 16)
        every = model.score_groups(queries, texts, 2, 16, in_batch=True)
    assert every.shape == (3, 6)
    assert torch.allclose(every.view(3, 3, 2).diagonal().T, own, atol=1e-5)


def test_the_in_batch_term_pulls_each_querys_top_target_above_the_others_passages():
    """L_IB: small when each query's top-target passage outscores every passage of the batch,
    large when another query's passage does; padding is never a negative, and a passage in two
    queries' candidates is never its own negative."""
    from adapt.distill.train import _in_batch_loss, in_batch_positives

    docs = [Document(i, i) for i in "abc"]
    batch = [  # tops: q0's b, q1's c (b again among q1's candidates)
        Example(Query("q0", "x"), [docs[0], docs[1]], [1.0, 3.0], []),
        Example(Query("q1", "y"), [docs[2], docs[1]], [2.0, 1.0], []),
    ]
    valid = torch.tensor([[True, True, False], [True, True, False]])
    positive = in_batch_positives(batch, 3)
    assert positive.tolist() == [
        [False, True, False, False, True, False],
        [False, False, False, True, False, False],
    ]
    config = DistillConfig(student_scores="raw")
    right = torch.tensor([[0.0, 9.0, 0.0, 0.0, 9.0, 0.0], [0.0, 0.0, 0.0, 9.0, 0.0, 0.0]])
    wrong = torch.tensor([[0.0, 0.0, 0.0, 9.0, 0.0, 0.0], [0.0, 9.0, 0.0, 0.0, 0.0, 0.0]])
    padded = right.clone()
    padded[:, [2, 5]] = 50.0  # padding slots: masked, whatever their score
    assert _in_batch_loss(right, positive, valid, config) < 0.01
    assert _in_batch_loss(wrong, positive, valid, config) > 8.0
    assert torch.isclose(
        _in_batch_loss(padded, positive, valid, config),
        _in_batch_loss(right, positive, valid, config),
    )


def test_training_with_in_batch_negatives_logs_the_term(tiny_bert):
    model = load_student(StudentConfig(str(tiny_bert), dim=16, query_maxlen=12, doc_maxlen=16))
    docs = [Document(i, t) for i, t in DOCS]
    examples = [
        Example(Query(f"q{n}", text), docs[n : n + 3], [3.0, 2.0, 1.0], [(0, 1, 0.9)])
        for n, text in enumerate(["sort a list", "what is a tuple", "read a file"])
    ]
    config = DistillConfig(lr=1e-3, batch_size=3, epochs=2, lambda_ib=1.0)
    log = train(model, examples, config, doc_maxlen=16, seed=0)
    assert set(log[0]) == {"kd", "pair", "ib", "loss", "lr", "step"}
    assert log[0]["loss"] == pytest.approx(
        log[0]["kd"] + 3 * log[0]["pair"] + log[0]["ib"], rel=1e-4
    )
