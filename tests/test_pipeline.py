"""`adapt run` end to end on tiny real models: stages, report, resume, changed configs."""

import json

import pytest
from rich.console import Console

from adapt import pipeline
from adapt.config import load_config
from adapt.errors import AdaptError
from adapt.stages.guard import read_check
from adapt.teacher.agreement import agreement_with_student


def _config(tiny_beir, tiny_bert, **distill):
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
            "teacher.model": "smollm2-135m",
            "teacher.pointwise_prompt": "query-likelihood",
            "teacher.pairwise_prompt": "ab",
            "iterations": 2,
            "distill.top_k": 3,
            "distill.nway": 3,
            "distill.n_pairs": 2,
            "distill.delta": 3,
            "distill.batch_size": 2,
            "distill.lr": 1e-3,
            "generate.check_queries": 3,
            **{f"distill.{k}": v for k, v in distill.items()},
        },
    )


def test_run_writes_every_stage_and_a_report_then_resumes(tiny_beir, tiny_bert, tmp_path):
    run_dir = tmp_path / "run"
    console = Console(quiet=True)
    summary = pipeline.run(_config(tiny_beir, tiny_bert), run_dir, console)
    for name in [
        "iter-0/checkpoint",
        "iter-0/eval.json",
        "iter-1/candidates.jsonl",
        "iter-1/pointwise.jsonl",
        "iter-1/pairs.jsonl",
        "iter-1/checkpoint",
        "iter-2/checkpoint",
        "iter-2/eval.json",
        "report.md",
        "config.toml",
    ]:
        assert (run_dir / name).exists(), name
    evaluated = [r["iteration"] for r in summary["iterations"] if "metrics" in r]
    assert evaluated == [0, 1, 2]
    assert "order_agreement" in summary["iterations"][1]["teacher_diagnostics"]
    read = lambda name: [json.loads(x) for x in (run_dir / name).read_text().splitlines()]  # noqa: E731
    order = {r["query_id"]: r["docs"] for r in read("iter-1/targets.jsonl")}
    pairs = [(r["query_id"], i, j) for r in read("iter-1/pairs.jsonl") for i, j, *_ in r["pairs"]]
    assert pairs and all(0 < order[q].index(j) - order[q].index(i) < 3 for q, i, j in pairs)

    # Iteration 2 re-scored only candidates the cache did not hold.
    from adapt.teacher.cache import ScoreCache

    stored = len(ScoreCache(run_dir / "teacher-cache.sqlite"))
    n_candidates = sum(
        len(json.loads(line)["hits"])
        for i in (1, 2)
        for line in (run_dir / f"iter-{i}/candidates.jsonl").read_text().splitlines()
    )
    assert stored < n_candidates + 4 * 2 * 2 * 2  # pointwise + both-order pairs, with reuse

    # Rerunning the same command does no stage again.
    stages = (run_dir / "stages.json").read_text()
    mtime = (run_dir / "iter-2/checkpoint/model.safetensors").stat().st_mtime
    pipeline.run(_config(tiny_beir, tiny_bert), run_dir, console)
    assert (run_dir / "stages.json").read_text() == stages
    assert (run_dir / "iter-2/checkpoint/model.safetensors").stat().st_mtime == mtime


def test_changed_config_is_refused_unless_forced_and_more_iterations_continue(
    tiny_beir, tiny_bert, tmp_path
):
    run_dir = tmp_path / "run"
    console = Console(quiet=True)
    config = _config(tiny_beir, tiny_bert)
    config.iterations = 1
    pipeline.run(config, run_dir, console)
    changed = _config(tiny_beir, tiny_bert, lr=5e-4)
    changed.iterations = 1
    with pytest.raises(AdaptError, match=r"config differs from the run's \(distill.lr\)"):
        pipeline.run(changed, run_dir, console)
    before = (run_dir / "iter-1/pointwise.jsonl").stat().st_mtime
    pipeline.run(changed, run_dir, console, force=True)
    # Only the stages downstream of the change ran again: teacher scores were kept.
    assert (run_dir / "iter-1/pointwise.jsonl").stat().st_mtime == before
    assert json.loads((run_dir / "config.json").read_text())["distill"]["lr"] == 5e-4
    # More iterations are no config change: the run goes on to a second iteration and keeps its
    # first (how recipes/paper-8gpu.sh stops a run after each iteration's training).
    trained = (run_dir / "iter-1/checkpoint").stat().st_mtime
    changed.iterations = 2
    summary = pipeline.run(changed, run_dir, console)
    assert len(summary["iterations"]) == 3
    assert (run_dir / "iter-1/checkpoint").stat().st_mtime == trained
    # A run with queries never writes queries for adaptation: another [generate] default (how
    # many to write, their temperature) resumes it, and only the label-free check runs again.
    changed.generate.queries, changed.generate.temperature = 7, 0.5
    checked = (run_dir / "guard/check.json").stat().st_mtime
    pipeline.run(changed, run_dir, console)
    assert (run_dir / "iter-2/checkpoint").stat().st_mtime < checked
    assert (run_dir / "guard/check.json").stat().st_mtime > checked


def test_label_free_teacher_check_is_reported_and_can_refuse(tiny_beir, tiny_bert, tmp_path):
    console = Console(quiet=True)
    config = _config(tiny_beir, tiny_bert)
    config.iterations = 1
    summary = pipeline.run(config, tmp_path / "run", console)
    agreement = summary["iterations"][1]["teacher_agreement"]
    stored = json.loads((tmp_path / "run/iter-1/pointwise-diagnostics.json").read_text())
    assert agreement["queries"] > 0 and agreement == pipeline.report.rounded(stored)
    assert "teacher-student agreement" in (tmp_path / "run" / "report.md").read_text()
    config.teacher.min_student_agreement = 1.01  # no teacher can reach it
    with pytest.raises(AdaptError, match="Refusing to train"):
        pipeline.run(config, tmp_path / "strict", console)
    assert not (tmp_path / "strict" / "iter-1" / "checkpoint").exists()


def test_fused_targets_at_weight_zero_follow_the_student(tiny_beir, tiny_bert, tmp_path):
    config = _config(
        tiny_beir,
        tiny_bert,
        teacher_weight=0.0,
        bm25_weight=0.0,
        biencoder_weight=0.0,
        min_pair_confidence=0.3,
    )
    config.iterations = 1
    pipeline.run(config, tmp_path / "run", Console(quiet=True))
    stored = (tmp_path / "run/iter-1/targets.jsonl").open()
    targets = {r["query_id"]: r["docs"] for r in map(json.loads, stored)}
    rows = [json.loads(x) for x in (tmp_path / "run/iter-1/candidates.jsonl").open()]
    for row in rows:
        scores = [s for _, s in row["hits"]]
        if len(set(scores)) == len(scores):  # ties may fall either way
            assert targets[row["query_id"]] == [d for d, _ in row["hits"]]


def test_adapt_train_on_a_runs_stage_files_equals_the_runs_train_stage(
    cli, tiny_beir, tiny_bert, tmp_path
):
    """Fused targets (w < 1) and the confident-pair filter on: `adapt train` reads the same
    targets and pairs by id, so it trains exactly the pipeline's student."""
    import torch
    from safetensors.torch import load_file

    config = _config(tiny_beir, tiny_bert, teacher_weight=0.5, min_pair_confidence=0.05)
    config.iterations = 1
    run_dir = tmp_path / "run"
    pipeline.run(config, run_dir, Console(quiet=True))
    pairs = [json.loads(line) for line in (run_dir / "iter-1/pairs.jsonl").open()]
    assert all(isinstance(p[0], str) for row in pairs for p in row["pairs"])  # ids, not positions
    result = cli(
        *("train", "--checkpoint", run_dir / "iter-0/checkpoint"),
        *("--targets", run_dir / "iter-1/targets.jsonl", "--pairs", run_dir / "iter-1/pairs.jsonl"),
        *("--corpus", tiny_beir, "--queries", tiny_beir, "--iteration", "1"),
        *("--recipe", run_dir / "config.toml", "--out", tmp_path / "cli"),
    )
    assert result.returncode == 0, result.stderr
    ours = load_file(run_dir / "iter-1/checkpoint/model.safetensors")
    theirs = load_file(tmp_path / "cli/model.safetensors")
    start = load_file(run_dir / "iter-0/checkpoint/model.safetensors")
    assert any(not torch.equal(ours[k], start[k]) for k in ours)  # training moved the student
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_agreement_is_kendalls_tau_between_teacher_and_student_per_query():
    candidates = [
        {"query_id": "same", "hits": [["a", 3.0], ["b", 2.0], ["c", 1.0]]},
        {"query_id": "reversed", "hits": [["a", 3.0], ["b", 2.0], ["c", 1.0]]},
        {"query_id": "flat", "hits": [["a", 3.0], ["b", 2.0]]},
    ]
    pointwise = [
        {"query_id": "same", "docs": ["a", "b", "c"], "scores": [9.0, 5.0, 1.0]},
        {"query_id": "reversed", "docs": ["c", "b", "a"], "scores": [9.0, 5.0, 1.0]},
        {"query_id": "flat", "docs": ["a", "b"], "scores": [1.0, 1.0]},  # no order: left out
    ]
    found = agreement_with_student(candidates, pointwise)
    assert found == {"queries": 2, "teacher_student_tau": 0.0}  # mean of 1 and -1
    found = agreement_with_student(candidates[:1], pointwise[:1])
    assert found == {"queries": 1, "teacher_student_tau": 1.0}


def test_a_run_states_its_plan_before_any_work(tiny_beir, tiny_bert, tmp_path):
    config = _config(tiny_beir, tiny_bert)
    run = pipeline.Pipeline(config, tmp_path / "run", Console(quiet=True))
    n = len(run.inputs.queries)
    text = run.plan()
    run.run.close()
    assert f"2 iteration(s), each {n} queries x top-3 = {3 * n} pointwise prompts" in text
    assert f"{n * 2 * 2} A/B prompts at most" in text  # 2 pairs a query, both orders
    assert not (tmp_path / "run" / "iter-0").exists()


def test_force_with_another_seed_reruns_what_the_seed_selects(tiny_beir, tiny_bert, tmp_path):
    """The seed picks the sampled queries: a changed seed re-runs candidates and everything
    after them for the new sample, instead of reusing (or crashing on) the old one's files."""
    config = _config(tiny_beir, tiny_bert)
    config.iterations, config.data.max_queries = 1, 3
    run_dir = tmp_path / "run"
    pipeline.run(config, run_dir, Console(quiet=True))
    config.distill.seed = 1
    pipeline.run(config, run_dir, Console(quiet=True), force=True)
    adapted = {q["_id"] for q in map(json.loads, (run_dir / "queries.jsonl").open())}
    candidates = {
        r["query_id"] for r in map(json.loads, (run_dir / "iter-1/candidates.jsonl").open())
    }
    targets = {r["query_id"] for r in map(json.loads, (run_dir / "iter-1/targets.jsonl").open())}
    assert len(adapted) == 3 and candidates == targets == adapted


def test_a_teacher_that_cannot_be_had_is_refused_before_any_work(tiny_beir, tiny_bert, tmp_path):
    """No start, no index, no run directory to block the corrected command."""
    config = _config(tiny_beir, tiny_bert)
    config.teacher.model = "gpt-5"
    with pytest.raises(AdaptError, match="unknown teacher 'gpt-5'"):
        pipeline.Pipeline(config, tmp_path / "run", Console(quiet=True))
    assert not (tmp_path / "run").exists()


def test_checkpoints_kept_along_training_are_evaluated_and_checked(tiny_beir, tiny_bert, tmp_path):
    console = Console(quiet=True)
    runs = {}
    for kept in (1, 3):
        config = _config(tiny_beir, tiny_bert, checkpoints=kept)
        config.iterations = 1
        runs[kept] = tmp_path / f"kept-{kept}"
        pipeline.run(config, runs[kept], console, cache=tmp_path / "cache.sqlite")
    steps = len((runs[3] / "iter-1/train-log.jsonl").read_text().splitlines())
    kept_at = [steps // 3, 2 * steps // 3]
    assert steps >= 3 and not list((runs[1] / "iter-1").glob("step-*"))
    for step in kept_at:
        assert (runs[3] / f"iter-1/step-{step}/checkpoint/model.safetensors").is_file()
        assert (runs[3] / f"iter-1/step-{step}/eval.json").is_file()
    # Keeping checkpoints changes nothing of the last one: the same weights, the same metrics.
    last = [(r / "iter-1/checkpoint/model.safetensors").read_bytes() for r in runs.values()]
    assert last[0] == last[1]
    summary = json.loads((runs[3] / "report.json").read_text())
    assert [k["step"] for k in summary["iterations"][1]["kept"]] == kept_at
    assert f"| iteration 1, step {kept_at[0]} |" in (runs[3] / "report.md").read_text()
    # The label-free check chose among all of them, the start included.
    check = read_check(runs[3] / "guard/check.json")
    names = ["iter-0", *(f"iter-1/step-{s}" for s in kept_at), "iter-1"]
    assert list(check["checkpoints"]) == names
    assert check["call"]["checkpoint"] in names[1:] and check["call"]["use"] in names
    assert "it recommends" in (runs[3] / "report.md").read_text()
