"""`adapt bench`: every domain x method of a bench recipe (adapt/bench_recipe.py), resumable,
into one report (adapt/bench_report.py).

Layout: BENCH/DOMAIN/METHOD/ (a run directory for the adapted methods, result.json for the
others), BENCH/DOMAIN/teacher-cache.sqlite shared by the domain's methods (the L_KD-only run
reuses the pointwise scores of the full run; `teacher_cache` points at another bench's, so an
ablation of the training settings scores nothing again), BENCH/report.{json,md,html}. Each
finished method is kept, so a killed bench resumes where it stopped.
"""

import copy
import os
import random
import shutil
import time
from pathlib import Path

from rich.console import Console

from adapt import bench_report
from adapt.bench_recipe import ADAPTED, LABELS, Bench, load_bench
from adapt.config import Config
from adapt.errors import InputError
from adapt.evaluate import EVAL_VERSION, per_query, summarize
from adapt.inputs import Inputs, load_inputs
from adapt.io import read_json, read_jsonl, write_json
from adapt.pipeline import Pipeline
from adapt.stages import baselines
from adapt.stages.context import make_scorer
from adapt.stages.score import score
from adapt.teacher.labels import LABELS as LABELS_TEACHER
from adapt.teacher.templates import FROM_POINTWISE


def run_bench(recipe: Path, out: Path, console: Console) -> dict:
    bench = load_bench(recipe)
    inputs = {name: load_inputs(config) for name, config in bench.domains.items()}  # fail early
    for name, config in bench.domains.items():  # unjudged adaptation queries fail early too
        if "labels" in bench.methods_of(name):
            load_inputs(labels_config(config))
    shared = {name: _shared(bench, name, out) for name in bench.domains}
    order = {(out / name).resolve(): i for i, name in enumerate(bench.domains)}  # run in turn
    for i, (name, folder) in enumerate(shared.items()):
        if folder is None or order.get(folder.resolve(), i + 1) <= i:
            continue
        if not folder.is_dir():
            raise InputError(
                recipe,
                f"domain {name}: {folder} does not exist (run the bench it belongs to first, "
                "or reuse an earlier domain)",
            )
    for name, config in bench.domains.items():
        console.rule(f"domain {name}")
        runner = DomainRunner(config, inputs[name], out / name, console, shared[name])
        for method in bench.methods_of(name):
            console.print(f"[bold]{name}: {LABELS[method]}[/]")
            runner.run(method, bench.rerank_queries)
    return bench_report.build(out, bench)


def _shared(bench: Bench, name: str, out: Path) -> Path | None:
    """The folder whose teacher scores and start a domain reuses: `like` in teacher_cache's bench,
    else in this one, wherever `--out` puts it."""
    if bench.teacher_cache:
        return Path(bench.teacher_cache) / bench.like[name]
    return out / bench.like[name] if bench.like[name] != name else None


class DomainRunner:
    def __init__(
        self, config: Config, inputs: Inputs, root: Path, console: Console, shared: Path | None
    ) -> None:
        self.config, self.inputs, self.root, self.console = config, inputs, root, console
        self.shared = shared  # another bench's domain: its scores and start are reused
        # Scores are keyed by teacher, template and texts, so sharing a cache is safe.
        self.cache = (shared or root) / "teacher-cache.sqlite"
        root.mkdir(parents=True, exist_ok=True)

    def run(self, method: str, rerank_queries: int) -> None:
        if method in ADAPTED or method.endswith("+hybrid"):  # a hybrid row is its run's
            self._adapt(method.removesuffix("+hybrid"))
            return
        result = self.root / method / "result.json"
        if method in baselines.LABELS:
            baselines.evaluate(method, self.config, self.inputs, result, self.console)
            return
        fingerprint = self.config.fingerprint("data", "student", "teacher", "search_k")
        fingerprint += f"|{EVAL_VERSION}|{rerank_queries}|{self.config.distill.top_k}"
        if result.is_file() and read_json(result).get("fingerprint") == fingerprint:
            return
        start = time.time()
        ranking, settings = self._teacher_rerank(rerank_queries)
        values = per_query(self.inputs.qrels, ranking)
        # Only the sampled queries were reranked.
        values = {m: {q: v[q] for q in ranking if q in v} for m, v in values.items()}
        write_json(
            result,
            {
                "fingerprint": fingerprint,
                "settings": settings,
                "metrics": summarize(values),
                "per_query": values,
                "wall_s": round(time.time() - start, 3),
            },
        )

    def _teacher_rerank(self, sample: int):
        """The teacher's own order of the start's top-k: what distillation aims at."""
        self._adapt("start")
        hits = {
            r["query_id"]: r["hits"] for r in read_jsonl(self.root / "start/iter-0/eval-run.jsonl")
        }
        queries = [q for q in self.inputs.eval_queries if q.id in hits]
        if 0 < sample < len(queries):
            queries = sorted(random.Random(0).sample(queries, sample), key=lambda q: q.id)
        k = self.config.distill.top_k
        docs = self.inputs.doc_by_id
        rows = [{"query_id": q.id, "hits": hits[q.id][:k]} for q in queries]
        scorer = make_scorer(self.config.teacher, self.cache, self.console)
        by_id = {q.id: q for q in queries}
        records, _ = score(scorer, rows, by_id, docs, self.console, "teacher: reranking")
        ranking = {
            r["query_id"]: list(zip(r["docs"], r["scores"]))
            + [tuple(h) for h in hits[r["query_id"]][k:]]
            for r in records
        }
        return ranking, {"queries": len(queries), "top_k": k, "computed": scorer.computed}

    def _adapt(self, method: str) -> None:
        config = copy.deepcopy(self.config)
        force = False
        if method == "start":
            config.iterations = 0
            if self.shared and (self.shared / "start" / "stages.json").is_file():
                # Its stages' fingerprints cover only the student and the data: where those
                # differ, the start is recomputed; `force` lets the other settings differ.
                _share_start(self.shared / "start", self.root / "start")
                force = True
        elif method == "kd":
            config.iterations, config.distill.lambda_pair = 1, 0.0
        elif method == "labels":
            config = labels_config(config)
        run_dir = self.root / method
        if method != "start":
            self._adapt("start")
            _share_start(self.root / "start", run_dir)
        Pipeline(
            config, run_dir, self.console, force, self.cache, baselines=False, check=False
        ).run_all()


def labels_config(config: Config) -> Config:
    """The bench's `labels` method: the domain's setting with the adaptation queries' judgments
    as the teacher, a perfect one (what the trainer carries of it)."""
    config = copy.deepcopy(config)
    config.teacher.model, config.teacher.pairwise_prompt = LABELS_TEACHER, FROM_POINTWISE
    return config


def _share_start(start: Path, run_dir: Path) -> None:
    """Give an adapted run the start's checkpoint, index and evaluation (hard links or copies,
    with their stage records): every method of a domain starts from the same student, computed
    once."""
    if (run_dir / "iter-0").exists():
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / ".iter-0.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(start / "iter-0", tmp, copy_function=_link_or_copy)
    stages = {k: v for k, v in read_json(start / "stages.json").items() if k.startswith("iter-0/")}
    write_json(run_dir / "stages.json", stages)
    if (start / "timings.json").is_file():
        timings = read_json(start / "timings.json")
        write_json(run_dir / "timings.json", {k: v for k, v in timings.items() if "iter-0/" in k})
    os.replace(tmp, run_dir / "iter-0")


def _link_or_copy(source: str, target: str) -> None:
    """A hard link costs no space, but fails across file systems (EXDEV, a run folder on another
    mount than the start's) or where links are refused: then a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
