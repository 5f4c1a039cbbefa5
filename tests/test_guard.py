"""The label-free check: its call from per-query values, its held-out passages, and a corpus-only
run whose check never reuses a passage the teacher wrote an adaptation query for."""

import json

from adapt.data import Document
from adapt.io import read_jsonl
from adapt.stages.guard import call, held_out_passages, known_items
from adapt.teacher.generation import unique_queries
from tests.test_generation import _recipe
from tests.test_kill import run_args


def test_the_adapted_student_is_recommended_only_when_significantly_better():
    start = {f"q{i}": 0.5 for i in range(20)}
    better = {q: v + 0.2 + 0.01 * (i % 3) for i, (q, v) in enumerate(start.items())}
    assert call(start, better)["recommend"] == "adapted"
    assert call(start, better)["outcome"] == "better"
    worse = {q: v - 0.2 - 0.01 * (i % 3) for i, (q, v) in enumerate(start.items())}
    assert (call(start, worse)["outcome"], call(start, worse)["recommend"]) == ("worse", "start")
    # One query up, one down: no evidence, and a tie keeps the start.
    mixed = {**start, "q0": 1.0, "q1": 0.0}
    assert call(start, mixed)["outcome"] == "no evidence either way"
    assert call(start, mixed)["recommend"] == "start"


def test_held_out_passages_avoid_the_sources_and_are_seeded():
    docs = [Document(f"d{i}", f"text {i}") for i in range(30)]
    sources = {f"d{i}" for i in range(0, 30, 2)}
    first = held_out_passages(docs, 10, 0, sources)
    assert len(first) == 10 and not {d.id for d in first} & sources
    assert first == held_out_passages(docs, 10, 0, sources)
    assert first != held_out_passages(docs, 10, 1, sources)
    assert len(held_out_passages(docs, 100, 0, sources)) == 15  # at most what is left


def test_known_items_are_the_source_passages():
    rows = [{"passage_id": "d3", "text": "why"}, {"passage_id": "d5", "text": "how"}]
    queries = unique_queries(rows)
    assert known_items(queries) == {"gen-d3": {"d3": 1}, "gen-d5": {"d5": 1}}


def test_a_corpus_only_run_checks_on_passages_it_did_not_adapt_on(
    cli, tiny_beir, tiny_bert, tmp_path
):
    recipe = _recipe(tmp_path, tiny_beir, tiny_bert, 4, None)  # check_queries = 3
    run = tmp_path / "run"
    done = cli(*run_args(recipe, run))
    assert done.returncode == 0, done.stderr
    sources = {r["passage_id"] for r in read_jsonl(run / "generated" / "written.jsonl")}
    checked = read_jsonl(run / "guard" / "queries.jsonl")
    assert len(sources) == 4 and 0 < len(checked) <= 3
    assert not {q["passage_id"] for q in checked} & sources
    check = json.loads((run / "guard" / "check.json").read_text())
    assert set(check["iterations"]) == {"0", "1"} and check["queries"] == len(checked)
    assert set(check["per_query"]["0"]) == {q["_id"] for q in checked}
    assert check["call"]["recommend"] in {"start", "adapted"}
    report = (run / "report.md").read_text()
    assert (
        f"Label-free check (it reads no qrels): on {len(checked)} queries the teacher wrote"
        in report
    )
    assert "it recommends" in report
