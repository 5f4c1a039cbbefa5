"""The ColBERT student: colbert-ai's token conventions, MaxSim, its checkpoint format, its head."""

import torch

from adapt.data import Document, Query
from adapt.retriever.colbert import ColBERT, maxsim, maxsim_paired
from adapt.retriever.index import ExactIndex
from tests.conftest import DOCS, QUERIES


def _model(tiny_bert) -> ColBERT:
    return ColBERT.load(str(tiny_bert), dim=16, query_maxlen=12, doc_maxlen=16)


def test_queries_are_padded_with_masks_and_normalised(tiny_bert):
    model = _model(tiny_bert)
    with torch.no_grad():
        encoded = model.encode_queries(["why is a tuple not a list"])
    assert encoded.shape == (1, 12, 16)
    assert torch.allclose(encoded.norm(dim=-1), torch.ones(1, 12), atol=1e-5)
    batch = model._tokenize(["x"], model.query_marker_id, 12, "max_length")
    assert batch["input_ids"][0, 1] == model.query_marker_id


def test_document_punctuation_is_not_embedded(tiny_bert):
    model = _model(tiny_bert)
    with torch.no_grad():
        _, mask = model.encode_docs(["a list , a tuple ?"])
    # [CLS] [D] a list , a tuple ? [SEP]: the comma and question mark are masked out.
    assert mask.tolist() == [[True, True, True, True, False, True, True, False, True]]


def test_maxsim_matches_its_definition():
    torch.manual_seed(0)
    q, d = torch.randn(2, 3, 4), torch.randn(5, 6, 4)
    mask = torch.ones(5, 6, dtype=torch.bool)
    mask[0, 3:] = False
    expected = torch.tensor(
        [
            [
                sum(max(float(q[a, i] @ d[b, j]) for j in range(6) if mask[b, j]) for i in range(3))
                for b in range(5)
            ]
            for a in range(2)
        ]
    )
    assert torch.allclose(maxsim(q, d, mask), expected, atol=1e-5)
    paired = maxsim_paired(q, d[:4].view(2, 2, 6, 4), mask[:4].view(2, 2, 6))
    assert torch.allclose(paired, expected[[0, 0, 1, 1], [0, 1, 2, 3]].view(2, 2), atol=1e-5)


def test_fresh_head_is_fitted_by_pca(tiny_bert):
    model = _model(tiny_bert)
    assert model.is_fresh
    with torch.no_grad():
        energy = model.init_projection([t for _, t in DOCS])
    assert 0.5 < energy <= 1.0
    weight = model.linear.weight
    assert torch.allclose(weight @ weight.T, torch.eye(16), atol=1e-4)  # orthonormal rows


def test_checkpoint_round_trip_gives_identical_scores(tiny_bert, tmp_path):
    model = _model(tiny_bert)
    with torch.no_grad():
        model.init_projection([t for _, t in DOCS])
    model.save(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "artifact.metadata").is_file()
    loaded = ColBERT.load(str(tmp_path / "ckpt"))
    assert not loaded.is_fresh and loaded.dim == 16 and loaded.query_maxlen == 12
    with torch.no_grad():
        before = maxsim(model.encode_queries(["sort a list"]), *model.encode_docs(["sort a key"]))
        after = maxsim(loaded.encode_queries(["sort a list"]), *loaded.encode_docs(["sort a key"]))
    assert torch.allclose(before, after)


def test_exact_index_equals_brute_force_and_survives_save(tiny_bert, tmp_path):
    model = _model(tiny_bert)
    docs = [Document(i, t) for i, t in DOCS]
    queries = [Query(i, t) for i, t in QUERIES]
    index = ExactIndex.build(model, docs, maxlen=16, batch_size=3)
    ranking = index.search(model, queries, k=8, max_block_elements=64)
    with torch.no_grad():
        scores = maxsim(
            model.encode_queries([q.text for q in queries]),
            *model.encode_docs([d.text for d in docs], 16),
        )
    for row, query in enumerate(queries):
        expected = [docs[i].id for i in scores[row].argsort(descending=True).tolist()]
        assert [d for d, _ in ranking[query.id]] == expected
        assert abs(ranking[query.id][0][1] - float(scores[row].max())) < 1e-2  # fp16 storage
    index.save(tmp_path / "index.pt")
    assert ExactIndex.load(tmp_path / "index.pt").search(model, queries, k=8) == index.search(
        model, queries, k=8
    )


def test_head_wider_than_the_encoder_is_refused(tiny_bert):
    import pytest

    from adapt.errors import AdaptError

    with pytest.raises(AdaptError, match="choose student.dim <= 32"):
        ColBERT.load(str(tiny_bert), dim=128)
