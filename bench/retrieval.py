"""Retrieval speed on one checkpoint and corpus: exact MaxSim and PLAID (colbert-ai), indexing
documents/s and search queries/s, and adapt's document encoder beside colbert-ai's own.

    python bench/retrieval.py --checkpoint runs/bench-scifact/scifact/start/iter-0/checkpoint \
        --corpus ../shared/data/beir/scifact --queries ../shared/data/beir/scifact \
        --max-queries 300 --out docs/retrieval-bench.json

Both encoders see the same documents in the same batch size; PLAID's build time includes its
own encoding pass, k-means and compression. PLAID's top-10 is compared with exact search's
(overlap), so its speed is read beside what it gives up. The compute floor of exact search is
2 x query tokens x document tokens x dim flops per query, against the measured fp32 matmul rate
(MaxSim runs in fp32 at any student dtype).

Exact indexing and search run twice, side by side: in fp32 and at `student.dtype = "auto"` (bf16
autocast where the chip has bf16 units), each with its encoding's share of the matmul floor at
its dtype (2 x encoder parameters x document tokens, against an MLP-shaped matmul), and the auto
row's fidelity against fp32: top-10 overlap, and with `--qrels` nDCG@10 and its paired
difference.
"""

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import torch
from rates import matmul_gflops

from adapt.data import read_corpus, read_qrels, read_queries
from adapt.evaluate import describe_test, paired_test, per_query, summarize
from adapt.precision import rate_flags, student_dtype
from adapt.retriever import colbert_ai
from adapt.retriever.colbert import ColBERT
from adapt.retriever.index import ExactIndex
from adapt.retriever.plaid import PlaidIndex


def encoding_rates(model: ColBERT, checkpoint: Path, texts: list[str], maxlen: int, batch: int):
    """Documents/s of adapt's encoder and of colbert-ai's (the call its indexer makes)."""
    texts = sorted(texts, key=len)  # both sort by length before batching
    start = time.perf_counter()
    with torch.no_grad():
        for lo in range(0, len(texts), batch):
            model.encode_docs(texts[lo : lo + batch], maxlen)
    ours = len(texts) / (time.perf_counter() - start)
    theirs_model = colbert_ai.checkpoint(checkpoint)
    theirs_model.doc_tokenizer.doc_maxlen = maxlen
    start = time.perf_counter()
    with torch.no_grad():
        theirs_model.docFromText(texts, bsize=batch, keep_dims="flatten")
    theirs = len(texts) / (time.perf_counter() - start)
    return ours, theirs


def overlap(a: dict, b: dict, k: int = 10) -> float:
    shares = [len({d for d, _ in a[q][:k]} & {d for d, _ in b[q][:k]}) / k for q in a]
    return sum(shares) / len(shares)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--max-queries", type=int, default=300)
    parser.add_argument("--doc-maxlen", type=int, default=180)
    parser.add_argument("--encode-sample", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--qrels", type=Path, help="judge the queries: nDCG@10 per dtype")
    parser.add_argument("--skip-plaid", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    docs = read_corpus(args.corpus)
    qrels = read_qrels(args.qrels) if args.qrels else None
    queries = [q for q in read_queries(args.queries) if qrels is None or q.id in qrels]
    queries = sorted(
        random.Random(0).sample(queries, min(args.max_queries, len(queries))), key=lambda q: q.id
    )
    model = ColBERT.load(str(args.checkpoint))
    result: dict = {
        "docs": len(docs),
        "queries": len(queries),
        "doc_maxlen": args.doc_maxlen,
        "threads": torch.get_num_threads(),
        "matmul_gflops": round(matmul_gflops(2048, 128, 8192), 1),
    }
    sample = [
        d.full_text for d in random.Random(0).sample(docs, min(args.encode_sample, len(docs)))
    ]
    ours, theirs = encoding_rates(model, args.checkpoint, sample, args.doc_maxlen, args.batch_size)
    result["encode_docs_per_s"] = {"adapt": round(ours, 1), "colbert-ai": round(theirs, 1)}
    print(f"encoding {len(sample)} documents: adapt {ours:.1f}/s, colbert-ai {theirs:.1f}/s")

    result["cpu_flags"] = " ".join(rate_flags())
    encoder_params = sum(p.numel() for p in model.encoder.parameters()) - sum(
        p.numel() for p in model.encoder.get_input_embeddings().parameters()
    )
    config = model.encoder.config
    hidden, inner = config.hidden_size, getattr(config, "intermediate_size", 4 * config.hidden_size)
    auto = student_dtype("auto", torch.device("cpu"))
    result["exact"], hits, ndcg = {}, {}, {}
    for dtype in dict.fromkeys((torch.float32, auto)):  # one row where auto is fp32
        name = str(dtype).removeprefix("torch.")
        model.compute_dtype = dtype
        start = time.perf_counter()
        exact = ExactIndex.build(model, docs, args.doc_maxlen, args.batch_size)
        build = time.perf_counter() - start
        tokens = sum(int(mask.sum()) for _, _, mask in exact.groups)
        stored = sum(mask.numel() for _, _, mask in exact.groups)
        start = time.perf_counter()
        hits[name] = exact.search(model, queries, args.k)
        search = time.perf_counter() - start
        floor_s = 2 * model.query_maxlen * stored * model.dim / (result["matmul_gflops"] * 1e9)
        encode_floor = matmul_gflops(2048, hidden, inner, dtype)  # an MLP's shape
        row = {
            "index_docs_per_s": round(len(docs) / build, 1),
            "encoding_share_of_floor": round(
                2 * encoder_params * tokens / build / 1e9 / encode_floor, 3
            ),
            "matmul_gflops_at_dtype": round(encode_floor, 1),
            "search_queries_per_s": round(len(queries) / search, 2),
            "tokens_kept": tokens,
            "tokens_stored_padded": stored,
            "memory_mb": round(stored * model.dim * 2 / 2**20, 1),
            "search_compute_floor_queries_per_s": round(1 / floor_s, 1),
            "top10_overlap_with_float32": round(overlap(hits[name], hits["float32"]), 3),
        }
        if qrels:
            ndcg[name] = per_query(qrels, hits[name])["ndcg@10"]
            row["ndcg@10"] = round(100 * summarize({"ndcg@10": ndcg[name]})["ndcg@10"], 2)
            row["ndcg@10_vs_float32"] = describe_test(paired_test(ndcg["float32"], ndcg[name]))
        result["exact"][name] = row
        print(f"exact, {name}:", row)
    exact_hits = hits["float32"]

    if not args.skip_plaid:
        folder = Path(tempfile.mkdtemp(prefix="adapt-plaid-bench-"))
        try:
            colbert_ai.load()  # import time is not indexing time
            start = time.perf_counter()
            plaid = PlaidIndex.build(args.checkpoint, docs, folder / "plaid", args.doc_maxlen)
            build = time.perf_counter() - start
            plaid.search(model, queries[:1], args.k)  # load the index and its extensions
            start = time.perf_counter()
            plaid_hits = plaid.search(model, queries, args.k)
            search = time.perf_counter() - start
            size = sum(p.stat().st_size for p in (folder / "plaid").iterdir())
            result["plaid"] = {
                "index_docs_per_s": round(len(docs) / build, 1),
                "search_queries_per_s": round(len(queries) / search, 2),
                "disk_mb": round(size / 2**20, 1),
                "top10_overlap_with_exact": round(overlap(plaid_hits, exact_hits), 3),
            }
            print("plaid:", result["plaid"])
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
