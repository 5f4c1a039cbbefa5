"""A scoring run killed with SIGKILL resumes without recomputing any stored score."""

import json
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.conftest import WORDS

N_DOCS, N_QUERIES = 40, 4


@pytest.fixture()
def scoring_inputs(tmp_path):
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


def _score(inputs, out, cache) -> list[str]:
    corpus, queries, candidates = inputs
    return [
        sys.executable,
        "-m",
        "adapt",
        "score",
        "--candidates",
        str(candidates),
        "--corpus",
        str(corpus),
        "--queries",
        str(queries),
        "--out",
        str(out),
        "--cache",
        str(cache),
        "--teacher",
        "smollm2-135m",
        "--prompt",
        "yes-no",
    ]


def _stored(cache) -> int:
    if not cache.exists():
        return 0
    try:
        return sqlite3.connect(cache).execute("SELECT COUNT(*) FROM scores").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


def test_sigkill_during_scoring_then_resume(scoring_inputs, tmp_path):
    total = N_DOCS * N_QUERIES
    cache = tmp_path / "cache.sqlite"
    process = subprocess.Popen(
        _score(scoring_inputs, tmp_path / "killed.jsonl", cache),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while _stored(cache) == 0 and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stored = _stored(cache)
    assert 0 < stored < total, "the kill must land after a committed batch and before the end"
    assert not (tmp_path / "killed.jsonl").exists()  # nothing half-written

    resumed = subprocess.run(
        _score(scoring_inputs, tmp_path / "resumed.jsonl", cache),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"{total - stored} new, {stored} from the cache" in " ".join(resumed.stderr.split())

    fresh = subprocess.run(
        _score(scoring_inputs, tmp_path / "fresh.jsonl", tmp_path / "other.sqlite"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert fresh.returncode == 0, fresh.stderr
    resumed_rows = [json.loads(x) for x in (tmp_path / "resumed.jsonl").read_text().splitlines()]
    fresh_rows = [json.loads(x) for x in (tmp_path / "fresh.jsonl").read_text().splitlines()]
    for a, b in zip(resumed_rows, fresh_rows, strict=True):
        assert a["docs"] == b["docs"]
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-4)
