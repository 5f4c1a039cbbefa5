"""One config object. Defaults are the paper's (METHOD.md); recipes (TOML) and CLI flags override.

The resolved config is written into the run directory, and each stage's fingerprint is a hash of
the config sections it depends on, so a changed setting re-runs exactly the stages it affects.
"""

import dataclasses
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapt.errors import InputError


@dataclass
class DataConfig:
    corpus: str = ""
    queries: str = ""
    # Keep only the queries named in qrels/SPLIT.tsv of a BEIR folder (their labels are not read),
    # or one half ("half-1", "half-2") of a hash split of the query ids.
    queries_split: str | None = None
    # Adapt on a seeded random sample of this many queries (0: all of them).
    max_queries: int = 0
    # Evaluation: qrels and the queries they judge (default: the `queries` file, every query),
    # optionally only one split of them (a BEIR split name or a hash half, as above).
    qrels: str | None = None
    eval_queries: str | None = None
    eval_split: str | None = None
    # The judgments of the adaptation queries, read only by the labels teacher
    # (teacher.model = "labels"). Default: a BEIR folder's qrels of the queries' split
    # (qrels/train.tsv for "train" or "train:adapt"), else `qrels`.
    labels: str | None = None
    # BEIR's rule for collections whose queries are also documents (ArguAna, Quora,
    # CQADupStack): a hit on the query's own id is dropped before the metrics.
    ignore_identical_ids: bool = False


@dataclass
class StudentConfig:
    model: str = "minilm"
    # "colbert" (multi-vector, MaxSim) or "dense" (one mean-pooled vector, searched with faiss).
    kind: str = "colbert"
    # Width of a fresh ColBERT head, fitted by uncentred PCA (0: the encoder's own width, a
    # rotation that keeps every dot product: measured best on dev, docs/benchmarks.md).
    dim: int = 0
    # colbert-ai's [MASK] query augmentation and its [Q]/[D] marker tokens: "auto" keeps what
    # the checkpoint records (colbert-ai checkpoints: both on; a fresh head: both off, measured
    # in docs/benchmarks.md), "on" or "off" forces them.
    query_augmentation: str = "auto"
    markers: str = "auto"
    query_maxlen: int = 32
    # Passages in training (the paper: 180). The index's 300 carried less of a perfect target on
    # SciFact's dev split (+3.0 against +4.1) at twice the step (docs/benchmarks.md).
    doc_maxlen: int = 128
    eval_doc_maxlen: int = 300
    encode_batch_size: int = 32
    # "exact" MaxSim, "plaid" (colbert-ai), or "auto": PLAID above 100k passages when installed
    # and the student uses colbert-ai's markers (PLAID embeds documents through colbert-ai).
    index: str = "auto"
    # Where the student encodes and trains (adapt/device.py): "auto" (a GPU when there is one,
    # by LOCAL_RANK), "cpu", "cuda" or "cuda:N".
    device: str = "auto"
    # Its compute dtype: "auto" is bf16 autocast where the chip multiplies bf16 natively (GPUs
    # from A100 on, AVX512-BF16 or AMX CPUs: 1.8x, same metrics, docs/benchmarks.md), else fp32;
    # "float32" or "bfloat16" force one. The weights and Adam's state stay fp32.
    dtype: str = "auto"


@dataclass
class TeacherConfig:
    model: str = "qwen2.5-coder-0.5b"
    # The defaults are the measured best for the built-in teachers, which answer the paper's
    # Yes/No and A/B prompts at chance (docs/benchmarks.md); recipes/paper.toml has the paper's.
    pointwise_prompt: str = "query-likelihood"
    # A template name/path, or "from-pointwise": P(i>j) = sigmoid((t_i - t_j) / temperature) of
    # the targets: no prompts.
    pairwise_prompt: str = "from-pointwise"
    both_orders: bool = True
    batch_size: int = 8
    # "auto": bf16 where the chip multiplies it natively (GPUs, AVX512-BF16, AMX), else fp32
    # (adapt/precision.py); "float32", "bfloat16" or "float16" pin it. The resolved dtype keys
    # the cache and the pointwise record: a run moved to a chip that resolves otherwise scores
    # again, unless the dtype is pinned.
    dtype: str = "auto"
    trust_remote_code: bool = False
    # Cut passages to this many teacher tokens (0: the template's own limit). Prompt cost grows
    # with it; the start of a passage usually carries what relevance needs.
    max_document_tokens: int = 0
    # Refuse to train when the teacher's mean Kendall tau with the student's candidate order is
    # below this (a label-free sign of a noisy teacher; None: only warn).
    min_student_agreement: float | None = None
    # "transformers" (causal and seq2seq, CPU or GPU) or "vllm" (decoder-only, the [vllm] extra).
    engine: str = "transformers"
    # vLLM's own parallelism and memory settings, passed through (ignored by transformers).
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int = 0  # 0: the model's own
    # Where the transformers engine runs the teacher, by the student's rule (vLLM places itself).
    device: str = "auto"
    # A Ray cluster for the teacher's prompts (adapt/teacher/ray_engine.py): "" runs them in this
    # process; "auto" on the running cluster (`ray start`), "local" on one started for the run,
    # else the cluster's address (HOST:PORT, ray://HOST:PORT). The score cache stays here.
    ray_address: str = ""
    # Teacher actors there, each loading the teacher once (0: one per GPU, else one per CPU).
    ray_actors: int = 0


@dataclass
class GenerateConfig:
    """Corpus-only runs (no queries given): the teacher writes the queries it adapts on."""

    # Passages sampled (seeded by distill.seed), one query written for each; at most the corpus.
    # 60: writing a query and scoring its top-16 costs about 4.3 s on a 2-core CPU with bf16
    # units, so `adapt run --corpus demo/pyfaq` fits the README demo's time (docs/benchmarks.md).
    queries: int = 60
    prompt: str = "generate-question"  # a template of kind "generate" (prompts/)
    temperature: float = 0.8  # sampling temperature of the written queries
    # The label-free check (adapt/guard.py): passages held out of adaptation that the teacher
    # writes a query for, with the same prompt and temperature, in every run (0: no check).
    check_queries: int = 50


@dataclass
class DistillConfig:
    # Defaults: the setting measured best on the demo's dev split with the built-in teacher and
    # sized for a CPU (docs/benchmarks.md, "Round two"); recipes/paper.toml has the paper's
    # (top-100, nway 64, delta 10, 50 pairs, lr 1e-5, batch 32, the teacher's targets alone).
    top_k: int = 16
    nway: int = 16
    delta: int = 4
    n_pairs: int = 16
    lambda_kd: float = 1.0
    lambda_pair: float = 3.0
    # L_CL, the paper's supervised term: the judged positives against the other candidates. Only
    # the labels teacher has judgments; 0 leaves it out. At 1 it carried less of a perfect target
    # to new queries than without it on Cranfield (docs/benchmarks.md, "What the student carries").
    lambda_cl: float = 0.0
    # In-batch negatives: each query's top target passage against every passage of its batch
    # (the other queries' candidates as negatives, colbert-ai's use_ib_negatives); 0 leaves it out.
    # At 1 the labels teacher's student fell 7.9 below the start on Cranfield's dev split
    # (docs/benchmarks.md, "What the student carries").
    lambda_ib: float = 0.0
    temperature: float = 1.0
    # The trainer (lr, epochs, schedule, student_scores, dropout) is chosen with the labels
    # teacher, a perfect target, on dev splits (docs/benchmarks.md, "What the student carries"):
    # adapted on 300 SciFact train claims it gains +3.7 nDCG@10 on 255 held-out train claims
    # (p = 0.002), where round two's trainer (lr 2e-5, one epoch, linear decay, raw scores,
    # dropout) lost 0.6 on the test claims (issue #35).
    lr: float = 1e-4
    batch_size: int = 8  # queries per optimizer step, over all processes
    # Queries per forward pass (0: the whole batch); gradients accumulate up to batch_size, so the
    # paper's 32 queries x 64 passages fit a GPU's memory.
    micro_batch: int = 0
    epochs: int = 2
    # Optimizer steps in all (0: `epochs` passes over the queries); more than one pass cycles
    # through fresh shuffles. Few adaptation queries want several passes.
    steps: int = 0
    # After warmup: "linear" decay to zero, or "constant" (every checkpoint along the run is
    # then a fair "trained N steps" model for the guard to choose among).
    schedule: str = "constant"
    # Checkpoints each iteration keeps along its training, evenly spaced in steps, the last one
    # included (1: the last alone; 2 with the default 2 epochs: one per epoch). With qrels each
    # is evaluated; the label-free check recommends one (adapt/stages/guard.py). `adapt run`
    # keeps them; `adapt train` writes the last alone.
    checkpoints: int = 2
    # The student's scores before both losses: "zscore" per query over its passages (like the
    # targets: order, not each query's scale, which raw MaxSim ties to the query's length), or
    # "raw".
    student_scores: str = "zscore"
    # The encoder's own dropout while training (MiniLM: 0.1 on hidden states and attention);
    # false trains with every dropout rate at 0, which skips the masks, a fifth of a CPU step.
    dropout: bool = False
    warmup_ratio: float = 0.1
    seed: int = 0
    # Targets (adapt/distill/targets.py), per-query z-scores weighted: the teacher's
    # (teacher_weight), BM25's (bm25_weight), the start encoder's as a bi-encoder
    # (biencoder_weight) and the student's own (the rest). 1, 0, 0 distil the teacher alone.
    teacher_weight: float = 0.25
    bm25_weight: float = 0.25
    biencoder_weight: float = 0.25
    # Keep an A/B pair only when both orders agree, each at least this far from 0.5 (0: all).
    min_pair_confidence: float = 0.0


# Settings added after run folders existed, at the values that reproduce what came before.
NEUTRAL: dict[str, Any] = {
    "distill.teacher_weight": 1.0,
    "distill.bm25_weight": 0.0,
    "distill.biencoder_weight": 0.0,
    "data.ignore_identical_ids": False,
    "data.labels": None,
    "distill.min_pair_confidence": 0.0,
    "distill.dropout": True,
    "distill.steps": 0,
    "distill.schedule": "linear",
    "distill.checkpoints": 1,
    "distill.student_scores": "raw",
    "distill.lambda_cl": 0.0,
    "distill.lambda_ib": 0.0,
    "student.index": "auto",
    "student.kind": "colbert",
    "student.dtype": "auto",
    "teacher.engine": "transformers",
    # Runs with queries never read these.
    "generate.queries": GenerateConfig.queries,
    "generate.prompt": GenerateConfig.prompt,
    "generate.temperature": GenerateConfig.temperature,
}
# Settings that do not change any stage's output: the index stage names its kind itself, and
# vLLM's sizes and the devices change speed, memory and rounding (bf16 on a GPU), not the method;
# a run folder moves between a laptop and a GPU node ("auto" would hash alike on both anyway).
UNHASHED = {
    "student.index",
    "student.device",
    "student.dtype",
    "teacher.device",
    "teacher.tensor_parallel_size",
    "teacher.gpu_memory_utilization",
    "teacher.max_model_len",
    "teacher.ray_address",
    "teacher.ray_actors",
}


DEFAULT_NAME = "run"  # a Config whose name is this has none of its own (see run_name)


@dataclass
class Config:
    name: str = DEFAULT_NAME
    iterations: int = 1
    search_k: int = 100
    data: DataConfig = field(default_factory=DataConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self, *sections: str) -> str:
        """Hash of the named sections (or top-level keys): what a stage's output depends on.

        Settings at their NEUTRAL value, and those in UNHASHED, are left out, so run folders made
        before a setting existed stay resumable."""
        values = self.to_dict()
        subset = {}
        for name in sections:
            section = values[name]
            if isinstance(section, dict):
                section = {
                    k: v
                    for k, v in section.items()
                    if f"{name}.{k}" not in UNHASHED and NEUTRAL.get(f"{name}.{k}", object()) != v
                }
            subset[name] = section
        blob = json.dumps(subset, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _apply(obj: Any, values: dict[str, Any], source: str, prefix: str = "") -> None:
    known = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if key not in known:
            raise InputError(source, f"unknown setting '{name}' (known: {', '.join(known)})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise InputError(source, f"'{name}' must be a table")
            _apply(current, value, source, f"{name}.")
            continue
        wanted = known[key].type
        if value is not None and not _type_ok(value, wanted):
            raise InputError(source, f"'{name}' must be {wanted}, got {value!r}")
        setattr(obj, key, float(value) if wanted is float else value)


def _type_ok(value: Any, wanted: Any) -> bool:
    text = str(wanted)
    if wanted is float or text == "float | None":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if wanted is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if wanted is bool:
        return isinstance(value, bool)
    return isinstance(value, str) if "str" in text else True


def read_toml(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(path, f"{what} not found")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise InputError(path, f"invalid TOML ({err})") from None


# Command-line settings that name other data than a recipe's: they replace its [data] section.
DATA_SOURCES = ("data.corpus", "data.queries")


def load_config(recipe: Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults, then the recipe, then `overrides` (dotted keys such as `teacher.model`).

    A corpus or queries in `overrides` replace the recipe's whole [data]: its splits, qrels and
    evaluation queries belong to its own data and would not fit another's."""
    config = Config()
    if recipe is not None:
        recipe = Path(recipe)
        apply_table(config, read_toml(recipe, "recipe"), str(recipe), recipe.parent)
    if any((overrides or {}).get(key) is not None for key in DATA_SOURCES):
        config.data = DataConfig()
    nested: dict[str, Any] = {}
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        target = nested
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    _apply(config, nested, "command line")
    return config


def run_name(config: Config) -> str:
    """The run directory's name: the recipe's, else one per corpus and queries, so that a second
    corpus starts its own run instead of meeting the first one's."""
    if config.name != DEFAULT_NAME:
        return config.name
    corpus, queries = _data_name(config.data.corpus), _data_name(config.data.queries)
    name = corpus if queries == corpus else f"{corpus}-{queries or 'generated'}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or DEFAULT_NAME


def _data_name(path: str) -> str:
    """A folder's name or a file's stem; a generic stem (corpus.jsonl) names its folder."""
    if not path:
        return ""
    resolved = Path(path).resolve()
    if resolved.is_dir():
        return resolved.name
    return resolved.parent.name if resolved.stem in ("corpus", "queries") else resolved.stem


def apply_table(config: Config, values: dict[str, Any], source: str, base: Path) -> None:
    """Recipe-style settings onto `config`; data paths in them are relative to `base`."""
    _apply(config, values, source)
    _resolve_paths(config.data, base)


_NOT_PATHS = ("queries_split", "eval_split")


def _resolve_paths(data: DataConfig, base: Path) -> None:
    """Paths in a recipe are relative to the recipe's own folder, so recipes work from anywhere."""
    for f in dataclasses.fields(data):
        value = getattr(data, f.name)
        if (
            value
            and isinstance(value, str)
            and f.name not in _NOT_PATHS
            and not Path(value).is_absolute()
        ):
            setattr(data, f.name, str((base / value).resolve()))
