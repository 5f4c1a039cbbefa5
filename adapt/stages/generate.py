"""The generate stage of a corpus-only run: the teacher writes one query for each of a seeded
sample of passages (`generated/`); duplicates are dropped, and a query is kept only when the
start ranks its source passage in its top-k, the candidates the teacher will see."""

import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from adapt.config import Config
from adapt.data import Document, Query, Ranking
from adapt.errors import AdaptError, ShardDone
from adapt.io import read_jsonl, write_json, write_jsonl
from adapt.progress import TeacherBar, make_progress
from adapt.retriever.backend import Index
from adapt.stages.context import RunContext, record
from adapt.teacher import generation
from adapt.teacher.scoring import TeacherScorer
from adapt.teacher.templates import Template, load_template


def writing(config: Config, template: Template, dtype: str) -> dict:
    """What the queries the teacher writes depend on (here and in the label-free check's)."""
    g, t = config.generate, config.teacher
    return {
        "teacher": t.model,
        "template": template.digest,
        "dtype": dtype,
        "temperature": g.temperature,
        "seed": config.distill.seed,
    }


def fingerprint(config: Config, template: Template, dtype: str) -> dict:
    return {
        **writing(config, template, dtype),
        "queries": config.generate.queries,
        "top_k": config.distill.top_k,
    }


def write_queries(
    scorer: TeacherScorer,
    config: Config,
    template: Template,
    passages: list[Document],
    console: Console,
    what: str,
    shard: tuple[int, int] | None = None,
) -> tuple[list[dict], TeacherBar]:
    """The teacher writes one query per passage (through the cache), with its bar."""
    with make_progress(console) as progress:
        shown = TeacherBar(
            progress, f"teacher: {what}", len(passages), "queries", "already written",
            "to write",
        )  # fmt: skip
        rows = generation.generate(
            scorer,
            template,
            passages,
            config.generate.temperature,
            config.distill.seed,
            shown,
            shard,
        )
    return rows, shown


def generate(
    scorer: TeacherScorer,
    config: Config,
    template: Template,
    docs: list[Document],
    search: Callable[[list[Query]], Ranking],
    folder: Path,
    console: Console,
    dtype: str,
    shard: tuple[int, int] | None = None,
) -> None:
    """Write `folder`/written.jsonl (every query written), stats.json and queries.jsonl (the
    kept ones with their passage ids); `search` is the start's top-k. A shard writes its share
    of the batches into the cache and stops the run."""
    g, d = config.generate, config.distill
    passages = generation.sample_passages(docs, g.queries, d.seed)
    what = "writing queries"
    rows, shown = write_queries(scorer, config, template, passages, console, what, shard)
    rate = round(shown.rate, 3) if shown.computed else None  # writing alone
    if shard:
        raise ShardDone(
            f"shard {shard[0]}/{shard[1]} of the written queries: "
            f"{shown.computed} written, {len(rows)} of {len(passages)} stored in "
            f"{scorer.cache.path}. When every shard is done: `adapt merge` the caches into "
            "this run's, then run again without --shard"
        )
    write_jsonl(folder / "written.jsonl", rows)
    written = generation.unique_queries(rows)
    kept = generation.consistent(written, search(written))
    stats = {
        "passages": len(passages),
        "written": len(rows),
        "unique": len(written),
        "kept": len(kept),
        "share_kept": round(len(kept) / max(len(passages), 1), 4),
        "filter": f"source passage in the start's top-{d.top_k}",
        "queries_per_s": rate,
        "dtype": dtype,
    }
    write_json(folder / "stats.json", stats)
    write_jsonl(folder / "queries.jsonl", generation.records(kept))
    console.print(
        f"queries: {stats['written']} written, {stats['unique']} unique, {len(kept)} kept "
        f"({stats['filter']})"
    )


def kept_queries(folder: Path) -> list[Query]:
    """The written queries the run adapts on; none is an error the user can act on."""
    queries = [Query(r["_id"], r["text"]) for r in read_jsonl(folder / "queries.jsonl")]
    if not queries:
        raise AdaptError(
            f"no written query survived the filter ({folder / 'stats.json'}): the start "
            "ranks none of their passages in its top-k; try a larger distill.top_k"
        )
    return queries


def step(run: RunContext, built: Index | None, upstream: str) -> None:
    """`generated/` in a corpus-only run; the run then adapts on the kept queries."""
    folder = run.path / "generated"
    out = folder / "queries.jsonl"
    template = load_template(run.config.generate.prompt, "generate")
    fp = record("generate", upstream, **fingerprint(run.config, template, run.teacher_dtype))
    if not run.done(out, fp):
        began = time.time()
        k = run.config.distill.top_k
        generate(
            run.scorer(),
            run.config,
            template,
            run.inputs.docs,
            lambda written: run.search(0, built, written, k),
            folder,
            run.console,
            run.teacher_dtype,
            run.shard,
        )
        run.complete(out, fp, "generated/queries", began)
    run.inputs.use_queries(kept_queries(folder))
