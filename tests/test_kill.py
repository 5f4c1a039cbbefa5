"""A scoring run killed with SIGKILL resumes without recomputing any stored score."""

import json
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.conftest import N_HITS, N_QUERIES, WORDS, tiny_student


def score_args(inputs, out, cache) -> list[str]:
    """`adapt score` on `inputs`, pinned to fp32: the tests compare scores from different batch
    compositions (resumed, sharded, one process) at fp32 tolerances, and `auto` is bf16 on a chip
    with bf16 units, where such scores differ enough to swap near-tied documents."""
    corpus, queries, candidates = inputs
    return [
        *("score", "--candidates", str(candidates), "--corpus", str(corpus)),
        *("--queries", str(queries), "--out", str(out), "--cache", str(cache)),
        *("--teacher", "smollm2-135m", "--prompt", "yes-no", "--dtype", "float32"),
    ]


def _score(inputs, out, cache) -> list[str]:
    return [sys.executable, "-m", "adapt", *score_args(inputs, out, cache)]


def _stored(cache) -> int:
    if not cache.exists():
        return 0
    try:
        return sqlite3.connect(cache).execute("SELECT COUNT(*) FROM scores").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


def kill_after_first_commit(command: list[str], cache, total: int) -> int:
    """Start `command`, SIGKILL it once it has committed some scores to `cache`, and return how
    many it stored: some, not all of `total`, or the kill proves nothing."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while _stored(cache) == 0 and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stored = _stored(cache)
    assert 0 < stored < total, "the kill must land after a committed batch and before the end"
    return stored


def test_sigkill_during_scoring_then_resume(cli, short_inputs, tmp_path):
    total = N_HITS * N_QUERIES
    cache = tmp_path / "cache.sqlite"
    stored = kill_after_first_commit(
        _score(short_inputs, tmp_path / "killed.jsonl", cache), cache, total
    )
    assert not (tmp_path / "killed.jsonl").exists()  # nothing half-written

    resumed = cli(*score_args(short_inputs, tmp_path / "resumed.jsonl", cache))
    assert resumed.returncode == 0, resumed.stderr
    assert f"{total - stored} new, {stored} from the cache" in " ".join(resumed.stderr.split())

    fresh = cli(*score_args(short_inputs, tmp_path / "fresh.jsonl", tmp_path / "other.sqlite"))
    assert fresh.returncode == 0, fresh.stderr
    resumed_rows = [json.loads(x) for x in (tmp_path / "resumed.jsonl").read_text().splitlines()]
    fresh_rows = [json.loads(x) for x in (tmp_path / "fresh.jsonl").read_text().splitlines()]
    for a, b in zip(resumed_rows, fresh_rows, strict=True):
        assert a["docs"] == b["docs"]
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-4)


@pytest.fixture(scope="module")
def run_inputs(tiny_bert, tmp_path_factory):
    """A recipe whose indexing (2,000 documents) and training (15 epochs) each take seconds,
    so a kill can be aimed inside either stage."""
    import random

    rng = random.Random(0)
    tmp_path = tmp_path_factory.mktemp("kill-run")
    data = tmp_path / "data"
    (data / "qrels").mkdir(parents=True)
    (data / "corpus.jsonl").write_text(
        "".join(
            json.dumps({"_id": f"d{i}", "text": " ".join(rng.choices(WORDS, k=14))}) + "\n"
            for i in range(2000)
        )
    )
    (data / "queries.jsonl").write_text(
        "".join(
            json.dumps({"_id": f"q{j}", "text": " ".join(WORDS[j : j + 3])}) + "\n"
            for j in range(4)
        )
    )
    (data / "qrels" / "test.tsv").write_text("".join(f"q{j}\td{j}\t1\n" for j in range(4)))
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        f"""iterations = 1
[data]
corpus = "{data}"
queries = "{data}"
qrels = "{data}/qrels/test.tsv"
{tiny_student(tiny_bert)}encode_batch_size = 8
[teacher]
model = "smollm2-135m"
pointwise_prompt = "query-likelihood"
pairwise_prompt = "from-pointwise"
[distill]
top_k = 3
nway = 3
n_pairs = 2
delta = 3
batch_size = 1
epochs = 15
lr = 1e-4
[generate]
check_queries = 3
"""
    )
    return recipe


@pytest.fixture(scope="module")
def uninterrupted(run_inputs, tmp_path_factory) -> list[dict]:
    run_dir = tmp_path_factory.mktemp("fresh")
    fresh = subprocess.run(_run(run_inputs, run_dir), capture_output=True, text=True, timeout=600)
    assert fresh.returncode == 0, fresh.stderr
    return json.loads((run_dir / "report.json").read_text())["iterations"]


def run_args(recipe, run_dir) -> list[str]:
    return ["run", "--recipe", str(recipe), "--run-dir", str(run_dir), "--private-cache"]


def _run(recipe, run_dir) -> list[str]:
    return [sys.executable, "-m", "adapt", *run_args(recipe, run_dir)]


def _stages(run_dir) -> dict:
    try:
        return json.loads((run_dir / "stages.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


@pytest.mark.parametrize(
    ("after", "inside", "output"),
    [
        ("iter-0/checkpoint", "indexing", "iter-0/index.pt"),
        ("iter-1/pairs.jsonl", "training", "iter-1/checkpoint"),
    ],
)
def test_sigkill_inside_a_stage_then_resume_equals_an_uninterrupted_run(
    cli, run_inputs, uninterrupted, tmp_path, after, inside, output
):
    run_dir = tmp_path / "killed"
    process = subprocess.Popen(
        _run(run_inputs, run_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while after not in _stages(run_dir) and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    # The next stage starts at once. A fixed second was too long on a faster CPU (the kill landed
    # two stages later); the loop above sees the record within 50 ms, and 0.1 s more is inside.
    time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert after in _stages(run_dir) and output not in _stages(run_dir), f"kill missed {inside}"
    assert not (run_dir / output).exists()  # nothing half-written in place
    stored = _stored(run_dir / "teacher-cache.sqlite")

    resumed = cli(*run_args(run_inputs, run_dir))
    assert resumed.returncode == 0, resumed.stderr
    if inside == "training":  # the teacher's scores were complete: it is not even loaded
        assert "loading teacher" not in resumed.stderr
        assert _stored(run_dir / "teacher-cache.sqlite") == stored
    resumed_report = json.loads((run_dir / "report.json").read_text())["iterations"]
    for a, b in zip(resumed_report, uninterrupted, strict=True):
        assert a["metrics"] == b["metrics"]


def test_ctrl_c_says_what_is_kept_and_how_to_resume(scoring_inputs, tmp_path):
    """Typer turns SIGINT into a silent exit 130; adapt says what survived it."""
    cache = tmp_path / "cache.sqlite"
    process = subprocess.Popen(
        _score(scoring_inputs, tmp_path / "out.jsonl", cache),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # SIGINT's default, as a shell's foreground command has it: a test run started with `&`
        # has it ignored, and Python then raises no KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 300
    while _stored(cache) == 0 and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    said = " ".join(stderr.split())
    assert "interrupted. Kept: every finished stage, and the teacher scores this command " in said
    # Scores are committed every few seconds: what it says it kept is what the file holds.
    assert f"stored ({_stored(cache)} scores in {cache})" in said
    assert "run the same command to resume" in said
