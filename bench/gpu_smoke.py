"""GPU smoke run of `adapt run` itself, in the paper's shape (issue "The paper's setting on a GPU",
item 5): every stage of one iteration through adapt's real entry, `adapt.pipeline.run`.

The lent GPU has torch and transformers but no network, no vLLM, faiss or colbert-ai, and at
most 64 MiB travels with a call. So this builds everything in a temporary folder: a student of
colbertv2.0's shape (BERT-base, 128-dim head, colbert-ai's conventions on) saved with adapt's own
`ColBERT.save`, a Qwen2 teacher of the 1.5B or 7B shape saved with `save_pretrained` in bf16,
both with random weights (speed depends on shape, not weight values), and a synthetic BEIR corpus
with one judged passage per query. What travels is bench/_device (git-ignored, 13 MB): the
tokenizers in gpu_throughput.py's layout, DIR/bert-tokenizer (all-MiniLM-L6-v2's, which is
bert-base-uncased's vocabulary) and DIR/qwen-tokenizer (the offline Qwen2.5-Coder-0.5B's), and in
DIR/wheels the three dependencies of adapt the GPU image lacks (pytrec-eval-terrier, bm25s,
PyStemmer; the `pip download` line is in docs/benchmarks.md).

Each stage's wall time is the pipeline's own (timings.json). Its device is observed, not assumed:
the parameters' device of every student and teacher the stage asked the pipeline for, and the
GPU memory the stage allocated above what was held when it began.

    python bench/gpu_smoke.py --export-tokenizers bench/_device     # here, once
    python bench/gpu_smoke.py --toy                                  # CPU check, tiny shapes
    # on the GPU (run with carry ["bench/_device"]); 300 queries: ~2 min of teacher at 1.5B
    python3 -m pip install -q --no-index --no-deps --target /tmp/site bench/_device/wheels/*.whl
    PYTHONPATH=.:/tmp/site python3 bench/gpu_smoke.py --passages 50000 --queries 300 --teacher 1.5b
"""

import argparse
import functools
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import transformers
from gpu_throughput import QWEN, qwen_config  # the throughput bench's teacher shapes
from rich.console import Console
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertConfig, BertModel, Qwen2ForCausalLM

from adapt import hub, pipeline
from adapt.config import load_config
from adapt.device import resolve
from adapt.precision import rate_flags
from adapt.retriever.colbert import ColBERT
from adapt.stages import (
    baselines,
    candidates,
    evaluate,
    index,
    pairs,
    score,
    start,
    targets,
    train,
)

TOY_QWEN = (64, 128, 2, 4, 2, True)  # hidden, intermediate, layers, heads, kv heads, tied
TOY_BERT = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 256,
}
QWEN_VOCAB = 151936  # Qwen2.5's embedding rows (its tokenizer has a few less)
# Yes/No and A/B prompts/s at batch 64 on the lent H200 (docs/scaling.md, "Measured rates").
H200_RATES = {"0.5b": (1706, 954), "1.5b": (733, 408), "7b": (210, 113)}
# Common words of one word-piece each in bert-base-uncased: a passage of n words is n tokens.
VOCABULARY = """market price stock bond fund rate interest loan bank money cash credit debt tax
income cost value share trade risk return yield growth capital asset account budget saving
invest profit loss pay wage salary insurance policy plan year month week day time home house car
job work company business owner buyer seller report data number figure index level change rise
fall high low early late long short large small good bad new old first last open close public
private local global foreign domestic annual quarterly daily total average net gross real fair
free fixed variable current future past simple common major minor main key basic full part half
each every other same different many few more less most least much little next best better worse
strong weak safe fast slow clear sure true false legal state federal city county court law rule
act board member group team client customer user service product system process model method
question answer reason result effect issue problem case example point fact idea way type kind
sort card check fee charge bill note letter file record list table page book paper news story
event action move step goal need help advice support option choice offer deal contract term
period date cycle season age life family child parent student school college health care medical
doctor energy oil gas power water food land property building office store shop street road line
center area region country world nation economy industry sector firm agency"""
WORDS = VOCABULARY.split()


@dataclass(frozen=True)
class Size:
    passages: int
    queries: int
    teacher: str  # "0.5b", "1.5b", "7b" (QWEN's shapes) or "toy"
    top_k: int = 100
    nway: int = 64
    n_pairs: int = 50
    batch_size: int = 32
    micro_batch: int = 8  # the paper's 32 x 64 step fits one GPU at 8 (docs/scaling.md)
    teacher_batch: int = 64  # the batch the H200 rates were measured at
    encode_batch: int = 256

    @property
    def toy(self) -> bool:
        return self.teacher == "toy"


TOY = Size(
    300,
    8,
    "toy",
    top_k=8,
    nway=4,
    n_pairs=4,
    batch_size=4,
    micro_batch=2,
    teacher_batch=8,
    encode_batch=32,
)


# -- tokenizers ------------------------------------------------------------------------------


def export_tokenizers(folder: Path) -> None:
    """The two tokenizers from the offline built-ins, in gpu_throughput.py's layout; each is
    written to a temporary folder first, so a concurrent reader never sees half of one."""
    minilm = hub.resolve("minilm", "student")
    gguf = Path(hub.resolve("qwen2.5-coder-0.5b", "teacher"))
    sources = {
        "bert-tokenizer": lambda: AutoTokenizer.from_pretrained(minilm),
        "qwen-tokenizer": lambda: AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, load in sources.items():
        if (folder / name / "tokenizer_config.json").is_file():
            continue
        tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f".{name}-"))
        load().save_pretrained(str(tmp))
        os.replace(tmp, folder / name)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    print(f"tokenizers in {folder}: {size / 2**20:.1f} MiB", file=sys.stderr)


def load_tokenizers(folder: Path) -> tuple:
    """(BERT, Qwen) tokenizers from `folder`, exported there first where the built-ins are."""
    if not (folder / "qwen-tokenizer").is_dir() or not (folder / "bert-tokenizer").is_dir():
        export_tokenizers(folder)
    bert = AutoTokenizer.from_pretrained(str(folder / "bert-tokenizer"))
    return bert, AutoTokenizer.from_pretrained(str(folder / "qwen-tokenizer"))


# -- models and data -------------------------------------------------------------------------


def build_student(folder: Path, tokenizer, size: Size) -> None:
    """colbertv2.0's shape with colbert-ai's conventions on, so `adapt run` loads it as a
    trained ColBERT (no fresh head, no PCA fit)."""
    config = BertConfig(vocab_size=len(tokenizer), **(TOY_BERT if size.toy else {}))
    linear = torch.nn.Linear(config.hidden_size, 128, bias=False)
    model = ColBERT(
        BertModel(config), tokenizer, linear, 32, 180, query_augmentation=True, markers=True
    )
    model.save(folder)


def build_teacher(folder: Path, tokenizer, size: Size, device: torch.device) -> None:
    """A Qwen2 decoder of the chosen shape, built on `device` (fast random init) and saved in
    bf16 with its tokenizer: a folder `teacher.model` takes like any local model."""
    shape = TOY_QWEN if size.toy else QWEN[f"qwen2.5-{size.teacher}"]
    config = qwen_config(shape, max(QWEN_VOCAB, len(tokenizer)))
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()


def write_data(folder: Path, size: Size, seed: int = 0) -> float:
    """A BEIR folder: passages of 100-170 words drawn from WORDS, queries of 8 consecutive words
    of one passage each, judged relevant to it. Returns the mean words per passage."""
    rng = random.Random(seed)
    passages = [rng.choices(WORDS, k=rng.randint(100, 170)) for _ in range(size.passages)]
    sources = rng.sample(range(size.passages), size.queries)
    starts = [rng.randrange(len(passages[s]) - 8) for s in sources]
    folder.mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as out:
        for i, words in enumerate(passages):
            out.write(json.dumps({"_id": f"d{i}", "title": "", "text": " ".join(words)}) + "\n")
    with (folder / "queries.jsonl").open("w") as out:
        for j, (s, start) in enumerate(zip(sources, starts)):
            text = " ".join(passages[s][start : start + 8])
            out.write(json.dumps({"_id": f"q{j}", "text": text}) + "\n")
    (folder / "qrels").mkdir()
    lines = ["query-id\tcorpus-id\tscore"] + [f"q{j}\td{s}\t1" for j, s in enumerate(sources)]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return sum(len(p) for p in passages) / len(passages)


def smoke_config(data: Path, student: Path, teacher: Path, size: Size):
    """The paper's setting (recipes/paper.toml's numbers) with the built models, one iteration,
    exact index (no colbert-ai on the device), devices left to "auto"."""
    return load_config(
        overrides={
            "name": "gpu-smoke",
            "iterations": 1,
            "data.corpus": str(data),
            "data.queries": str(data),
            "data.qrels": str(data / "qrels" / "test.tsv"),
            "student.model": str(student),
            "student.device": "auto",
            "student.index": "exact",
            "student.encode_batch_size": size.encode_batch,
            "teacher.model": str(teacher),
            "teacher.pointwise_prompt": "yes-no",
            "teacher.pairwise_prompt": "ab",
            "teacher.both_orders": True,
            "teacher.dtype": "bfloat16",
            "teacher.device": "auto",
            "teacher.batch_size": size.teacher_batch,
            "distill.top_k": size.top_k,
            "distill.n_pairs": size.n_pairs,
            "distill.nway": size.nway,
            "distill.batch_size": size.batch_size,
            "distill.micro_batch": size.micro_batch,
            "distill.delta": 10,
            "distill.checkpoints": 1,  # the last alone: one index per iteration, as timed before
        }
    )


# -- what each stage ran on ------------------------------------------------------------------


STAGES = (start, index, evaluate, baselines, candidates, score, targets, pairs, train)


def _device_of(module: torch.nn.Module) -> str:
    parameter = next(module.parameters())
    return f"{parameter.device} {str(parameter.dtype).removeprefix('torch.')}"


@dataclass
class Observer:
    """Wraps the pipeline's stages and model accessors (for the rest of this process): which
    models each stage got, on which device, how long loading them took (a fixed cost, apart from
    the per-prompt or per-passage work), and how much GPU memory the stage allocated beyond what
    it inherited (positive only where the stage computed on the GPU)."""

    stages: dict[str, dict] = field(default_factory=dict)
    _seen: dict[str, str] = field(default_factory=dict)
    _loading: float = 0.0
    _depth: int = 0  # a wrapped call inside another: time the outer call only

    def install(self) -> None:
        for stage in STAGES:
            stage.step = self._stage(stage.step, stage.__name__.rsplit(".", 1)[1])
        cls = pipeline.Pipeline
        cls.student = self._model(cls.student, "student", lambda s: s)
        cls.scorer = self._model(cls.scorer, "teacher", lambda s: s.backend.model)
        for module in (start, train):  # the start's and the trained student, loaded there
            module.load_student = self._model(module.load_student, "student", lambda s: s)

    def _model(self, get: Callable, role: str, module: Callable) -> Callable:
        @functools.wraps(get)
        def wrapped(*args, **kwargs):
            self._depth += 1
            start = time.perf_counter()
            try:
                result = get(*args, **kwargs)
            finally:
                self._depth -= 1
            if not self._depth:
                self._loading += time.perf_counter() - start
            self._seen[role] = _device_of(module(result))
            return result

        return wrapped

    def _stage(self, method: Callable, stage: str) -> Callable:
        @functools.wraps(method)
        def wrapped(pipe, *args, **kwargs):
            before, self._seen, self._loading = set(pipe.timings), {}, 0.0
            held = gpu_reset_peak()
            start = time.perf_counter()
            result = method(pipe, *args, **kwargs)
            wall = time.perf_counter() - start
            new = [k for k in pipe.timings if k not in before]
            name = new[0] if new else f"iter-0/{stage}"
            self.stages[name] = {
                "wall_s": pipe.timings.get(name, round(wall, 3)),
                "models": dict(self._seen),
                "loading_s": round(self._loading, 1),
                "gpu_alloc_gib": gpu_peak_above(held),
            }
            print(f"done: {name} {self.stages[name]}", file=sys.stderr, flush=True)
            return result

        return wrapped


def gpu_reset_peak() -> int:
    if not torch.cuda.is_available():
        return 0
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda.memory_allocated()


def gpu_peak_above(held: int) -> float | None:
    if not torch.cuda.is_available():
        return None
    return round((torch.cuda.max_memory_allocated() - held) / 2**30, 2)


# -- the run and its report ------------------------------------------------------------------


def machine() -> dict:
    info = cpu_info()
    cuda = torch.cuda.is_available()
    return {
        "cuda_available": cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "cpu": info.get("model name", platform.processor()),
        "cpu_cores": os.cpu_count(),
        "cpu_flags": rate_flags(),
    }


def cpu_info() -> dict[str, str]:
    """The first core's /proc/cpuinfo fields (Linux; empty elsewhere)."""
    path = Path("/proc/cpuinfo")
    text = path.read_text().split("\n\n")[0] if path.is_file() else ""
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def projected_teacher_s(size: Size) -> float | None:
    """Teacher time this size should take on an H200, from the measured rates."""
    if size.teacher not in H200_RATES:
        return None
    yes_no, ab = H200_RATES[size.teacher]
    return size.queries * size.top_k / yes_no + size.queries * size.n_pairs * 2 / ab


def weights_changed(run_dir: Path) -> float:
    """Largest change of the head's weights from the start to iteration 1: training happened."""
    start = load_file(str(run_dir / "iter-0" / "checkpoint" / "model.safetensors"))
    trained = load_file(str(run_dir / "iter-1" / "checkpoint" / "model.safetensors"))
    return float((trained["linear.weight"] - start["linear.weight"]).abs().max())


def smoke(size: Size, tokenizers: Path, work: Path) -> dict:
    """Build the inputs under `work`, run `adapt run` in-process, and collect what it did."""
    device = resolve("auto")
    bert, qwen = load_tokenizers(tokenizers)
    torch.manual_seed(0)  # the same random models every run
    start = time.perf_counter()
    build_student(work / "student", bert, size)
    build_teacher(work / "teacher", qwen, size, device)
    words = write_data(work / "data", size)
    built = time.perf_counter() - start
    config = smoke_config(work / "data", work / "student", work / "teacher", size)
    observer = Observer()
    observer.install()
    start = time.perf_counter()
    result = pipeline.run(config, work / "run", Console(stderr=True))
    total = time.perf_counter() - start
    timings = json.loads((work / "run" / "timings.json").read_text())
    return {
        "size": asdict(size),
        "machine": machine(),
        "build_s": round(built, 1),
        "run_s": round(total, 1),
        "words_per_passage": round(words, 1),
        "timings": timings,
        "stages": observer.stages,
        "head_max_change": weights_changed(work / "run"),
        "iterations": [
            {k: row[k] for k in ("iteration", "metrics", "train") if k in row}
            for row in result["iterations"]
        ],
        "projected_teacher_s": projected_teacher_s(size),
    }


def iteration_line(row: dict) -> str:
    """nDCG@10 (random weights: near zero, a check that evaluation ran) and training steps."""
    ndcg = row.get("metrics", {}).get("ndcg@10")
    steps = row.get("train", {}).get("steps")
    text = f"iteration {row['iteration']}: nDCG@10 {ndcg:.3f}" if ndcg is not None else ""
    return text + (f", {steps} training steps" if steps else "")


def markdown(found: dict) -> str:
    m, s = found["machine"], found["size"]
    lines = [
        f"device: {m['gpu'] or 'no GPU'} (cuda available: {m['cuda_available']}), torch "
        f"{m['torch']}, transformers {m['transformers']}, python {m['python']}",
        f"cpu: {m['cpu']}, {m['cpu_cores']} cores, flags: {' '.join(m['cpu_flags']) or 'none'}",
        f"size: {s['passages']} passages ({found['words_per_passage']} words each), "
        f"{s['queries']} queries, teacher {s['teacher']}, top_k {s['top_k']}, nway {s['nway']}, "
        f"n_pairs {s['n_pairs']} (both orders), batch {s['batch_size']}",
        "",
        "| stage | wall s | of which loading models | models the stage got (parameters' "
        "device, dtype) | GPU GiB allocated in the stage |",
        "|---|---|---|---|---|",
    ]
    for name, row in found["stages"].items():
        models = ", ".join(f"{k} {v}" for k, v in row["models"].items()) or "-"
        gib = "n/a" if row["gpu_alloc_gib"] is None else f"{row['gpu_alloc_gib']:.2f}"
        lines.append(
            f"| {name} | {row['wall_s']:.1f} | {row['loading_s']:.1f} | {models} | {gib} |"
        )
    staged = sum(row["wall_s"] for row in found["stages"].values())
    lines += [
        f"| other (reading inputs, report) | {found['run_s'] - staged:.1f} | | | |",
        f"| **adapt run, total** | **{found['run_s']:.1f}** | | | |",
        "",
        "placed by student.device = auto and teacher.device = auto; on a GPU the student computes "
        "under bf16 autocast with fp32 weights",
        f"building the models and data (not adapt): {found['build_s']} s; the head's largest "
        f"weight change in training: {found['head_max_change']:.2e}",
    ]
    lines += [iteration_line(row) for row in found["iterations"]]
    if found["projected_teacher_s"] is not None:
        lines.append(
            f"teacher stages projected from the H200 rates: {found['projected_teacher_s']:.0f} s"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=50000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--teacher", choices=sorted(H200_RATES), default="1.5b")
    parser.add_argument("--toy", action="store_true", help="tiny shapes and sizes: a CPU check")
    parser.add_argument("--tokenizers", type=Path, default=Path("bench/_device"))
    parser.add_argument("--export-tokenizers", type=Path, metavar="DIR")
    args = parser.parse_args()
    if args.export_tokenizers:
        export_tokenizers(args.export_tokenizers)
        return
    size = TOY if args.toy else Size(args.passages, args.queries, args.teacher)
    projected = projected_teacher_s(size)
    if projected is not None:
        print(f"teacher stages on an H200, projected: {projected:.0f} s", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="gpu-smoke-"))
    try:
        found = smoke(size, args.tokenizers, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = markdown(found)
    print(text)
    if os.environ.get("OUT"):
        out = Path(os.environ["OUT"])
        (out / "gpu-smoke.md").write_text(text + "\n")
        (out / "gpu-smoke.json").write_text(json.dumps(found, indent=2) + "\n")


if __name__ == "__main__":
    main()
