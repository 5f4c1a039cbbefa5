"""Hybrid search: fusion maths, the pool (union, exact scores), BM25 index persistence, the
weights chosen on the label-free check's queries."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from adapt.data import Document, Query
from adapt.errors import AdaptError
from adapt.retriever.bm25 import BM25Index
from adapt.retriever.colbert import ColBERT
from adapt.retriever.dense import DenseEncoder, DenseIndex
from adapt.retriever.hybrid import (
    RRF_K,
    ExactSignal,
    FaissSignal,
    FullBatch,
    HybridSearcher,
    Pool,
    Weights,
    biencoder_path,
    bm25_path,
    build_biencoder,
    load_biencoder,
    student_signal,
    zscores,
)
from adapt.retriever.index import ExactIndex
from adapt.stages.hybrid import candidates, choose
from tests.conftest import DOCS, QUERIES

CORPUS = [Document(i, t) for i, t in DOCS]
ASKED = [Query(i, t) for i, t in QUERIES]


@pytest.fixture(scope="module")
def student(tiny_colbert):
    torch.manual_seed(0)
    model = ColBERT.load(str(tiny_colbert))
    return model, ExactIndex.build(model, CORPUS, 16)


@pytest.fixture(scope="module")
def biencoder(tiny_bert):
    model = DenseEncoder.load(str(tiny_bert), 16)
    return model, DenseIndex.build(model, CORPUS, 16)


def test_zscores_of_a_constant_signal_are_zero_not_nan():
    assert zscores(np.array([3.0, 3.0, 3.0])).tolist() == [0.0, 0.0, 0.0]
    assert zscores(np.array([7.0])).tolist() == [0.0]


def test_zscore_fusion_is_the_weighted_sum_of_per_query_zscores():
    student, bm25 = np.array([3.0, 2.0, 1.0]), np.array([0.0, 4.0, 8.0])
    pool = Pool(["a", "b", "c"], {"student": student, "bm25": bm25}, {})
    fused = dict(pool.fuse(Weights(student=0.25, bm25=0.75)))
    expected = 0.25 * zscores(student) + 0.75 * zscores(bm25)
    assert [fused[d] for d in "abc"] == pytest.approx(expected.tolist())
    assert [d for d, _ in pool.fuse(Weights(student=0.25, bm25=0.75))] == ["c", "b", "a"]


def test_a_constant_signal_leaves_the_other_order():
    pool = Pool(["a", "b", "c"], {"student": np.array([1.0, 3.0, 2.0]), "bm25": np.zeros(3)}, {})
    assert [d for d, _ in pool.fuse(Weights(0.5, 0.5))] == ["b", "c", "a"]


def test_rrf_counts_only_the_lists_that_hold_a_document():
    pool = Pool(
        ["a", "b", "c"],
        {"student": np.zeros(3), "bm25": np.zeros(3)},
        {"student": np.array([1, 2, 0]), "bm25": np.array([0, 1, 2])},
    )
    fused = dict(pool.fuse(Weights(student=1.0, bm25=1.0), "rrf"))
    assert fused["a"] == pytest.approx(1 / (RRF_K + 1))
    assert fused["b"] == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))
    assert fused["c"] == pytest.approx(1 / (RRF_K + 2))


def test_bad_weights_and_methods_are_refused():
    with pytest.raises(AdaptError, match=">= 0"):
        Weights(student=-0.1)
    with pytest.raises(AdaptError, match="one > 0"):
        Weights()
    pool = Pool(["a"], {"student": np.ones(1)}, {"student": np.ones(1, dtype=int)})
    with pytest.raises(AdaptError, match="bm25, which was not searched"):
        pool.fuse(Weights(0.5, 0.5))
    with pytest.raises(AdaptError, match="choose one of zscore, rrf"):
        pool.fuse(Weights(student=1), "borda")


def test_the_pool_is_the_union_of_top_k_each_scored_exactly(student):
    model, index = student
    bm25 = BM25Index.build(CORPUS)
    pools = HybridSearcher(ExactSignal(index, model), bm25).pools(ASKED, depth=2)
    own = index.search(model, ASKED, 2)
    lexical = {q: [hit for hit in hits if hit[1] > 0] for q, hits in bm25.search(ASKED, 2).items()}
    encoded = model.encode_queries([q.text for q in ASKED]).float()
    maxsim = index.score(encoded)
    lexical_all = bm25.score_all(ASKED)
    for n, query in enumerate(ASKED):
        pool = pools[query.id]
        expected = {d for d, _ in own[query.id]} | {d for d, _ in lexical[query.id]}
        assert set(pool.doc_ids) == expected and len(pool.doc_ids) == len(expected)
        rows = [index.doc_ids.index(d) for d in pool.doc_ids]
        assert pool.scores["student"] == pytest.approx(maxsim[n, rows].tolist(), rel=1e-5)
        assert pool.scores["bm25"] == pytest.approx(lexical_all[n, rows].tolist())
        assert [pool.doc_ids[i] for i in np.argsort(pool.ranks["student"])][-2:] == [
            d for d, _ in own[query.id]
        ]


def test_one_signal_alone_reproduces_its_own_ranking(student):
    model, index = student
    searcher = HybridSearcher(ExactSignal(index, model), BM25Index.build(CORPUS))
    own = index.search(model, ASKED, 3)
    hybrid = searcher.search(ASKED, 3, Weights(student=1.0, bm25=0.0))
    assert {q: [d for d, _ in hits] for q, hits in hybrid.items()} == {
        q: [d for d, _ in hits] for q, hits in own.items()
    }


def test_fused_rankings_are_ids_whatever_each_index_order(student):
    """A BM25 index over the corpus in another order fuses to the same ranking of the same ids."""
    model, index = student
    signal = ExactSignal(index, model)
    same = HybridSearcher(signal, BM25Index.build(CORPUS)).search(ASKED, 5)
    reversed_order = HybridSearcher(signal, BM25Index.build(CORPUS[::-1])).search(ASKED, 5)
    assert [d for d, _ in same["q2"]][0] == "d2"  # "install a package": both signals agree
    assert {q: [d for d, _ in h] for q, h in same.items()} == {
        q: [d for d, _ in h] for q, h in reversed_order.items()
    }
    assert all(isinstance(d, str) and d.startswith("d") for h in same.values() for d, _ in h)


def test_another_corpus_is_refused(student):
    model, index = student
    with pytest.raises(AdaptError, match="not the same ones"):
        HybridSearcher(ExactSignal(index, model), BM25Index.build(CORPUS[:-1]))


def test_the_biencoder_scores_pooled_documents_it_did_not_return(student, biencoder):
    model, index = student
    dense, dense_index = biencoder
    searcher = HybridSearcher(
        ExactSignal(index, model), BM25Index.build(CORPUS), FaissSignal(dense_index, dense)
    )
    pools = searcher.pools(ASKED, depth=2)
    with torch.no_grad():
        queries = dense.encode([q.text for q in ASKED])
        docs = dense.encode([d.full_text for d in CORPUS], 16)
    cosine = (queries @ docs.T).numpy()
    position = {d.id: i for i, d in enumerate(CORPUS)}
    for n, query in enumerate(ASKED):
        pool = pools[query.id]
        expected = [cosine[n, position[d]] for d in pool.doc_ids]
        assert pool.scores["biencoder"] == pytest.approx(expected, abs=1e-5)
        assert (pool.ranks["biencoder"] > 0).sum() == 2
    assert any((pool.ranks["biencoder"] == 0).any() for pool in pools.values())


def test_hybrid_search_needs_a_scorable_index(student):
    model, _ = student
    with pytest.raises(AdaptError, match="exact or faiss index"):
        student_signal(object(), model)


def test_a_query_of_stop_words_scores_zero_everywhere_and_adds_nothing(student):
    model, index = student
    bm25 = BM25Index.build(CORPUS)
    empty = [Query("q", "what is the")]
    assert not bm25.score_all(empty).any()
    pool = HybridSearcher(ExactSignal(index, model), bm25).pools(empty, depth=2)["q"]
    assert len(pool.doc_ids) == 2 and not pool.ranks["bm25"].any()


def test_bm25_index_round_trip_keeps_scores_and_settings(tmp_path):
    built = BM25Index.build(CORPUS)
    built.save(tmp_path / "bm25")
    loaded = BM25Index.load(tmp_path / "bm25", CORPUS)
    assert loaded.doc_ids == built.doc_ids
    assert np.array_equal(loaded.score_all(ASKED), built.score_all(ASKED))
    assert loaded.search(ASKED, 3) == built.search(ASKED, 3)
    settings = loaded.settings
    assert (settings["k1"], settings["b"], settings["stemmer"]) == (0.9, 0.4, "snowball-english")
    assert "the" in settings["stopwords"] and settings["documents"] == len(CORPUS)


def test_a_stored_bm25_index_refuses_another_corpus(tmp_path):
    BM25Index.build(CORPUS).save(tmp_path / "bm25")
    edited = [*CORPUS[:-1], Document(CORPUS[-1].id, CORPUS[-1].text + " edited")]
    with pytest.raises(AdaptError, match="another corpus"):
        BM25Index.load(tmp_path / "bm25", edited)
    with pytest.raises(AdaptError, match="no BM25 index"):
        BM25Index.load(tmp_path / "missing")


def test_a_stored_biencoder_index_searches_alike_and_refuses_another_corpus(tiny_bert, tmp_path):
    at = biencoder_path(tmp_path / "index.pt")
    assert at.name == "index.pt.biencoder"
    assert bm25_path(tmp_path / "index.pt").name == "index.pt.bm25"
    built = build_biencoder(str(tiny_bert), CORPUS, 16, at)
    loaded = load_biencoder(at, CORPUS)
    assert loaded.index.search(loaded.model, ASKED, 3) == built.index.search(built.model, ASKED, 3)
    with pytest.raises(AdaptError, match="another corpus"):
        load_biencoder(at, CORPUS[:-1])


def test_a_run_with_qrels_reports_each_student_fused_with_bm25_and_the_bi_encoder(
    tiny_beir, tiny_bert, tmp_path, monkeypatch, capsys
):
    """Every evaluated iteration gets a hybrid row (its own eval-hybrid.json, the BM25 and
    bi-encoder indexes built once per run), tested against the best row without fusion, and
    the report's first lines name the retriever to take home."""
    from rich.console import Console

    from adapt import pipeline
    from adapt.data import read_qrels
    from adapt.evaluate import per_query
    from adapt.io import read_json, read_jsonl
    from tests.conftest import labels_config, run_cli

    config = labels_config(tiny_beir, tiny_bert, queries_split="train")
    run_dir = tmp_path / "run"
    summary = pipeline.run(config, run_dir, Console(quiet=True))
    for iteration in (0, 1):
        found = read_json(run_dir / f"iter-{iteration}" / "eval-hybrid.json")
        assert found["signals"] == "BM25 + bi-encoder" and set(found["per_query"]["ndcg@10"]) == {
            "q1",
            "q2",
            "q3",
            "q4",
        }
    assert (run_dir / "hybrid" / "bm25").is_dir() and (run_dir / "hybrid" / "biencoder").is_dir()
    labels = [row["label"] for row in summary["hybrid"]]
    assert labels == [
        "ColBERT start + BM25 + bi-encoder (hybrid)",
        "iteration 1 + BM25 + bi-encoder (hybrid)",
    ]
    assert all("vs_best_plain" in row for row in summary["hybrid"])
    report = (run_dir / "report.md").read_text()
    assert "iteration 1 + BM25 + bi-encoder (hybrid) |" in report and "Take home: **" in report
    # `adapt search --hybrid` fuses the same indexes the same way: the run's metrics, by ids.
    iteration = run_dir / "iter-1"
    out = tmp_path / "hybrid.trec"
    done = run_cli(
        monkeypatch, capsys, "search", "--checkpoint", str(iteration / "checkpoint"), "--index",
        str(iteration / "index.pt"), "--hybrid", str(run_dir / "hybrid"), "--queries",
        str(tiny_beir / "queries.jsonl"), "--k", "100", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    hits = {r["query_id"]: r["hits"] for r in read_jsonl(out.with_suffix(".jsonl"))}
    values = per_query(read_qrels(tiny_beir / "qrels" / "test.tsv"), hits)
    assert values["ndcg@10"] == read_json(iteration / "eval-hybrid.json")["per_query"]["ndcg@10"]
    # `adapt index --hybrid` builds the same indexes outside the run, and the Python API's
    # Run.search(hybrid=True) fuses the run's own: both give the report's ranking.
    alone = tmp_path / "alone"
    done = run_cli(
        monkeypatch, capsys, "index", "--checkpoint", str(iteration / "checkpoint"), "--corpus",
        str(tiny_beir), "--out", str(alone / "index.pt"), "--doc-maxlen", "16", "--hybrid",
        str(alone / "hybrid"), "--biencoder", str(tiny_bert),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = tmp_path / "alone.trec"
    done = run_cli(
        monkeypatch, capsys, "search", "--checkpoint", str(iteration / "checkpoint"), "--index",
        str(alone / "index.pt"), "--hybrid", str(alone / "hybrid"), "--queries",
        str(tiny_beir / "queries.jsonl"), "--k", "100", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    again = {r["query_id"]: r["hits"] for r in read_jsonl(out.with_suffix(".jsonl"))}
    assert per_query(read_qrels(tiny_beir / "qrels" / "test.tsv"), again) == values
    import adapt

    queries = adapt.read_queries(tiny_beir)
    fused = adapt.open_run(run_dir).search(queries, k=100, hybrid=True)
    assert per_query(read_qrels(tiny_beir / "qrels" / "test.tsv"), fused) == values


@dataclass
class Given:
    """A student signal with set scores per query: what the check's choice reads from it."""

    doc_ids: list[str]
    rows: dict[str, np.ndarray]

    def batch(self, queries: list[Query], depth: int) -> FullBatch:
        del depth
        return FullBatch(np.stack([self.rows[q.id] for q in queries]))


def test_the_check_moves_from_equal_weights_only_on_significant_evidence():
    """Written queries whose words are their passage's: BM25 finds each first. A student that
    ranks each passage last makes the largest BM25 share significantly better than equal
    weights on six queries, and it is chosen; on three it is better but not significantly, and
    equal weights stay; a student that ranks each passage first ties every weighting."""
    written = {
        "d1": "mutable tuple",
        "d2": "pip install package",
        "d3": "dict key value",
        "d5": "read write file",
        "d6": "thread lock memory",
        "d7": "float number speed",
    }
    asked = [Query(f"gen-{doc}", text) for doc, text in written.items()]
    ids = [d.id for d in CORPUS]
    bm25 = BM25Index.build(CORPUS)

    def student(source_score: float) -> Given:
        rows = {}
        for query in asked:
            row = np.arange(len(ids), dtype=np.float64)
            row[ids.index(query.id.removeprefix("gen-"))] = source_score
            rows[query.id] = row
        return Given(ids, rows)

    assert [w.bm25 for w in candidates(True)] == pytest.approx([1 / 3, 0.25, 0.5, 0.75])
    wrong = choose(HybridSearcher(student(-1.0), bm25), asked, False, len(ids))
    means = [t["ndcg@10"] for t in wrong["tried"]]
    assert means[-1] == 1.0 > max(means[:-1]) and wrong["tried"][-1]["vs_equal"]["p_value"] < 0.05
    assert wrong["weights"]["bm25"] == 0.75 and wrong["chosen_on"] == 6
    few = choose(HybridSearcher(student(-1.0), bm25), asked[:3], False, len(ids))
    assert few["tried"][-1]["ndcg@10"] > few["tried"][0]["ndcg@10"]
    assert few["tried"][-1]["vs_equal"]["p_value"] >= 0.05
    assert few["weights"] == {"student": 0.5, "bm25": 0.5, "biencoder": 0.0}
    right = choose(HybridSearcher(student(100.0), bm25), asked, False, len(ids))
    assert [t["ndcg@10"] for t in right["tried"]] == [1.0, 1.0, 1.0]
    assert right["weights"] == {"student": 0.5, "bm25": 0.5, "biencoder": 0.0}
