"""The command line's flags, declared once: their help texts and the defaults `--help` shows.
adapt/cli.py's commands take them by name; the `adapt run` flags each replace a recipe setting
(adapt/api.py, SETTINGS)."""

from pathlib import Path
from typing import Annotated

import typer

from adapt.config import Config, DistillConfig, GenerateConfig, StudentConfig, TeacherConfig

Opt = typer.Option

CACHE_HELP = "teacher score cache (SQLite), shared by every run and command that uses it"
SHARED_CACHE = "$ADAPT_CACHE/teacher-scores.sqlite"
ENGINE_HELP = "teacher engine: transformers, or vllm (decoder-only; the [vllm] extra)"
DTYPE_HELP = (
    "teacher precision: auto (bfloat16 where the chip has bf16 units: GPUs, AVX512-BF16, AMX; "
    "else float32), float32, bfloat16 or float16"
)
RAY_HELP = (
    "teacher prompts on a Ray cluster ([ray] extra): auto (the running one), local (one started "
    "for this command), or HOST:PORT; the score cache stays here"
)

# shared by several commands
Cache = Annotated[Path | None, Opt(help=CACHE_HELP, show_default=SHARED_CACHE)]
Engine = Annotated[str, Opt(help=ENGINE_HELP)]
Dtype = Annotated[str, Opt(help=DTYPE_HELP)]
Corpus = Annotated[Path, Opt()]
Queries = Annotated[Path, Opt()]

# adapt run
RunRecipe = Annotated[Path | None, Opt(help="TOML recipe (recipes/*.toml); flags override it")]
RunCorpus = Annotated[
    str | None, Opt(help="BEIR folder, corpus.jsonl or TSV (replaces the recipe's [data])")
]
RunQueries = Annotated[
    str | None,
    Opt(
        help="queries.jsonl, TSV, or one query a line (as --corpus)",
        show_default="none: the teacher writes them (--generate-queries)",
    ),
]
RunGenerateQueries = Annotated[
    int | None,
    Opt(
        min=1,
        help="without --queries: how many passages the teacher writes a query for",
        show_default=str(GenerateConfig.queries),
    ),
]
RunQueriesSplit = Annotated[
    str | None,
    Opt(help="keep queries named in qrels/SPLIT.tsv, or half-1 / half-2", show_default="all"),
]
RunMaxQueries = Annotated[
    int | None, Opt(help="adapt on a seeded sample of this many", show_default="all")
]
RunQrels = Annotated[str | None, Opt(help="qrels to evaluate with (BEIR TSV or TREC)")]
RunEvalQueries = Annotated[
    str | None, Opt(help="queries the qrels judge", show_default="--queries")
]
RunEvalSplit = Annotated[
    str | None, Opt(help="evaluate on qrels/SPLIT.tsv's queries, or half-1 / half-2")
]
RunStudent = Annotated[
    str | None,
    Opt(
        help="built-in name, checkpoint or hub id; 'dense': the MiniLM bi-encoder as student",
        show_default=StudentConfig.model,
    ),
]
RunStudentKind = Annotated[
    str | None,
    Opt(
        help="colbert (multi-vector) or dense (one vector, faiss)",
        show_default=StudentConfig.kind,
    ),
]
RunIndex = Annotated[
    str | None,
    Opt(
        help="exact, plaid (colbert-ai), or auto: PLAID above 100k documents for students "
        "with colbert-ai's markers",
        show_default=StudentConfig.index,
    ),
]
RunTeacher = Annotated[
    str | None,
    Opt(
        help="built-in name, HF id, local folder or .gguf; 'labels': the adaptation "
        "queries' judgments (--labels)",
        show_default=TeacherConfig.model,
    ),
]
RunLabels = Annotated[
    str | None,
    Opt(
        help="with --teacher labels: qrels judging the adaptation queries",
        show_default="the BEIR folder's qrels of --queries-split, else --qrels",
    ),
]
RunEngine = Annotated[str | None, Opt(help=ENGINE_HELP, show_default=TeacherConfig.engine)]
RunDtype = Annotated[str | None, Opt(help=DTYPE_HELP, show_default=TeacherConfig.dtype)]
RunPointwisePrompt = Annotated[
    str | None,
    Opt(help="template name or file", show_default=TeacherConfig.pointwise_prompt),
]
RunPairwisePrompt = Annotated[
    str | None,
    Opt(
        help="template name, file, or from-pointwise",
        show_default=TeacherConfig.pairwise_prompt,
    ),
]
RunIterations = Annotated[
    int | None, Opt(help="distillation iterations", show_default=str(Config.iterations))
]
RunTopK = Annotated[
    int | None,
    Opt(
        help="candidates per query scored by the teacher",
        show_default=str(DistillConfig.top_k),
    ),
]
RunSeed = Annotated[int | None, Opt(show_default=str(DistillConfig.seed))]
RunRunDir = Annotated[
    Path | None,
    Opt(help="default: runs/NAME, NAME the recipe's, else the corpus's (and queries')"),
]
RunForce = Annotated[
    bool, Opt(help="accept a changed config: re-run the stages it affects in this run dir")
]
RunShard = Annotated[
    str | None,
    Opt(help="I/N: score only this shard's teacher prompts of the next iteration, then stop"),
]
RunTrustRemoteCode = Annotated[
    bool, Opt(help="let transformers run a hub teacher's own Python code (off by default)")
]
RunPrivateCache = Annotated[
    bool, Opt(help="keep this run's teacher scores in its own directory, shared with no run")
]
RunRayAddress = Annotated[str | None, Opt(help=RAY_HELP, show_default="none")]
RunRayActors = Annotated[
    int | None,
    Opt(min=1, help="teacher actors on the cluster", show_default="one a GPU, else a CPU"),
]

# adapt teacher-eval
TeacherEvalData = Annotated[Path, Opt(help="BEIR folder with qrels/SPLIT.tsv")]
TeacherEvalTeacher = Annotated[list[str], Opt(help="repeat for several teachers")]
TeacherEvalPrompt = Annotated[list[str], Opt(help="template name or file; repeat for several")]
TeacherEvalSplit = Annotated[str, Opt()]
TeacherEvalQueriesSplit = Annotated[
    str | None,
    Opt(
        help="sample only these queries: qrels/SPLIT.tsv's, or half-1 / half-2, :adapt / :dev "
        "(choose a teacher without reading the test half)",
        show_default="all",
    ),
]
TeacherEvalSample = Annotated[int, Opt(help="judged queries to sample (seeded)")]
TeacherEvalTopK = Annotated[int, Opt(help="the student's candidates the teacher reranks")]
TeacherEvalStudent = Annotated[str, Opt()]
TeacherEvalDim = Annotated[
    int, Opt(help="head width, when the student is a plain encoder (0: the encoder's)")
]
TeacherEvalPairsPerQuery = Annotated[int, Opt(help="(relevant, other) pairs per query")]
TeacherEvalMaxDocumentTokens = Annotated[
    int,
    Opt(min=0, help="cut passages to this many teacher tokens, as a run does (0: template's)"),
]
TeacherEvalSeed = Annotated[int, Opt()]
TeacherEvalOut = Annotated[Path, Opt(help="JSON results")]

# adapt bench
BenchRecipe = Annotated[Path, Opt(help="bench recipe (recipes/bench-*.toml)")]
BenchOut = Annotated[Path | None, Opt(help="default: runs/bench-NAME")]

# adapt index
IndexCheckpoint = Annotated[str, Opt(help="colbert-ai-format checkpoint (path or hub id)")]
IndexOut = Annotated[Path, Opt(help="index to write: a file (exact) or a folder (PLAID)")]
IndexDocMaxlen = Annotated[int, Opt()]
IndexKind = Annotated[
    str,
    Opt(help="exact, plaid (colbert-ai), or auto: PLAID above 100k documents (dense: faiss)"),
]
IndexBatchSize = Annotated[int, Opt()]
IndexHybrid = Annotated[
    Path | None,
    Opt(
        help="also build the BM25 and bi-encoder indexes that `adapt search --hybrid` fuses "
        "with the student, into this folder"
    ),
]
IndexBiencoder = Annotated[
    str,
    Opt(help="with --hybrid: the bi-encoder (the start's encoder as it ships), or 'none'"),
]

# adapt search
SearchCheckpoint = Annotated[str, Opt(help="the checkpoint that built the index (path or hub id)")]
SearchIndexPath = Annotated[Path, Opt("--index")]
SearchQueries = Annotated[Path | None, Opt(help="batch mode: a queries file")]
SearchQuery = Annotated[str | None, Opt(help="one query: shows a table of hits")]
SearchK = Annotated[int, Opt(min=1)]
SearchOut = Annotated[
    Path | None,
    Opt(help="TREC run file (a .jsonl beside it)", show_default="run-QUERIES.trec here"),
]
SearchCorpus = Annotated[
    Path | None,
    Opt(help="texts for --query's table", show_default="the corpus the index was built from"),
]
SearchHybrid = Annotated[
    Path | None,
    Opt(
        help="a run's hybrid/ folder: fuse the student with its BM25 (and bi-encoder) "
        "index, per-query z-scores weighted as the run chose for this checkpoint (else "
        "equally), as the run's report rows"
    ),
]

# adapt eval
EvalRunFile = Annotated[Path, typer.Argument(help="TREC run file or adapt JSONL")]
EvalQrels = Annotated[Path, Opt(help="qrels file, or a BEIR folder (its qrels/test.tsv)")]
EvalComplete = Annotated[
    bool, Opt(help="trec_eval -c: every judged query counts, unretrieved ones as 0")
]
EvalIgnoreIdenticalIds = Annotated[
    bool, Opt(help="drop hits whose id is the query's (BEIR: ArguAna, Quora, CQADupStack)")
]

# adapt score
ScoreCandidates = Annotated[Path, Opt(help="JSONL rows {query_id, hits: [[doc_id, score], ...]}")]
ScoreOut = Annotated[Path, Opt(help="JSONL of teacher-sorted docs and scores")]
ScoreTeacher = Annotated[str, Opt()]
ScorePrompt = Annotated[str, Opt(help="pointwise template name or file")]
ScoreBatchSize = Annotated[int, Opt()]
ScoreShard = Annotated[str | None, Opt(help="I/N: only this shard's queries (hash of the id)")]
ScoreTrustRemoteCode = Annotated[bool, Opt(help="allow a hub teacher's own code")]
ScoreRayAddress = Annotated[str, Opt(help=RAY_HELP, show_default="none")]
ScoreRayActors = Annotated[
    int, Opt(min=0, help="teacher actors on the cluster (0: one a GPU, else a CPU)")
]

# adapt merge
MergeInto = Annotated[Path, Opt(help="score cache to merge into (created if absent)")]
MergeCaches = Annotated[list[Path], typer.Argument(help="score caches written by shards")]

# adapt train
TrainCheckpoint = Annotated[str, Opt(help="student to start from (checkpoint or built-in)")]
TrainTargets = Annotated[Path, Opt(help="targets.jsonl of a run's iter-N")]
TrainPairs = Annotated[Path, Opt(help="pairs.jsonl of a run's iter-N")]
TrainOut = Annotated[Path, Opt(help="folder for the trained checkpoint")]
TrainRecipe = Annotated[Path | None, Opt(help="recipe whose [distill] settings to use")]
TrainIteration = Annotated[int, Opt(min=1, help="which iteration this is (seeds the shuffle)")]

# adapt report
ReportRuns = Annotated[list[Path], typer.Argument(help="one or more run directories")]
