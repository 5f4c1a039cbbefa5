"""GPU throughput of adapt's own teacher and student code at real model sizes (random weights).

Real teachers cannot travel to the lent GPU (no network there, 64 MiB per call), so this builds
models of the real shapes with random weights: speed depends on shape, not on weight values.
Measures: teacher prompts/s (query likelihood and Yes/No) for Qwen2.5 0.5B/1.5B/7B shapes in
bf16 through `TransformersBackend`, and student training steps/s and exact-search queries/s for a
BERT-base ColBERT (colbertv2.0's shape). Needs only torch and transformers. The student runs as
adapt runs it: placed by `adapt.device.resolve`, bf16 autocast inside indexing, search and the
training forward pass, and the exact index's store in host memory, so the search rate includes
moving it to the GPU block by block.

    python bench/gpu_throughput.py --tokenizers bench/_device   # prints a markdown table
"""

import argparse
import platform
import time

import torch
from transformers import AutoTokenizer, BertConfig, BertModel, Qwen2Config, Qwen2ForCausalLM

from adapt.config import DistillConfig
from adapt.data import Document, Query
from adapt.device import resolve
from adapt.distill.train import Example, train
from adapt.retriever.colbert import ColBERT
from adapt.retriever.index import ExactIndex
from adapt.teacher.backends import TransformersBackend

QWEN = {  # hidden, intermediate, layers, heads, kv heads, tied embeddings
    "qwen2.5-0.5b": (896, 4864, 24, 14, 2, True),
    "qwen2.5-1.5b": (1536, 8960, 28, 12, 2, True),
    "qwen2.5-7b": (3584, 18944, 28, 28, 4, False),
}
DEVICE = torch.device("cpu")  # main() resolves the bench's device
TINY_BERT = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}


def student_model(tokenizer) -> ColBERT:
    """colbertv2.0's shape (BERT-base, 128-dim head) on the GPU; a tiny BERT in a dry run."""
    config = BertConfig(**(TINY_BERT if DEVICE.type == "cpu" else {}))
    linear = torch.nn.Linear(config.hidden_size, 128, bias=False)
    return ColBERT(BertModel(config), tokenizer, linear, query_maxlen=32, doc_maxlen=180).to(DEVICE)


WORDS = [
    "the",
    "retrieval",
    "of",
    "relevant",
    "passages",
    "for",
    "a",
    "query",
    "depends",
    "on",
    "the",
    "model",
    "and",
    "data",
]


def text(n_words: int, seed: int) -> str:
    return " ".join(WORDS[(seed * 7 + i * 3) % len(WORDS)] for i in range(n_words))


def qwen_config(shape: tuple, vocab_size: int) -> Qwen2Config:
    """A Qwen2 config of one of the QWEN shapes (or a toy one in the same layout)."""
    hidden, inter, layers, heads, kv, tied = shape
    return Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        tie_word_embeddings=tied,
    )


def teacher_backend(name: str, tokenizer, batch_size: int) -> TransformersBackend:
    config = qwen_config(QWEN[name], len(tokenizer))
    backend = TransformersBackend.__new__(TransformersBackend)  # a built model, not a download
    backend.device = DEVICE
    backend.batch_size = batch_size
    backend.tokenizer = tokenizer
    backend.is_seq2seq = False
    backend.share_prefixes = False  # adapt's choice on a GPU; bench_shared_prefix turns it on
    backend.fingerprint = name
    with torch.device(DEVICE):
        backend.model = Qwen2ForCausalLM(config).to(torch.bfloat16).eval()
    backend._cache_argument = "cache"  # transformers >= 5 (the GPU image has 5.17)
    return backend


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, repeats: int = 1) -> float:
    fn()  # warm-up (kernels, allocator)
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def bench_teachers(tokenizer, n_prompts: int, shapes: list[str]) -> list[str]:
    rows = []
    prompts = [
        f"Passage: {text(150, i)}\nPlease write a question based on this passage.\nQuestion:"
        for i in range(n_prompts)
    ]
    queries = [" " + text(12, i + 1) for i in range(n_prompts)]
    yes_no = [
        f"Is the document relevant to the query (Yes or No)?\nQuery:{q}\nDocument: "
        f"{text(150, i)}\nAnswer:"
        for i, q in enumerate(queries)
    ]
    ab = [
        f"Which document is more relevant to the query? Answer only 'A' or 'B'.\nQuery:{q}\n"
        f"Document A: {text(150, i)}\nDocument B: {text(150, i + 5)}\nAnswer:"
        for i, q in enumerate(queries)
    ]
    labels = [tokenizer.encode(" Yes")[0], tokenizer.encode(" No")[0]]
    ab_labels = [tokenizer.encode(" A")[0], tokenizer.encode(" B")[0]]
    tokens = sum(len(tokenizer.encode(p + q)) for p, q in zip(prompts, queries)) / n_prompts
    ab_tokens = sum(len(tokenizer.encode(p)) for p in ab) / n_prompts
    for name in shapes:
        backend = teacher_backend(name, tokenizer, batch_size=64)
        params = sum(p.numel() for p in backend.model.parameters()) / 1e9
        ql = timed(lambda b=backend: b.continuation_logprobs(prompts, queries))
        yn = timed(lambda b=backend: b.label_logits(yes_no, labels))
        pair = timed(lambda b=backend: b.label_logits(ab, ab_labels))
        rows.append(
            f"| {name} | {params:.2f}B | {tokens:.0f} | {n_prompts / ql:.0f} | "
            f"{n_prompts / yn:.0f} | {ab_tokens:.0f} | {n_prompts / pair:.0f} |"
        )
        del backend
        if DEVICE.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def bench_shared_prefix(tokenizer, shapes: list[str], passages: int, per_passage: int) -> list[str]:
    """Query likelihood where each passage was retrieved by `per_passage` queries: one pass per
    (query, passage) against one pass per passage plus the queries on its cached prefix."""
    prompts, queries = [], []
    for i in range(passages):
        instruction = "Please write a question based on this passage."
        prompt = f"Passage: {text(150, i)} {i}\n{instruction}\nQuestion:"
        for j in range(per_passage):
            prompts.append(prompt)
            queries.append(f" {text(12, i + j)} {j}")
    prefix = [tokenizer(p)["input_ids"] for p in prompts]
    suffix = [tokenizer(q, add_special_tokens=False)["input_ids"] for q in queries]
    rows = []
    for name in shapes:
        backend = teacher_backend(name, tokenizer, batch_size=64)
        backend.share_prefixes = True
        shared = timed(lambda b=backend: b.continuation_logprobs(prompts, queries))

        @torch.inference_mode()
        def independent(b=backend) -> None:
            for batch in b._batches([len(p) + len(s) for p, s in zip(prefix, suffix)]):
                b._independent(batch, prefix, suffix)

        alone = timed(independent)
        n = len(prompts)
        rows.append(f"| {name} | {passages} x {per_passage} | {n / alone:.0f} | {n / shared:.0f} |")
        del backend
        if DEVICE.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def bench_student(tokenizer, n_docs: int, n_queries: int) -> list[str]:
    model = student_model(tokenizer)
    docs = [Document(f"d{i}", text(150, i)) for i in range(64)]
    examples = [
        Example(
            Query(f"q{i}", text(10, i)),
            docs,
            [float(-j) for j in range(64)],
            [(j, j + 1, 0.7) for j in range(50)],
        )
        for i in range(8)
    ]
    distill = DistillConfig(batch_size=8, epochs=1, lr=1e-5)

    def step() -> None:
        train(model, examples, distill, doc_maxlen=180, seed=0)

    seconds = timed(step, repeats=3)
    corpus = [Document(f"c{i}", text(150, i)) for i in range(n_docs)]
    queries = [Query(f"q{i}", text(10, i)) for i in range(n_queries)]
    start = time.perf_counter()
    index = ExactIndex.build(model, corpus, maxlen=300, batch_size=256)
    sync()
    index_s = time.perf_counter() - start
    search_s = timed(lambda: index.search(model, queries, k=100, batch_size=128))
    return [
        f"| train step (8 queries x 64 passages x 180 tokens, bf16 autocast) | {seconds:.2f} s"
        f" ({8 / seconds:.0f} queries/s) |",
        f"| index {n_docs} passages (300 tokens) | {n_docs / index_s:.0f} passages/s |",
        f"| exact search, {n_queries} queries over {n_docs} passages, top-100 | "
        f"{n_queries / search_s:.0f} queries/s |",
    ]


def bench_paper_scale(tokenizer, micro_batches: list[int], n_docs: int) -> list[str]:
    """The paper's training step, 32 queries x 64 passages x 180 tokens, which does not fit an
    80 GB GPU in one pass: gradient accumulation over micro-batches (DistillConfig.micro_batch)."""
    model = student_model(tokenizer)
    docs = [Document(f"d{i}", text(150, i)) for i in range(n_docs)]
    examples = [
        Example(
            Query(f"q{i}", text(10, i)),
            docs,
            [float(-j) for j in range(n_docs)],
            [(j, j + 1, 0.7) for j in range(min(50, n_docs - 1))],
        )
        for i in range(32)
    ]
    rows = []
    for micro in micro_batches:
        distill = DistillConfig(batch_size=32, micro_batch=micro, epochs=1, lr=1e-5)
        if DEVICE.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        seconds = timed(lambda d=distill: train(model, examples, d, doc_maxlen=180, seed=0))
        peak = torch.cuda.max_memory_allocated() / 2**30 if DEVICE.type == "cuda" else float("nan")
        rows.append(
            f"| 32 queries x {n_docs} passages, micro-batch {micro} | {seconds:.2f} s | "
            f"{32 / seconds:.1f} | {peak:.1f} GiB |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizers", default="bench/_device")
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument(
        "--only",
        default="teachers,shared,student,scale",
        help="comma-separated sections: teachers, shared, student, scale",
    )
    parser.add_argument("--dry", action="store_true", help="tiny sizes on CPU: checks the script")
    args = parser.parse_args()
    global DEVICE
    DEVICE = resolve("cpu" if args.dry else "cuda", "bench device (without --dry)")
    qwen_tok = AutoTokenizer.from_pretrained(f"{args.tokenizers}/qwen-tokenizer")
    bert_tok = AutoTokenizer.from_pretrained(f"{args.tokenizers}/bert-tokenizer")
    name = "cpu (dry run)" if args.dry else torch.cuda.get_device_name(DEVICE)
    print(f"device: {name}, torch {torch.__version__}, python {platform.python_version()}")
    sections = args.only.split(",")
    shapes = ["qwen2.5-0.5b"] if args.dry else list(QWEN)
    if "teachers" in sections:
        print(
            "\n| teacher shape | params | tokens/prompt | query-likelihood prompts/s | "
            "Yes/No prompts/s | A/B tokens/prompt | A/B prompts/s |\n|---|---|---|---|---|---|---|"
        )
        for row in bench_teachers(qwen_tok, 2 if args.dry else args.prompts, shapes):
            print(row, flush=True)
    if "shared" in sections:
        print(
            "\n| teacher shape | passages x queries each | one pass per pair, prompts/s | "
            "shared passage prefix, prompts/s |\n|---|---|---|---|"
        )
        for row in bench_shared_prefix(qwen_tok, shapes, *((2, 2) if args.dry else (64, 8))):
            print(row, flush=True)
    if "student" in sections:
        print("\n| student (ColBERT, BERT-base shape) | rate |\n|---|---|")
        for row in bench_student(bert_tok, *((40, 4) if args.dry else (5000, 1000))):
            print(row, flush=True)
    if "scale" in sections:
        print(
            "\n| paper-scale training step (bf16 autocast) | s/step | queries/s | peak memory |"
            "\n|---|---|---|---|"
        )
        for row in bench_paper_scale(bert_tok, [2] if args.dry else [8, 4], 4 if args.dry else 64):
            print(row, flush=True)


if __name__ == "__main__":
    main()
