"""Hybrid search measured on a finished run (`adapt run` output; `--iterations 0` is the start
alone): the student, BM25 and the start's encoder as a bi-encoder, alone and fused, on a dev
split that chooses and a test split reported once; and search speed with and without BM25.

    python bench/hybrid.py --run RUN --data ../shared/data/beir/scifact --dev train \\
        --dev-sample 200 --test test --speed --out scifact.json
    python bench/hybrid.py --run RUN --data ../shared/data/beir/cacm --dev half-1 --test half-2

Every fused row comes from one search of all three signals per split (adapt.retriever.hybrid:
each signal's top-`depth` pooled, every pooled document scored exactly by every signal); a
fusion of fewer signals uses the documents those signals returned (`Pool.only`), exactly what
searching them alone would pool. BM25 and the bi-encoder alone are their own searches (the
baselines' rows); the student alone is its signal's top-k from the pool (its own search's order).

Rows with label-free settings (equal weights, RRF) are reported on both splits. The weight sweeps
are shown on dev only; the weight each fusion family gets on dev is reported on test once. Paired
t-tests (nDCG@10) are against the best non-hybrid row of the same split and against the student.
A split is a qrels name (`train`: the queries qrels/train.tsv judges), `half-1` / `half-2`
(hash halves of the queries judged by `--qrels`), or `check`: the run's label-free check, the
queries the teacher wrote for held-out passages (`guard/queries.jsonl`), each one's own passage
its one relevant document, so `--dev check` chooses the weights without labels.
"""

import argparse
import json
import os
import random
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from adapt.config import StudentConfig
from adapt.data import HALVES, Query, check_qrels, read_corpus, read_qrels, read_queries
from adapt.evaluate import METRICS, describe_test, paired_test, per_query, summarize
from adapt.io import read_json
from adapt.precision import rate_flags
from adapt.retriever.backend import check_source, index_in, open_index
from adapt.retriever.bm25 import BM25Index
from adapt.retriever.hybrid import (
    FullBatch,
    HybridSearcher,
    Pool,
    Pools,
    Weights,
    biencoder_path,
    bm25_path,
    build_biencoder,
    fuse,
    load_biencoder,
    student_signal,
    zscores,
)
from adapt.retriever.student import load_student
from adapt.stages.guard import check_queries, known_items
from adapt.stages.hybrid import candidates

K = 100
THIRD = 1 / 3
SWEEP = (0.25, 0.5, 0.75)
# (label, signals pooled, weights, method): the label-free rows, reported on dev and test.
FIXED = [
    ("start + BM25 (z, equal)", ("student", "bm25"), Weights(0.5, 0.5), "zscore"),
    ("start + BM25 + bi-encoder (z, equal)", None, Weights(THIRD, THIRD, THIRD), "zscore"),
    ("start + BM25 (RRF)", ("student", "bm25"), Weights(1, 1), "rrf"),
    ("start + BM25 + bi-encoder (RRF)", None, Weights(1, 1, 1), "rrf"),
    ("start + bi-encoder (z, equal)", ("student", "biencoder"), Weights(0.5, 0, 0.5), "zscore"),
    ("bi-encoder + BM25 (z, equal)", ("bm25", "biencoder"), Weights(0, 0.5, 0.5), "zscore"),
]
ALL = ("student", "bm25", "biencoder")
# Weight sweeps: BM25 at w, the student (and the bi-encoder) sharing the rest.
FAMILIES = {
    "start + BM25": [(f"w_bm25 {w:.2f}", Weights(1 - w, w, 0), ("student", "bm25")) for w in SWEEP],
    # The hybrid stage's own candidates, equal weights first: a tie on dev keeps them, as there.
    "start + BM25 + bi-encoder": [(f"w_bm25 {w.bm25:.2f}", w, None) for w in candidates(True)],
}
NON_HYBRID = ("BM25", "bi-encoder", "start")


def left_out(pool: Pool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each signal's z-scores over the pool beside the equal z-fusion of the other two."""
    z = {s: zscores(pool.scores[s]) for s in ALL}
    return {s: (z[s], np.mean([z[o] for o in ALL if o != s], axis=0)) for s in ALL}


def correlation(pool: Pool) -> dict[str, float]:
    """Each signal's Pearson correlation, over the pool, with the others' equal z-fusion."""
    agree = {}
    for s, (mine, others) in left_out(pool).items():
        both = mine.std() > 0 and others.std() > 0
        agree[s] = float(np.corrcoef(mine, others)[0, 1]) if both else 0.0
    return agree


def overlap(pool: Pool, depth: int = 10) -> dict[str, float]:
    """Each signal's share of its top-`depth` that the others' equal z-fusion also ranks there."""
    agree = {}
    for s, (mine, others) in left_out(pool).items():
        top = [set(np.argsort(-v, kind="stable")[:depth]) for v in (mine, others)]
        agree[s] = len(top[0] & top[1]) / min(depth, len(mine))
    return agree


def agreeing(agree: dict[str, float]) -> Weights:
    """Weights in proportion to agreement (negative counts 0); equal when none agrees."""
    kept = {s: max(a, 0.0) for s, a in agree.items()}
    return Weights(**kept) if any(kept.values()) else Weights.equal(ALL)


# Label-free weights from the signals' agreement with one another (Wu and Crestani's idea of
# weighting a fused system by how much the others confirm it): per collection (the queries' mean
# agreement) or per query (each pool's own). Reported on dev and test, as the other label-free rows.
AGREEMENT = {"correlation": correlation, "top-10 overlap": overlap}


def agreement_rows(pools: Pools, qrels) -> tuple[dict[str, dict], dict[str, dict]]:
    """The fusions weighted by agreement, and the per-collection weights each found."""
    rows, found = {}, {}
    for name, measure in AGREEMENT.items():
        per_query = {q: measure(p) for q, p in pools.items()}
        mean = {s: float(np.mean([a[s] for a in per_query.values()])) for s in ALL}
        weights = agreeing(mean)
        found[name] = {"mean_agreement": mean, "weights": vars(weights)}
        label = f"start + BM25 + bi-encoder (z, {name} weights"
        rows[f"{label} per collection)"] = evaluate(qrels, fuse(pools, weights, "zscore", K))
        ranking = {q: p.fuse(agreeing(per_query[q]))[:K] for q, p in pools.items()}
        rows[f"{label} per query)"] = evaluate(qrels, ranking)
    return rows, found


@dataclass
class Precomputed:
    """The student's MaxSim of every document, computed before the clock starts, as a signal:
    timing a hybrid search over it times exactly what fusion adds to the student's own search
    (the other signals, pooling, fusion), small amounts that a shared CPU's noise would hide in
    two end-to-end times."""

    doc_ids: list[str]
    scores: dict[str, np.ndarray]

    def batch(self, queries: list[Query], depth: int) -> FullBatch:
        del depth
        return FullBatch(np.stack([self.scores[q.id] for q in queries]))


def cpu() -> dict:
    """What every rate is read beside: lscpu's model name and flags, and the load."""
    fields = {}
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return {
        "model": fields.get("Model name"),
        "cpus": fields.get("CPU(s)"),
        "flags": " ".join(rate_flags()),
        "torch_threads": torch.get_num_threads(),
        "shared": "2 cores shared with other jobs (a training run among them): rates are lower "
        "bounds; the load average is recorded with each",
    }


def split_inputs(run: Path, data: Path, docs, name: str, qrels_name: str, sample: int, seed: int):
    """The judged queries of a split (a seeded sample of `sample` when > 0) and their qrels;
    `check` is the run's label-free check (written queries, each one's passage relevant)."""
    if name == "check":
        queries = check_queries(run / "guard" / "queries.jsonl")
        return queries, known_items(queries)
    qrels_file = data / "qrels" / f"{qrels_name if name in HALVES else name}.tsv"
    qrels = check_qrels(qrels_file, read_qrels(qrels_file), read_queries(data), docs)
    queries = [q for q in read_queries(data, name) if q.id in qrels]
    if 0 < sample < len(queries):
        keep = set(random.Random(seed).sample(range(len(queries)), sample))
        queries = [q for i, q in enumerate(queries) if i in keep]
    return queries, {q.id: qrels[q.id] for q in queries}


def evaluate(qrels, ranking) -> dict:
    values = per_query(qrels, ranking)
    return {"metrics": summarize(values), "per_query": values}


def compare(rows: dict[str, dict]) -> None:
    """Each row's paired test (nDCG@10) against the best non-hybrid row and the start."""
    best = max(NON_HYBRID, key=lambda r: rows[r]["metrics"]["ndcg@10"])
    for row in rows.values():
        row["against"] = best
        for key, other in (("vs_best", best), ("vs_start", "start")):
            row[key] = paired_test(rows[other]["per_query"]["ndcg@10"], row["per_query"]["ndcg@10"])


def table(rows: dict[str, dict]) -> str:
    """Markdown: metrics, and the paired tests (the second only when the start is not the best
    non-hybrid row, whose column it would repeat)."""
    best = next(iter(rows.values()))["against"]
    tests = [("vs_best", best)] + ([("vs_start", "start")] if best != "start" else [])
    header = " | ".join(f"nDCG@10 against {other}" for _, other in tests)
    lines = [
        f"| row | nDCG@10 | R@100 | MRR@10 | {header} |",
        "| --- | ---: | ---: | ---: |" + " --- |" * len(tests),
    ]
    for label, row in rows.items():
        cells = [f"{row['metrics'][name] * 100:.1f}" for name in METRICS]
        cells += ["" if label == other else describe_test(row[key]) for key, other in tests]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="an `adapt run` folder")
    parser.add_argument("--iteration", type=int, help="default: the last with an index")
    parser.add_argument("--data", type=Path, required=True, help="the BEIR folder it indexed")
    parser.add_argument("--dev", required=True, help="split that chooses")
    parser.add_argument("--test", required=True, help="split reported once")
    parser.add_argument("--qrels", default="test", help="qrels/NAME.tsv for half-1 / half-2")
    parser.add_argument("--dev-sample", type=int, default=0, help="seeded sample of dev queries")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed", action="store_true", help="queries/s on the test queries")
    parser.add_argument("--speed-only", action="store_true", help="skip the evaluation")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, help="JSON of every row and rate")
    args = parser.parse_args()
    torch.set_grad_enabled(False)

    config = read_json(args.run / "config.json")
    student_config = StudentConfig(**config["student"])
    iterations = sorted(
        int(p.name.split("-")[1]) for p in args.run.glob("iter-*") if index_in(p) is not None
    )
    iteration = iterations[-1] if args.iteration is None else args.iteration
    folder = args.run / f"iter-{iteration}"
    index_path = index_in(folder)
    checkpoint = folder / "checkpoint"
    check_source(index_path, checkpoint)
    docs = read_corpus(args.data)
    model = load_student(student_config, str(checkpoint))
    student_index = open_index(index_path)
    built = {}
    if bm25_path(index_path).exists():
        bm25 = BM25Index.load(bm25_path(index_path), docs)
    else:
        start = time.perf_counter()
        bm25 = BM25Index.build(docs)
        bm25.save(bm25_path(index_path))
        built["bm25_index_s"] = round(time.perf_counter() - start, 2)
    # The bi-encoder is the start's encoder: one index per run, beside iteration 0's.
    dense_at = biencoder_path(args.run / "iter-0" / index_path.name)
    if dense_at.exists():
        biencoder = load_biencoder(dense_at, docs)
    else:
        start = time.perf_counter()
        model_ref, maxlen = student_config.model, student_config.eval_doc_maxlen
        biencoder = build_biencoder(model_ref, docs, maxlen, dense_at)
        built["biencoder_index_s"] = round(time.perf_counter() - start, 2)
    signal = student_signal(student_index, model)
    searcher = HybridSearcher(signal, bm25, biencoder)

    result = {
        "run": str(args.run),
        "iteration": iteration,
        "data": str(args.data),
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "cpu": cpu(),
        "depth": K,
        "built": built,
        "splits": {},
    }
    splits = [] if args.speed_only else [(args.dev, args.dev_sample), (args.test, 0)]
    for split, sample in splits:
        queries, qrels = split_inputs(
            args.run, args.data, docs, split, args.qrels, sample, args.seed
        )
        start = time.perf_counter()
        pools = searcher.pools(queries, K)
        pool_s = time.perf_counter() - start
        rows = {
            "BM25": evaluate(qrels, bm25.search(queries, K)),
            "bi-encoder": evaluate(qrels, biencoder.index.search(biencoder.model, queries, K)),
            "start": evaluate(
                qrels, fuse({q: p.only(("student",)) for q, p in pools.items()}, Weights(1, 0))
            ),
        }
        for label, signals, weights, method in FIXED:
            subset = {q: p.only(signals or ALL) for q, p in pools.items()}
            rows[label] = evaluate(qrels, fuse(subset, weights, method, K))
        agreed, found = agreement_rows(pools, qrels)
        rows.update(agreed)
        sweeps = {}
        for family, settings in FAMILIES.items():
            for name, weights, signals in settings:
                subset = {q: p.only(signals or ALL) for q, p in pools.items()}
                sweeps[f"{family} (z, {name})"] = (
                    family,
                    weights,
                    evaluate(qrels, fuse(subset, weights, "zscore", K)),
                )
        result["splits"][split] = {
            "queries": len(queries),
            "pool_s": round(pool_s, 2),
            "mean_pool": sum(len(p.doc_ids) for p in pools.values()) / len(pools),
            "rows": rows,
            "agreement": found,
            "sweeps": {k: {"weights": vars(w), **r} for k, (_, w, r) in sweeps.items()},
        }
        if split == args.dev:
            chosen = {}
            for family in FAMILIES:
                label = max(
                    (k for k, (f, _, _) in sweeps.items() if f == family),
                    key=lambda k: round(sweeps[k][2]["metrics"]["ndcg@10"], 4),
                )
                chosen[family] = (label, sweeps[label][1])
            result["chosen_on_dev"] = {f: {"row": lbl, **vars(w)} for f, (lbl, w) in chosen.items()}
            for label, row in sweeps.items():
                rows[label] = row[2]
        else:
            for family, (label, weights) in chosen.items():
                signals = ("student", "bm25") if family == "start + BM25" else ALL
                subset = {q: p.only(signals) for q, p in pools.items()}
                rows[f"{label}, chosen on dev"] = evaluate(
                    qrels, fuse(subset, weights, "zscore", K)
                )
        compare(rows)
        print(
            f"\n## {args.data.name} {split} ({len(queries)} queries)\n\n{table(rows)}", flush=True
        )
        for name, entry in found.items():
            print(f"{name} weights per collection: " + json.dumps(entry), flush=True)

    if args.speed:
        queries, _ = split_inputs(args.run, args.data, docs, args.test, args.qrels, 0, args.seed)
        runs = {
            "start alone (exact MaxSim)": lambda: student_index.search(model, queries, K),
            "start + BM25 (z)": lambda: searcher.search(queries, K, Weights(0.5, 0.5)),
            "start + BM25 + bi-encoder (z)": lambda: searcher.search(
                queries, K, Weights(THIRD, THIRD, THIRD)
            ),
            "BM25 alone": lambda: bm25.search(queries, K),
            "bi-encoder alone (faiss flat)": lambda: biencoder.index.search(
                biencoder.model, queries, K
            ),
        }
        student_rows = {}
        for start in range(0, len(queries), 32):
            batch = queries[start : start + 32]
            student_rows.update(zip((q.id for q in batch), signal.batch(batch, K).scores))
        added = HybridSearcher(Precomputed(signal.doc_ids, student_rows), bm25, biencoder)
        runs["added to the start by BM25 (scores, pool, z fusion)"] = lambda: added.search(
            queries, K, Weights(0.5, 0.5)
        )
        runs["added to the start by BM25 + bi-encoder"] = lambda: added.search(
            queries, K, Weights(THIRD, THIRD, THIRD)
        )
        speed = {label: {"times_s": [], "load_before": []} for label in runs}
        for _ in range(args.repeats):  # interleaved, so a burst of load hits every row alike
            for label, search in runs.items():
                speed[label]["load_before"].append(round(os.getloadavg()[0], 2))
                start = time.perf_counter()
                search()
                speed[label]["times_s"].append(round(time.perf_counter() - start, 3))
        for entry in speed.values():
            # The CPU is shared: the fastest repeat is the least disturbed.
            entry["best_s"] = min(entry["times_s"])
            entry["queries_per_s"] = round(len(queries) / entry["best_s"], 2)
        alone = speed["start alone (exact MaxSim)"]["best_s"]
        for entry in speed.values():
            entry["share_of_start"] = round(entry["best_s"] / alone, 4)
        result["speed"] = {"queries": len(queries), "k": K, "rows": speed}
        print(f"\n## speed, {len(queries)} queries, top-{K}, {result['cpu']}")
        print("| search | queries/s | time / the start's alone | times (s) | load before |")
        print("| --- | ---: | ---: | --- | --- |")
        for label, entry in speed.items():
            print(
                f"| {label} | {entry['queries_per_s']:.2f} | {entry['share_of_start']:.1%} | "
                f"{entry['times_s']} | {entry['load_before']} |"
            )
    if args.out:
        args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
