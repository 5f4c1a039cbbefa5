"""The Python API, for notebooks and scripts: what `adapt run`, `adapt search` and `adapt eval`
do, on the same code. Importing it is cheap; torch loads when a run or a search starts.

    import adapt

    run = adapt.run("recipes/demo.toml")                 # runs/demo; a finished run returns at once
    print("\n".join(run.report["verdict"]))              # beside BM25, the bi-encoder, the start
    ranking = run.search(adapt.read_queries("demo/pyfaq", "test"), k=100)
    print(adapt.metrics(ranking, "demo/pyfaq/qrels/test.tsv"))

The README's example is the same; tests/test_layout.py runs it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from adapt.config import Config, load_config, run_name
from adapt.data import Qrels, Query, Ranking, read_qrels
from adapt.errors import AdaptError
from adapt.io import read_json
from adapt.teacher.cache import shared_path

# `adapt run`'s flags, by keyword: the recipe setting each replaces.
SETTINGS = {
    "corpus": "data.corpus",
    "queries": "data.queries",
    "queries_split": "data.queries_split",
    "max_queries": "data.max_queries",
    "eval_split": "data.eval_split",
    "qrels": "data.qrels",
    "eval_queries": "data.eval_queries",
    "student": "student.model",
    "student_kind": "student.kind",
    "index": "student.index",
    "teacher": "teacher.model",
    "labels": "data.labels",
    "engine": "teacher.engine",
    "dtype": "teacher.dtype",
    "pointwise_prompt": "teacher.pointwise_prompt",
    "pairwise_prompt": "teacher.pairwise_prompt",
    "trust_remote_code": "teacher.trust_remote_code",
    "iterations": "iterations",
    "top_k": "distill.top_k",
    "seed": "distill.seed",
    "generate_queries": "generate.queries",
    "ray_address": "teacher.ray_address",
    "ray_actors": "teacher.ray_actors",
}
DENSE_DEFAULT = "minilm"  # `student="dense"`: the paper's DPR experiment, as a bi-encoder


def prepare_run(
    recipe: str | Path | Config | None = None,
    run_dir: str | Path | None = None,
    cache: str | Path | None = None,
    private_cache: bool = False,
    **settings,
) -> tuple[Config, Path, Path]:
    """(config, run directory, score cache) of a run, checked before anything heavy loads:
    the recipe's (or `recipe` itself, a Config), with `settings` (keywords of SETTINGS, None
    for unset) over it. The run directory defaults to runs/NAME, the cache to the one shared by
    every run on this machine.

    >>> prepare_run(None, corpus="corpus.jsonl", lr=1e-5)
    Traceback (most recent call last):
    adapt.errors.AdaptError: unknown setting(s) ['lr'] (known: corpus, queries, ...)
    """
    if unknown := set(settings) - set(SETTINGS):
        raise AdaptError(f"unknown setting(s) {sorted(unknown)} (known: {', '.join(SETTINGS)})")
    if isinstance(recipe, Config):
        if any(v is not None for v in settings.values()):
            raise AdaptError("settings go into the Config itself when a Config is given")
        config = recipe
    else:
        if settings.get("student") == "dense":
            settings.update(student=DENSE_DEFAULT, student_kind="dense")
        overrides = {SETTINGS[k]: v for k, v in settings.items()}
        config = load_config(Path(recipe) if recipe else None, overrides)
        if settings.get("generate_queries") and config.data.queries:
            raise AdaptError("--generate-queries is for runs without queries: drop --queries")
    target = Path(run_dir) if run_dir else Path("runs") / run_name(config)
    if private_cache and cache:
        raise AdaptError("give --cache PATH or --private-cache, not both")
    scores = target / "teacher-cache.sqlite" if private_cache else Path(cache or shared_path())
    return config, target, scores


def run(
    recipe: str | Path | Config | None = None,
    run_dir: str | Path | None = None,
    *,
    force: bool = False,
    cache: str | Path | None = None,
    private_cache: bool = False,
    console: Console | None = None,
    **settings,
) -> "Run":
    """Adapt as `adapt run` does, from a recipe file or a Config, with `settings` (`adapt run`'s
    flags as keywords: corpus, queries, teacher, iterations, ...) over it; a finished run
    returns at once, a killed one resumes."""
    config, target, scores = prepare_run(recipe, run_dir, cache, private_cache, **settings)
    from adapt import pipeline  # torch and transformers: seconds, after the cheap checks

    pipeline.run(config, target, console or Console(stderr=True), force, cache=scores)
    return Run(target)


def open_run(path: str | Path) -> "Run":
    """A run directory `adapt run` wrote (finished, or stopped part way)."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise AdaptError(f"{path}: not an adapt run directory (no config.json)")
    return Run(path)


@dataclass
class Run:
    """A run directory: its config, report, checkpoints, and search with them."""

    path: Path

    @property
    def config(self) -> Config:
        return load_config(self.path / "config.toml")

    @property
    def report(self) -> dict:
        """report.json: the verdict lines first, metrics and diagnostics per iteration."""
        from adapt.report import build

        stored = self.path / "report.json"
        return read_json(stored) if stored.is_file() else build(self.path)

    def checkpoint(self, iteration: int | None = None) -> Path:
        """Iteration N's student (default: the last one trained; 0 is the start)."""
        return self._folder(iteration) / "checkpoint"

    def search(
        self,
        queries: str | Sequence[str | Query],
        k: int = 10,
        iteration: int | None = None,
        hybrid: bool = False,
    ) -> Ranking:
        """The top-`k` of each query with iteration N's student and index (default: the last
        one), {query id: [(doc id, score), ...]}; a query given as text is its own id. With
        `hybrid`, fused with the run's BM25 and bi-encoder as the report's hybrid rows (with the
        weights the run chose for that checkpoint)."""
        from adapt.retrieval import search_index
        from adapt.retriever.backend import index_in

        batch = [
            q if isinstance(q, Query) else Query(q, q)
            for q in ([queries] if isinstance(queries, str) else queries)
        ]
        folder = self._folder(iteration)
        found = index_in(folder)
        if found is None:
            raise AdaptError(f"{folder}: no index (the run stopped before indexing it)")
        fused = self.path / "hybrid"
        if hybrid and not (fused / "bm25").is_dir():
            raise AdaptError(
                f"{fused}: no hybrid indexes (a run builds them when it has qrels or a "
                "label-free check)"
            )
        return search_index(str(folder / "checkpoint"), found, batch, k, fused if hybrid else None)[
            0
        ]

    def _folder(self, iteration: int | None) -> Path:
        n = self.config.iterations if iteration is None else iteration
        return self.path / f"iter-{n}"


def metrics(
    ranking: Ranking,
    qrels: Qrels | str | Path,
    complete: bool = False,
    ignore_identical_ids: bool = False,
) -> dict[str, float]:
    """nDCG@10, Recall@100 and MRR@10 of `ranking` against `qrels` (a file, or loaded), with
    BEIR's semantics: the mean over the judged queries the ranking covers (`complete`: every
    judged query, a missing one as 0).

    >>> metrics({"q1": [("d2", 2.0), ("d1", 1.0)]}, {"q1": {"d1": 1}})["mrr@10"]
    0.5
    """
    from adapt.evaluate import per_query, summarize

    judged = qrels if isinstance(qrels, dict) else read_qrels(Path(qrels))
    values = per_query(
        judged, ranking, complete=complete, ignore_identical_ids=ignore_identical_ids
    )
    return summarize(values)
