"""`adapt bench` end to end on tiny real models: every method, one report, resume, bad recipes."""

import errno
import json
import os

import pytest
from rich.console import Console

from adapt.bench import _share_start, run_bench
from adapt.bench_recipe import load_bench
from adapt.errors import InputError
from adapt.io import read_json


def _recipe(tmp_path, tiny_beir, tiny_bert, methods=None) -> str:
    methods = methods or ["bm25", "biencoder", "start", "pairdistill", "kd", "teacher-rerank"]
    return f"""
name = "tiny"
methods = {json.dumps(methods)}
rerank_queries = 3
[defaults]
iterations = 2
[defaults.student]
model = "{tiny_bert}"
dim = 16
doc_maxlen = 16
eval_doc_maxlen = 16
query_maxlen = 12
[defaults.teacher]
model = "smollm2-135m"
pointwise_prompt = "query-likelihood"
pairwise_prompt = "from-pointwise"
max_document_tokens = 24
[defaults.distill]
top_k = 3
nway = 3
n_pairs = 2
delta = 3
batch_size = 2
lr = 1e-3
[[domains]]
name = "tiny"
[domains.data]
corpus = "{tiny_beir}"
queries = "{tiny_beir}"
queries_split = "half-1"
qrels = "{tiny_beir}/qrels/test.tsv"
"""


def test_bench_runs_every_method_into_one_report_and_resumes(tiny_beir, tiny_bert, tmp_path):
    # The bench recipe's own keys are checked before anything runs.
    recipe = tmp_path / "bench.toml"
    recipe.write_text(_recipe(tmp_path, tiny_beir, tiny_bert))
    out = tmp_path / "bench"
    summary = run_bench(recipe, out, Console(quiet=True))
    rows = {r["method"]: r for r in summary["domains"]["tiny"]["rows"]}
    assert list(rows) == [
        "bm25",
        "biencoder",
        "start",
        "pairdistill@1",
        "pairdistill@2",
        "kd@1",
        "teacher-rerank",
    ]
    assert rows["teacher-rerank"]["queries"] == 3  # the sample, compared on the same queries
    assert all("vs_start" in r for m, r in rows.items() if m != "start")
    # The adapted runs start from the start's files (hard links), computed once.
    start_ckpt = out / "tiny/start/iter-0/checkpoint/model.safetensors"
    kd_ckpt = out / "tiny/kd/iter-0/checkpoint/model.safetensors"
    assert start_ckpt.stat().st_ino == kd_ckpt.stat().st_ino
    # L_KD only reused the full run's pointwise scores (one shared cache) but trained otherwise.
    kd_pointwise = (out / "tiny/kd/iter-1/pointwise.jsonl").read_text()
    assert kd_pointwise == (out / "tiny/pairdistill/iter-1/pointwise.jsonl").read_text()
    # L_KD only trains on L_KD alone; the full run adds lambda_pair (3) x L_pair.
    log = lambda method: [  # noqa: E731
        json.loads(x) for x in (out / f"tiny/{method}/iter-1/train-log.jsonl").open()
    ]
    assert all(r["loss"] == pytest.approx(r["kd"]) for r in log("kd"))
    full = log("pairdistill")
    assert all(r["loss"] == pytest.approx(r["kd"] + 3 * r["pair"]) for r in full)
    assert any(r["pair"] > 0 for r in full)
    # The report's first lines judge the last adapted row against the baselines and the start.
    domain = summary["domains"]["tiny"]
    assert domain["verdict"][0].startswith("**+ L_KD + L_pair, iteration 2: nDCG@10 ")
    assert rows["pairdistill@2"]["vs_best_reference"]["reference"] in {
        rows[m]["label"] for m in ("bm25", "biencoder", "start")
    }
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3  # bars, loss curves, teacher agreement
    assert "| ColBERT start |" in (out / "report.md").read_text()
    # Resume: a second run recomputes nothing and gives the same report.
    outputs = [p for p in out.rglob("*") if p.name in {"result.json", "eval.json", "index.pt"}]
    outputs += list(out.rglob("iter-*/*.jsonl")) + list(out.rglob("model.safetensors"))
    before = {p: p.stat().st_mtime_ns for p in outputs}
    again = run_bench(recipe, out, Console(quiet=True))
    assert again["domains"]["tiny"]["rows"] == summary["domains"]["tiny"]["rows"]
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_bench_rows_for_the_labels_teacher_and_the_hybrids(tiny_beir, tiny_bert, tmp_path):
    recipe = tmp_path / "bench.toml"
    methods = ["bm25", "start", "labels", "start+hybrid"]
    recipe.write_text(
        _recipe(tmp_path, tiny_beir, tiny_bert, methods).replace("iterations = 2", "iterations = 1")
    )
    out = tmp_path / "bench"
    summary = run_bench(recipe, out, Console(quiet=True))
    rows = {r["method"]: r for r in summary["domains"]["tiny"]["rows"]}
    assert list(rows) == ["bm25", "start", "labels@1", "start+hybrid"]
    # The labels run trained on the judgments: its teacher scores are the qrels' grades.
    labels = read_json(out / "tiny/labels/config.json")["teacher"]
    assert labels["model"] == "labels" and labels["pairwise_prompt"] == "from-pointwise"
    assert "checkpoint" in rows["labels@1"]
    # The start's hybrid is the start run's own hybrid evaluation, tested against the best row
    # without fusion (the labels student's included), and no checkpoint alone.
    hybrid = read_json(out / "tiny/start/iter-0/eval-hybrid.json")
    assert rows["start+hybrid"]["metrics"] == hybrid["metrics"]
    plain = max(
        (rows[m] for m in ("bm25", "start", "labels@1")), key=lambda r: r["metrics"]["ndcg@10"]
    )
    assert rows["start+hybrid"]["vs_best_reference"]["reference"] == plain["label"]
    assert "checkpoint" not in rows["start+hybrid"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('methods = ["bm25", "splade"]\n[[domains]]\nname = "x"', "unknown method"),
        ('methodz = ["bm25"]\n[[domains]]\nname = "x"', "unknown key"),
        ('methods = ["bm25"]', "no [[domains]]"),
        ('[[domains]]\nname = "x"\ndata = { corpus = "c" }', "needs qrels"),
        ('[[domains]]\nname = "x"\ndata = { qrels = "q" }\n[[domains]]\nname = "x"', "unique name"),
        ('[[domains]]\nname = "x"\ndistill = { top_kk = 3 }', "unknown setting 'distill.top_kk'"),
        ('[[domains]]\nname = "x"\nmethods = ["kd", "bm52"]', "unknown method"),
        ('[defaults.data]\nqrels = "q"\n[[domains]]\nname = "x"\nlike = "y"', "no earlier domain"),
    ],
)
def test_bad_bench_recipes_are_refused_with_the_reason(tmp_path, text, expected):
    recipe = tmp_path / "bench.toml"
    recipe.write_text(text)
    with pytest.raises(InputError, match=expected.replace("[", r"\[")):
        load_bench(recipe)


def test_a_domain_may_name_its_own_methods(tmp_path):
    recipe = tmp_path / "bench.toml"
    recipe.write_text(
        'methods = ["bm25", "start"]\n[defaults.data]\nqrels = "q"\n'
        '[[domains]]\nname = "a"\n[[domains]]\nname = "b"\nmethods = ["start", "kd"]\n'
    )
    bench = load_bench(recipe)
    assert bench.methods_of("a") == ["bm25", "start"]
    assert bench.methods_of("b") == ["start", "kd"]


def test_an_ablation_bench_reuses_another_benchs_scores_and_start(tiny_beir, tiny_bert, tmp_path):
    from adapt.teacher.cache import ScoreCache

    recipe = tmp_path / "bench.toml"
    recipe.write_text(_recipe(tmp_path, tiny_beir, tiny_bert, ["start", "pairdistill"]))
    first = tmp_path / "first"
    run_bench(recipe, first, Console(quiet=True))
    stored = len(ScoreCache(first / "tiny" / "teacher-cache.sqlite"))
    ablation = recipe.read_text().replace(
        'name = "tiny"\n[domains.data]',
        # One iteration: the second's candidates come from a student trained otherwise.
        'name = "lr"\nlike = "tiny"\niterations = 1\ndistill = { lr = 5e-3 }\n[domains.data]',
    )
    ablation = ablation.replace(
        'methods = ["start"', f'teacher_cache = "{first}"\nmethods = ["start"'
    )
    recipe.write_text(ablation)
    out = tmp_path / "ablation"
    summary = run_bench(recipe, out, Console(quiet=True))
    assert len(ScoreCache(first / "tiny" / "teacher-cache.sqlite")) == stored  # nothing rescored
    assert not (out / "lr" / "teacher-cache.sqlite").exists()
    start = "start/iter-0/checkpoint/model.safetensors"
    assert (out / "lr" / start).stat().st_ino == (first / "tiny" / start).stat().st_ino
    timings = "start/timings.json"  # the shared start keeps the time it took
    assert read_json(out / "lr" / timings) == read_json(first / "tiny" / timings)
    rows = {r["method"]: r for r in summary["domains"]["lr"]["rows"]}
    assert rows["start"]["wall_s"] > 0 and set(rows) == {"start", "pairdistill@1"}


def test_domains_reuse_an_earlier_domains_scores_and_start_wherever_the_bench_is_written(
    tiny_beir, tiny_bert, tmp_path
):
    """c is like b, b like tiny: both read tiny's scores and start (a chain ends where they are)."""
    from adapt.teacher.cache import ScoreCache

    recipe = tmp_path / "bench.toml"
    text = _recipe(tmp_path, tiny_beir, tiny_bert, ["start", "pairdistill"])
    domain = text[text.index("[[domains]]") :]
    b = domain.replace('name = "tiny"', 'name = "b"\nlike = "tiny"\nmethods = ["start"]')
    # One iteration: the second's candidates come from a student trained otherwise.
    c = domain.replace(
        'name = "tiny"', 'name = "c"\nlike = "b"\niterations = 1\ndistill = { lr = 5e-3 }'
    )
    recipe.write_text(text)
    out = tmp_path / "anywhere"
    run_bench(recipe, out, Console(quiet=True))
    stored = len(ScoreCache(out / "tiny" / "teacher-cache.sqlite"))
    recipe.write_text(recipe.read_text() + b + c)
    run_bench(recipe, out, Console(quiet=True))
    assert len(ScoreCache(out / "tiny" / "teacher-cache.sqlite")) == stored  # nothing rescored
    assert not any((out / d / "teacher-cache.sqlite").exists() for d in ("b", "c"))
    start = "start/iter-0/checkpoint/model.safetensors"
    assert (out / "c" / start).stat().st_ino == (out / "tiny" / start).stat().st_ino
    assert (out / "c" / "pairdistill" / "iter-1" / "eval.json").is_file()


def test_a_missing_teacher_cache_bench_is_refused_before_anything_runs(
    tiny_beir, tiny_bert, tmp_path
):
    recipe = tmp_path / "bench.toml"
    text = _recipe(tmp_path, tiny_beir, tiny_bert, ["start"])
    recipe.write_text(
        text.replace('methods = ["start"', 'teacher_cache = "nowhere"\nmethods = ["start"')
    )
    with pytest.raises(InputError, match="nowhere/tiny does not exist"):
        run_bench(recipe, tmp_path / "out", Console(quiet=True))
    assert not (tmp_path / "out").exists()
    # teacher_cache naming this bench's own folder, `like` a domain that has not run yet.
    out = tmp_path / "out"
    head, domain = text.split("[[domains]]")
    head = head.replace('methods = ["start"', f'teacher_cache = "{out}"\nmethods = ["start"')
    first = domain.replace('name = "tiny"', 'name = "tiny"\nlike = "later"')
    later = domain.replace('name = "tiny"', 'name = "later"')
    recipe.write_text(f"{head}[[domains]]{first}[[domains]]{later}")
    with pytest.raises(InputError, match="later does not exist"):
        run_bench(recipe, out, Console(quiet=True))


def test_a_shared_start_is_copied_where_hard_links_fail(tmp_path, monkeypatch):
    """Across file systems os.link fails with EXDEV: the run still gets the start's files."""
    start = tmp_path / "start"
    (start / "iter-0" / "checkpoint").mkdir(parents=True)
    (start / "iter-0" / "checkpoint" / "model.bin").write_bytes(b"weights")
    (start / "stages.json").write_text('{"iter-0/checkpoint": "fp", "iter-1/index.pt": "other"}')

    def cross_device(source, target):
        raise OSError(errno.EXDEV, "Invalid cross-device link", source)

    monkeypatch.setattr(os, "link", cross_device)
    _share_start(start, tmp_path / "run")
    copied = tmp_path / "run" / "iter-0" / "checkpoint" / "model.bin"
    assert copied.read_bytes() == b"weights"
    assert read_json(tmp_path / "run" / "stages.json") == {"iter-0/checkpoint": "fp"}
