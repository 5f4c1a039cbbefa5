"""The label-free check: its call from per-query values, its held-out passages, and a corpus-only
run whose check never reuses a passage the teacher wrote an adaptation query for."""

from adapt.data import Document, read_qrels
from adapt.evaluate import per_query
from adapt.hub import weights_fingerprint
from adapt.io import read_json, read_jsonl, write_json
from adapt.stages.guard import START, call, choose, held_out_passages, known_items, read_check
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


def test_the_check_recommends_the_best_checkpoint_only_when_it_beats_the_start():
    start = {f"q{i}": 0.5 for i in range(20)}
    early = {q: v + 0.3 + 0.01 * (i % 3) for i, (q, v) in enumerate(start.items())}
    late = {q: v + 0.1 + 0.01 * (i % 3) for i, (q, v) in enumerate(start.items())}
    found = choose({START: start, "iter-1/step-5": early, "iter-1": late})
    assert (found["checkpoint"], found["use"], found["outcome"]) == (
        "iter-1/step-5",
        "iter-1/step-5",
        "better",
    )
    mixed = {**start, "q0": 1.0, "q1": 0.0}  # the best mean, but no evidence: keep the start
    found = choose({START: start, "iter-1/step-5": mixed, "iter-1": start})
    assert (found["checkpoint"], found["use"]) == ("iter-1/step-5", START)


def test_a_check_written_before_checkpoints_were_kept_reads_in_todays_names(tmp_path):
    old = {
        "queries": 2,
        "iterations": {"0": {"ndcg@10": 0.5}, "1": {"ndcg@10": 0.6}},
        "per_query": {"0": {"a": 0.5}, "1": {"a": 0.6}},
        "call": {"recommend": "start", "outcome": "no evidence either way", "iteration": 1},
    }
    write_json(tmp_path / "check.json", old)
    found = read_check(tmp_path / "check.json")
    assert list(found["checkpoints"]) == ["iter-0", "iter-1"]
    assert (found["call"]["checkpoint"], found["call"]["use"]) == ("iter-1", START)


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
    """... and chooses each checkpoint's hybrid weights on the same queries: the report's rows
    and `adapt search --hybrid` fuse with them."""
    qrels = tiny_beir / "qrels" / "test.tsv"
    recipe = _recipe(tmp_path, tiny_beir, tiny_bert, 4, qrels)  # check_queries = 3
    run = tmp_path / "run"
    done = cli(*run_args(recipe, run))
    assert done.returncode == 0, done.stderr
    sources = {r["passage_id"] for r in read_jsonl(run / "generated" / "written.jsonl")}
    checked = read_jsonl(run / "guard" / "queries.jsonl")
    assert len(sources) == 4 and 0 < len(checked) <= 3
    assert not {q["passage_id"] for q in checked} & sources
    check = read_check(run / "guard" / "check.json")
    # Four written queries, batch 8, 2 epochs: 2 steps, the checkpoint after step 1 kept.
    assert list(check["checkpoints"]) == ["iter-0", "iter-1/step-1", "iter-1"]
    assert check["queries"] == len(checked)
    assert set(check["per_query"]["iter-0"]) == {q["_id"] for q in checked}
    assert check["call"]["recommend"] in {"start", "adapted"}
    report = (run / "report.md").read_text()
    assert (
        f"Label-free check (it reads no qrels): on {len(checked)} queries the teacher wrote"
        in report
    )
    assert "it recommends" in report
    # The hybrid weights: chosen per iteration on the check's queries, used by its report row,
    # kept by the checkpoint's fingerprint, and found there by `adapt search --hybrid`.
    table = read_json(run / "hybrid" / "weights.json")
    for iteration in (0, 1):
        folder = run / f"iter-{iteration}"
        chosen = read_json(folder / "hybrid-weights.json")
        assert chosen["chosen_on"] == len(checked) and len(chosen["tried"]) == 4
        better = [
            t
            for t in chosen["tried"]
            if t["vs_equal"]["delta"] > 0 and t["vs_equal"]["p_value"] < 0.05
        ]
        best = max(better, key=lambda t: t["ndcg@10"], default=chosen["tried"][0])
        assert best["weights"] == chosen["weights"]
        assert read_json(folder / "eval-hybrid.json")["weights"] == chosen["weights"]
        assert table[weights_fingerprint(folder / "checkpoint")] == chosen
    out = tmp_path / "fused.trec"
    done = cli(
        "search", "--checkpoint", str(run / "iter-1" / "checkpoint"), "--index",
        str(run / "iter-1" / "index.pt"), "--hybrid", str(run / "hybrid"), "--queries",
        str(tiny_beir / "queries.jsonl"), "--k", "100", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    hits = {r["query_id"]: r["hits"] for r in read_jsonl(out.with_suffix(".jsonl"))}
    fused = read_json(run / "iter-1" / "eval-hybrid.json")["per_query"]
    assert per_query(read_qrels(qrels), hits) == fused
    use = check["call"]["use"]
    assert f"--checkpoint {run / use / 'checkpoint'} --index {run / use / 'index.pt'}" in " ".join(
        report.split()
    )
