"""The single-vector student: sentence-transformers interchange, the faiss index, a whole run."""

import pytest
import torch
from rich.console import Console

from adapt import pipeline
from adapt.data import Document, Query
from adapt.retriever.dense import DenseEncoder, DenseIndex
from tests.conftest import DOCS, QUERIES
from tests.test_pipeline import _config


def test_a_saved_dense_student_loads_in_sentence_transformers(tiny_bert, tmp_path):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    model = DenseEncoder.load(str(tiny_bert), maxlen=16)
    model.save(tmp_path / "dense")
    theirs = sentence_transformers.SentenceTransformer(str(tmp_path / "dense"), device="cpu")
    texts = [t for _, t in DOCS]
    with torch.no_grad():
        ours = model.encode(texts)
    assert torch.allclose(ours, theirs.encode(texts, convert_to_tensor=True), atol=1e-5)
    assert DenseEncoder.load(str(tmp_path / "dense")).maxlen == 16


def test_faiss_search_equals_brute_force_and_survives_save(tiny_bert, tmp_path):
    model = DenseEncoder.load(str(tiny_bert), maxlen=16)
    docs = [Document(i, t) for i, t in DOCS]
    queries = [Query(i, t) for i, t in QUERIES]
    index = DenseIndex.build(model, docs, maxlen=16, batch_size=3)
    hits = index.search(model, queries, k=5)
    with torch.no_grad():
        scores = model.encode([q.text for q in queries]) @ model.encode([d.text for d in docs]).T
    for row, query in zip(scores, queries):
        expected = [docs[i].id for i in row.argsort(descending=True)[:5].tolist()]
        assert [d for d, _ in hits[query.id]] == expected
    index.save(tmp_path / "dense")
    assert DenseIndex.load(tmp_path / "dense").search(model, queries, k=5) == hits


def test_a_run_adapts_a_dense_student(tiny_beir, tiny_bert, tmp_path):
    config = _config(tiny_beir, tiny_bert)
    config.iterations, config.student.kind = 1, "dense"
    summary = pipeline.run(config, tmp_path / "run", Console(quiet=True))
    run = tmp_path / "run"
    for name in ["iter-0/faiss/index.faiss", "iter-1/checkpoint/modules.json", "iter-1/faiss"]:
        assert (run / name).exists(), name
    before = DenseEncoder.load(str(run / "iter-0/checkpoint"))
    after = DenseEncoder.load(str(run / "iter-1/checkpoint"))
    changed = [
        not torch.equal(a, b)
        for a, b in zip(before.encoder.parameters(), after.encoder.parameters())
    ]
    assert any(changed)
    assert [r["iteration"] for r in summary["iterations"] if "metrics" in r] == [0, 1]
    report = (run / "report.md").read_text()
    assert "| dense start |" in report and "ColBERT" not in report


def test_cli_indexes_and_searches_a_dense_checkpoint(cli, tiny_beir, tiny_bert, tmp_path):
    model = DenseEncoder.load(str(tiny_bert), maxlen=16)
    model.save(tmp_path / "dense-student")
    index = tmp_path / "index"
    common = ["--checkpoint", str(tmp_path / "dense-student")]
    built = cli("index", *common, "--corpus", str(tiny_beir), "--out", str(index))
    assert built.returncode == 0, built.stderr
    found = cli("search", *common, "--index", str(index), "--query", "sort a list", "--k", "3")
    assert found.returncode == 0, found.stderr
    assert (index / "index.faiss").is_file() and "rank" in found.stdout


def test_plaid_is_refused_for_a_dense_student():
    from adapt.errors import AdaptError
    from adapt.retriever import backend

    assert backend.choose("auto", 10**6, "dense") == "faiss"
    with pytest.raises(AdaptError, match="dense student uses faiss"):
        backend.choose("plaid", 10**6, "dense")


def test_the_bi_encoder_baseline_needs_no_faiss_and_ranks_as_the_faiss_index(tiny_bert):
    """`adapt run` reports the bi-encoder baseline with one matrix product, no faiss index."""
    from adapt.retriever.dense import exact_search

    docs = [Document(i, t) for i, t in DOCS]
    queries = [Query(i, t) for i, t in QUERIES]
    ours = exact_search(str(tiny_bert), 16, docs, queries, 5)
    model = DenseEncoder.load(str(tiny_bert), 16)
    theirs = DenseIndex.build(model, docs, 16).search(model, queries, 5)
    for q in queries:
        assert [d for d, _ in ours[q.id]] == [d for d, _ in theirs[q.id]]
        assert [s for _, s in ours[q.id]] == pytest.approx([s for _, s in theirs[q.id]], abs=1e-5)
