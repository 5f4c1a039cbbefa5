"""What a terminal shows, in a real pseudo-terminal of 80 columns: the run's plan and resume line,
the teacher's bar with its rate, cache hits and estimate, what Ctrl-C (typed, not signalled)
says it kept, and help and listings that fit the width."""

import re
from pathlib import Path

import pytest

from tests.conftest import N_DOCS, N_QUERIES, tiny_student
from tests.terminal import in_terminal
from tests.test_kill import _stored, score_args


def flat(text: str) -> str:
    return " ".join(text.split())


def squeezed(text: str) -> str:
    return "".join(text.split())


def test_teacher_bar_estimate_ctrl_c_and_resume(scoring_inputs, tmp_path):
    # All 160 prompts: the estimate comes after 3 s of scoring, and on a chip with AMX 40 prompts
    # are scored before that.
    total = N_DOCS * N_QUERIES
    cache = tmp_path / "cache.sqlite"
    code, screen = in_terminal(
        score_args(scoring_inputs, tmp_path / "out.jsonl", cache),
        # After the estimate and the first commit: what Ctrl-C keeps is then more than nothing.
        type_ctrl_c_when=lambda text: "prompts/s measured" in text and _stored(cache) > 0,
    )
    said = flat(screen)
    assert f"teacher: pointwise: {total} prompts, 0 already in the cache, {total} to score" in said
    assert re.search(
        r"teacher: pointwise: [0-9.]+ prompts/s measured; about [0-9.]+ (s|min|h) for", said
    )
    assert re.search(rf"\d+/{total} .*[0-9.]+/s .*eta", screen)  # the bar: count, rate, time left
    kept = _stored(cache)
    assert code == 130 and 0 < kept < total
    assert f"the teacher scores this command stored ({kept} scores in {cache})" in said
    assert "run the same command to resume" in said

    code, screen = in_terminal(score_args(scoring_inputs, tmp_path / "out.jsonl", cache))
    assert code == 0
    assert f"{total} prompts, {kept} already in the cache, {total - kept} to score" in flat(screen)


@pytest.fixture()
def tiny_run(tiny_beir, tiny_bert, tmp_path) -> Path:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        f"""iterations = 1
[data]
corpus = "{tiny_beir}"
queries = "{tiny_beir}"
qrels = "{tiny_beir}/qrels/test.tsv"
{tiny_student(tiny_bert)}[teacher]
model = "smollm2-135m"
dtype = "float32"
[distill]
top_k = 3
nway = 3
[generate]
check_queries = 3
"""
    )
    return recipe


def test_a_run_prints_its_plan_and_a_rerun_says_what_it_resumes(tiny_run, tmp_path):
    args = ["run", "--recipe", str(tiny_run), "--run-dir", str(tmp_path / "run"), "--private-cache"]
    code, screen = in_terminal(args)
    said = squeezed(screen)  # long paths wrap at 80 columns
    assert code == 0, screen
    assert f"plan:{tmp_path / 'run'};1iteration(s),each{N_QUERIES}queriesxtop-3=" in said
    assert f"Scoresalreadyinthecache({tmp_path / 'run' / 'teacher-cache.sqlite'})" in said
    assert "resuming" not in said

    code, screen = in_terminal(args)
    assert code == 0
    assert re.search(
        rf"resuming{tmp_path / 'run'}:\d+finishedstageskept\(thelatest:iter-1/eval-hybrid.json\);"
        rf"{N_QUERIES * 3}teacherscoresin",
        squeezed(screen),
    )


@pytest.mark.parametrize("command", [["run", "--help"], ["score", "--help"], ["teachers"]])
def test_help_and_listings_fit_80_columns(command):
    code, screen = in_terminal(command)
    assert code == 0 and "…" not in screen
    assert max(map(len, screen.splitlines())) <= 80


def test_a_measured_rate_gives_the_next_plan_its_time(tmp_path, monkeypatch):
    from rich.console import Console

    from adapt import progress

    monkeypatch.setenv("ADAPT_CACHE", str(tmp_path))
    key = progress.rate_key("teacher", "transformers", "bfloat16", "auto", "query-likelihood")
    assert progress.known_rate(key) is None
    with progress.make_progress(Console(quiet=True)) as shown:
        bar = progress.TeacherBar(shown, "teacher: pointwise", 40)
        bar(0)  # nothing cached
        bar(8)  # too few prompts to keep a rate
        progress.record_rate(key, bar, 500.0)
        assert progress.known_rate(key) is None
        bar(32)
        before = bar.rate
        progress.record_rate(key, bar, 500.0)
        after = bar.rate  # a rate over a growing time falls
    known = progress.known_rate(key)
    assert round(before, 3) >= known["prompts_per_s"] >= round(after, 3)
    assert known["passage_chars"] == 500
    # Four times the prompts, each with twice the passage: eight times the time.
    assert progress.estimate_s(known, 80, 1000.0) == pytest.approx(
        8 * progress.estimate_s(known, 20, 500.0)
    )
