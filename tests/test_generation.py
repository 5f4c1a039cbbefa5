"""Corpus-only adaptation: the teacher writes the queries, the start filters them, the loop runs
on them; a kill loses one written batch, shards write theirs, and each ends as one whole run."""

import json
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from adapt.data import Document, Query
from adapt.io import read_jsonl
from adapt.teacher import generation
from adapt.teacher.cache import ScoreCache
from adapt.teacher.scoring import TeacherScorer
from adapt.teacher.templates import load_template
from tests.conftest import WORDS, tiny_student
from tests.test_kill import _run, run_args


def _recipe(
    tmp_path: Path,
    corpus: Path,
    student: Path,
    n: int,
    qrels: Path | None,
    top_k: int = 3,
    iterations: int = 1,
) -> Path:
    recipe = tmp_path / "recipe.toml"
    evaluation = f'qrels = "{qrels}"\neval_queries = "{corpus}"\n' if qrels else ""
    recipe.write_text(
        f"""iterations = {iterations}
[data]
corpus = "{corpus}"
{evaluation}{tiny_student(student)}[teacher]
model = "smollm2-135m"
dtype = "float32"
batch_size = 4
[generate]
queries = {n}
check_queries = 3
[distill]
top_k = {top_k}
nway = {top_k}
"""
    )
    return recipe


def test_a_corpus_only_run_writes_filters_and_adapts(cli, tiny_beir, tiny_bert, tmp_path):
    recipe = _recipe(tmp_path, tiny_beir, tiny_bert, 8, tiny_beir / "qrels" / "test.tsv")
    run = tmp_path / "run"
    done = cli(*run_args(recipe, run))
    assert done.returncode == 0, done.stderr
    stats = json.loads((run / "generated" / "stats.json").read_text())
    kept = read_jsonl(run / "generated" / "queries.jsonl")
    assert stats["passages"] == stats["written"] == 8 and stats["kept"] == len(kept)
    assert 0 < len(kept) <= stats["unique"] <= 8
    # The filter: each kept query's source passage is among the start's top-3 for it, which is
    # exactly what the start handed the teacher as its candidates.
    candidates = {
        r["query_id"]: [h[0] for h in r["hits"]]
        for r in read_jsonl(run / "iter-1" / "candidates.jsonl")
    }
    assert set(candidates) == {q["_id"] for q in kept}
    assert all(q["passage_id"] in candidates[q["_id"]] for q in kept)
    assert [q["_id"] for q in read_jsonl(run / "queries.jsonl")] == [q["_id"] for q in kept]
    report = (run / "report.md").read_text()
    assert f"written by the teacher for 8 sampled passages: {stats['unique']} unique" in report
    assert "iteration 1" in report  # evaluated on the real queries beside the baselines
    # Every passage wrote an adaptation query: none is left for the label-free check, and both
    # the plan and the report say so instead of promising or silently dropping it.
    said = " ".join((done.stdout + done.stderr).split())
    assert "no label-free check: every passage is the source of an adaptation query" in said
    assert "No label-free check: every passage is the source of an adaptation query" in report


def _written(cache: Path) -> int:
    """Queries stored in a cache file (0 before its table exists)."""
    try:
        return sqlite3.connect(cache).execute("SELECT COUNT(*) FROM written").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus.jsonl"
    rng = random.Random(0)
    corpus.write_text(
        "".join(
            json.dumps({"_id": f"d{i}", "text": " ".join(rng.choices(WORDS, k=14))}) + "\n"
            for i in range(12)
        )
    )
    return corpus


def test_a_kill_while_writing_queries_resumes_to_the_same_queries(cli, tiny_bert, tmp_path):
    """8 queries written in 2 batches of 4, each a few seconds; the top-6 of 12 passages keeps
    about half of them. Iteration 0 only: written, filtered and stored; no teacher scoring."""
    recipe = _recipe(tmp_path, _corpus(tmp_path), tiny_bert, 8, None, top_k=6, iterations=0)
    fresh = cli(*run_args(recipe, tmp_path / "fresh"))
    assert fresh.returncode == 0, fresh.stderr
    killed = tmp_path / "killed"
    cache = killed / "teacher-cache.sqlite"
    process = subprocess.Popen(
        _run(recipe, killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while _written(cache) < 4 and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert _written(cache) == 4, "the kill must land between the first and the last batch"
    resumed = cli(*run_args(recipe, killed))
    assert resumed.returncode == 0, resumed.stderr
    assert "8 queries, 4 already written, 4 to write" in " ".join(resumed.stderr.split())
    fresh_dir = tmp_path / "fresh" / "generated"
    for name in ("written.jsonl", "queries.jsonl"):
        assert (killed / "generated" / name).read_text() == (fresh_dir / name).read_text()
    stats = [json.loads((d / "stats.json").read_text()) for d in (killed / "generated", fresh_dir)]
    for one in stats:
        one.pop("queries_per_s")  # a rate, measured on each run's own batches
    assert stats[0] == stats[1]


def test_shards_write_their_batches_and_the_merged_run_writes_none(cli, tiny_bert, tmp_path):
    recipe = _recipe(tmp_path, _corpus(tmp_path), tiny_bert, 8, None, top_k=6, iterations=0)
    caches = []
    for i in (1, 2):
        run = tmp_path / f"shard-{i}"
        done = cli(*run_args(recipe, run), "--shard", f"{i}/2")
        assert done.returncode == 0, done.stderr
        assert f"shard {i}/2 of the written queries: 4 written" in " ".join(done.stderr.split())
        caches.append(run / "teacher-cache.sqlite")
    main = tmp_path / "main"
    main.mkdir()
    merged = cli("merge", "--into", main / "teacher-cache.sqlite", *caches)
    assert merged.returncode == 0, merged.stderr
    done = cli(*run_args(recipe, main))
    assert done.returncode == 0, done.stderr
    assert "8 queries, 8 already written, 0 to write" in " ".join(done.stderr.split())
    whole = cli(*run_args(recipe, tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    assert (main / "generated" / "written.jsonl").read_text() == (
        tmp_path / "whole" / "generated" / "written.jsonl"
    ).read_text()


def test_written_batches_are_stored_and_keyed_by_their_settings(smol_backend, tmp_path):
    scorer = TeacherScorer(smol_backend, ScoreCache(tmp_path / "c.sqlite"), None)
    template = load_template("generate-question", "generate")
    docs = [Document(f"d{i}", f"owls hunt at night, passage {i}") for i in range(6)]
    first = generation.generate(scorer, template, docs, 0.8, 0)
    assert _written(tmp_path / "c.sqlite") == 6  # two batches of 4 and 2
    progress: list[int] = []
    assert generation.generate(scorer, template, docs, 0.8, 0, progress.append) == first
    assert progress == [6]  # all found, nothing written
    generation.generate(scorer, template, docs, 0.5, 0)  # another temperature: new samples
    edited = [*docs[:5], Document("d5", "green tea leaves")]  # an edited passage: its batch
    generation.generate(scorer, template, edited, 0.8, 0)
    assert _written(tmp_path / "c.sqlite") == 6 + 6 + 2


def test_duplicates_and_empty_queries_are_dropped():
    rows = [
        {"passage_id": "a", "text": "How do owls hunt?"},
        {"passage_id": "b", "text": "how do owls hunt"},
        {"passage_id": "c", "text": "  "},
        {"passage_id": "d", "text": "What is green tea?"},
    ]
    queries = generation.unique_queries(rows)
    assert [q.id for q in queries] == ["gen-a", "gen-d"]
    kept = generation.consistent(queries, {"gen-a": [("x", 1.0)], "gen-d": [("d", 1.0)]})
    assert kept == [Query("gen-d", "What is green tea?")]
