"""The ColBERT student: colbert-ai's token conventions, MaxSim, its checkpoint format, its head."""

import torch

from adapt.data import Document, Query
from adapt.retriever.colbert import ColBERT, maxsim, maxsim_paired
from adapt.retriever.index import ExactIndex
from tests.conftest import DOCS, QUERIES


def _model(tiny_bert, **conventions) -> ColBERT:
    return ColBERT.load(str(tiny_bert), dim=16, query_maxlen=12, doc_maxlen=16, **conventions)


def test_with_augmentation_queries_are_padded_with_masks_and_normalised(tiny_bert):
    model = _model(tiny_bert, query_augmentation=True, markers=True)
    with torch.no_grad():
        encoded = model.encode_queries(["why is a tuple not a list"])
    assert encoded.shape == (1, 12, 16)
    assert torch.allclose(encoded.norm(dim=-1), torch.ones(1, 12), atol=1e-5)
    batch = model._tokenize(["x"], model.query_marker_id, 12, "max_length")
    assert batch["input_ids"][0, 1] == model.query_marker_id


def test_a_fresh_head_gets_neither_augmentation_nor_markers(tiny_bert):
    model = _model(tiny_bert)
    assert model.conventions == {"query_augmentation": False, "markers": False}
    batch = model._tokenize(["list"], model.query_marker_id, 12, "longest")
    cls, sep = model.tokenizer.cls_token_id, model.tokenizer.sep_token_id
    assert batch["input_ids"][0].tolist() == [
        cls,
        model.tokenizer.convert_tokens_to_ids("list"),
        sep,
    ]


def test_without_augmentation_pads_add_nothing_to_maxsim(tiny_bert):
    """A short query scores the same alone and beside a longer one: its pad rows are zero."""
    model = _model(tiny_bert)
    docs = [t for _, t in DOCS]
    with torch.no_grad():
        alone = model.encode_queries(["sort"])
        batch = model.encode_queries(["sort", "why is a tuple not a list of key value"])
        doc_emb, doc_mask = model.encode_docs(docs)
    assert alone.shape[1] == 3 and batch.shape[1] > 3  # [CLS] sort [SEP]; the batch's longest
    assert torch.equal(batch[0, 3:], torch.zeros_like(batch[0, 3:]))
    assert torch.allclose(maxsim(alone, doc_emb, doc_mask), maxsim(batch[:1], doc_emb, doc_mask))


def test_conventions_are_recorded_and_read_back(tiny_bert, tmp_path):
    for augmentation, markers in ((True, False), (False, True)):
        model = _model(tiny_bert, query_augmentation=augmentation, markers=markers)
        model.save(tmp_path / f"{augmentation}-{markers}")
        loaded = ColBERT.load(str(tmp_path / f"{augmentation}-{markers}"))
        assert loaded.conventions == {"query_augmentation": augmentation, "markers": markers}


def test_a_trained_head_without_a_record_is_colbert_ais(tiny_bert, tmp_path):
    """colbert-ai checkpoints (colbertv2.0) say nothing of the conventions: both are on."""
    import json

    model = _model(tiny_bert)
    model.save(tmp_path / "ckpt")
    metadata = json.loads((tmp_path / "ckpt" / "artifact.metadata").read_text())
    for key in ("query_augmentation", "markers"):
        del metadata[key]
    (tmp_path / "ckpt" / "artifact.metadata").write_text(json.dumps(metadata))
    loaded = ColBERT.load(str(tmp_path / "ckpt"))
    assert loaded.conventions == {"query_augmentation": True, "markers": True}


def test_document_punctuation_is_not_embedded(tiny_bert):
    model = _model(tiny_bert, markers=True)
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
    position = {d.id: i for i, d in enumerate(docs)}
    for row, query in enumerate(queries):
        hits = ranking[query.id]
        assert sorted(d for d, _ in hits) == sorted(position)  # k = every document
        exact = [float(scores[row, position[d]]) for d, _ in hits]
        # fp16 storage: each score within 1e-2 of exact MaxSim, and the order exact MaxSim's up
        # to swaps of near-ties.
        assert all(abs(s - e) < 1e-2 for (_, s), e in zip(hits, exact))
        assert all(a >= b - 2e-2 for a, b in zip(exact, exact[1:]))
    index.save(tmp_path / "index.pt")
    assert ExactIndex.load(tmp_path / "index.pt").search(model, queries, k=8) == index.search(
        model, queries, k=8
    )


def test_head_wider_than_the_encoder_is_refused(tiny_bert):
    import pytest

    from adapt.errors import AdaptError

    with pytest.raises(AdaptError, match="choose student.dim <= 32"):
        ColBERT.load(str(tiny_bert), dim=128)


def test_sorted_chunks_equal_padding_together(tiny_bert):
    """Training encodes its passages in length-sorted chunks: the scores, and the gradients
    they give, are those of encoding every passage padded to the longest."""
    model = _model(tiny_bert)
    docs = [t for _, t in DOCS] * 3  # short and long mixed, in no order
    queries = [t for _, t in QUERIES][:3]
    width = len(docs) // len(queries)
    together = []
    for encode in (model.encode_docs, lambda t, m: model.encode_docs_sorted(t, m, chunk=2)):
        model.zero_grad()
        q = model.encode_queries(queries)
        emb, mask = encode(docs, 16)
        emb = emb.view(len(queries), width, *emb.shape[1:])
        scores = maxsim_paired(q, emb, mask.view(len(queries), width, -1))
        scores.sum().backward()
        grad = model.linear.weight.grad.clone()
        together.append((scores.detach(), grad, mask))
    (padded, grad_padded, mask_padded), (sorted_, grad_sorted, mask_sorted) = together
    assert torch.equal(mask_padded, mask_sorted)
    assert torch.allclose(padded, sorted_, atol=1e-5)
    assert torch.allclose(grad_padded, grad_sorted, atol=1e-4)
