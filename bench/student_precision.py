"""The student in fp32 against bf16 autocast on this CPU: encoding speed, training-step speed and
the start's retrieval metrics on a labelled split, side by side in one run.

    python bench/student_precision.py --data demo/pyfaq --split test
    python bench/student_precision.py --data ../shared/data/beir/scifact --split test

The start is the one `adapt run` builds (fresh MiniLM ColBERT head, exact index); the training
steps are adapt's own `train` on examples made from the corpus (targets random but fixed), timed
per step after one warm-up step, with the encoder's dropout and then with `distill.dropout =
false` (every rate 0: no masks to draw). Each row is `student.dtype` as a run sets it: bf16 is
autocast, the weights and so Adam's master copy stay fp32. Speed-ups are against the fp32 step
with dropout.
"""

import argparse
import json
import random
import time
from dataclasses import replace
from pathlib import Path

import torch
from rich.console import Console

from adapt.config import DistillConfig, StudentConfig
from adapt.data import read_corpus, read_qrels, read_queries
from adapt.distill.train import Example, train
from adapt.evaluate import describe_test, paired_test, per_query, summarize
from adapt.precision import rate_flags
from adapt.retriever.index import ExactIndex
from adapt.stages.start import start_student


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    docs = read_corpus(args.data)
    qrels = read_qrels(args.data / "qrels" / f"{args.split}.tsv")
    queries = [q for q in read_queries(args.data) if q.id in qrels]
    rng = random.Random(0)
    examples = [
        Example(q, rng.sample(docs, 16), [rng.gauss(0, 1) for _ in range(16)], [(0, 1, 0.8)])
        for q in rng.sample(queries, min(len(queries), 8 * (args.steps + 1)))
    ]
    d = replace(DistillConfig(), batch_size=8, epochs=1)
    rows, runs = {}, {}
    for dtype in ("float32", "bfloat16"):
        s = StudentConfig(dtype=dtype)  # what `student.dtype` sets in a run
        torch.manual_seed(0)
        model, _ = start_student(s, docs, Console(quiet=True))
        began = time.perf_counter()
        with torch.no_grad():
            built = ExactIndex.build(model, docs, s.eval_doc_maxlen, s.encode_batch_size)
        encode_s = time.perf_counter() - began
        began = time.perf_counter()
        ranking = built.search(model, queries, 100)
        search_s = time.perf_counter() - began
        values = per_query(qrels, ranking)
        steps = {}
        for dropout in (True, False):  # the same shapes both times: the step's cost, not its result
            stamps: list[float] = []
            train(
                model,
                examples,
                replace(d, dropout=dropout),
                s.doc_maxlen,
                0,
                lambda _, t=stamps: t.append(time.perf_counter()),
            )
            steps[dropout] = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
        runs[dtype] = values
        rows[dtype] = {
            "metrics": summarize(values),
            "encode_docs_per_s": round(len(docs) / encode_s, 1),
            "search_queries_per_s": round(len(queries) / search_s, 1),
            "train_step_s": round(steps[True], 3),
            "train_step_s_without_dropout": round(steps[False], 3),
        }
        print(dtype, json.dumps(rows[dtype]), flush=True)
    test = paired_test(runs["float32"]["ndcg@10"], runs["bfloat16"]["ndcg@10"])
    summary = {
        "data": str(args.data),
        "split": args.split,
        "queries": len(queries),
        "documents": len(docs),
        "cpu_flags": " ".join(rate_flags()),
        "rows": rows,
        "bf16_vs_fp32_ndcg@10": describe_test(test),
        "speedup": {
            "encode": round(
                rows["bfloat16"]["encode_docs_per_s"] / rows["float32"]["encode_docs_per_s"], 2
            ),
            "train_step": round(
                rows["float32"]["train_step_s"] / rows["bfloat16"]["train_step_s"], 2
            ),
            "train_step_without_dropout": {
                dtype: round(
                    rows["float32"]["train_step_s"] / row["train_step_s_without_dropout"], 2
                )
                for dtype, row in rows.items()
            },
        },
    }
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
