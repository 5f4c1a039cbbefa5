"""Which untrained ColBERT start to adapt from: query augmentation, markers and head width,
measured on a labelled dev split and reported on test, beside BM25 and the bi-encoder.

    python bench/start_variants.py --data demo/pyfaq --dev train --test test
    python bench/start_variants.py --data ../shared/data/beir/scifact --dev train:dev --test test

Each variant is the start `adapt run` builds (adapt's own loading, head fitting, exact index and
metrics); only the conventions and the head's width change. The rows: colbert-ai's conventions
(the start before round two), then without query augmentation, markers on and off, head 128 and
the encoder's full width. The dev split chooses; test is reported for all rows so the choice can
be checked, not re-made, on it. A split is a qrels name, or NAME:dev / NAME:adapt (hash thirds).
"""

import argparse
import json
import platform
import random
import time
from pathlib import Path

import torch

from adapt.config import StudentConfig
from adapt.data import read_corpus, read_qrels, read_queries
from adapt.evaluate import describe_test, paired_test, per_query, summarize
from adapt.precision import rate_flags
from adapt.retriever.bm25 import bm25_search
from adapt.retriever.dense import DenseEncoder, DenseIndex
from adapt.retriever.index import ExactIndex
from adapt.retriever.student import load_student
from adapt.stages.start import PROJECTION_SAMPLE

SWITCH = {True: "on", False: "off"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a BEIR folder")
    parser.add_argument("--dev", required=True, help="qrels split that chooses")
    parser.add_argument("--test", required=True, help="qrels split reported once")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--doc-maxlen", type=int, default=300)
    parser.add_argument("--out", type=Path, help="JSON of every row")
    args = parser.parse_args()
    torch.set_grad_enabled(False)

    docs = read_corpus(args.data)
    splits = {}
    for name in (args.dev, args.test):
        qrels = read_qrels(args.data / "qrels" / f"{name.split(':')[0]}.tsv")
        queries = [q for q in read_queries(args.data, name) if q.id in qrels]
        splits[name] = (queries, {q.id: qrels[q.id] for q in queries})
    sample = [d.full_text for d in random.Random(0).sample(docs, min(PROJECTION_SAMPLE, len(docs)))]

    rows = []

    def evaluate(label: str, search) -> None:
        row = {"variant": label}
        for name, (queries, qrels) in splits.items():
            values = per_query(qrels, search(queries))
            row[name] = {"metrics": summarize(values), "per_query": values["ndcg@10"]}
        rows.append(row)
        shown = "  ".join(f"{n} {row[n]['metrics']['ndcg@10'] * 100:.2f}" for n in splits)
        print(f"{label:<44} {shown}", flush=True)

    evaluate("BM25", lambda queries: bm25_search(docs, queries, 100)[0])
    dense = DenseEncoder.load(args.model, args.doc_maxlen)
    dense_index = DenseIndex.build(dense, docs, args.doc_maxlen)
    evaluate("bi-encoder (mean pooling)", lambda queries: dense_index.search(dense, queries, 100))

    # (markers, head width) -> the query augmentations searched on that one index.
    variants = {("on", 128): (True, False), ("on", 0): (False,), ("off", 128): (False,)}
    variants[("off", 0)] = (False,)
    for (markers, dim), augmentations in variants.items():
        settings = StudentConfig(args.model, dim=dim, markers=markers)
        model = load_student(settings)
        model.init_projection(sample)
        started = time.time()
        index = ExactIndex.build(model, docs, args.doc_maxlen)
        encode_s = time.time() - started
        for augmentation in augmentations:  # a query-side setting: the documents are the same
            model.query_augmentation = augmentation
            label = f"aug {SWITCH[augmentation]:<3} markers {markers:<3} head {model.dim} (PCA)"
            evaluate(label, lambda queries, i=index, m=model: i.search(m, queries, 100))
            rows[-1]["encode_corpus_s"] = round(encode_s, 1)

    starts = [r for r in rows if r["variant"].startswith("aug")]
    best = max(starts, key=lambda r: round(r[args.dev]["metrics"]["ndcg@10"], 4))
    dev_shown = best[args.dev]["metrics"]["ndcg@10"] * 100
    print(
        f"\nchosen on {args.dev} (ties: the first, the narrower head): {best['variant']} "
        f"({dev_shown:.2f})"
    )
    for row in rows:
        test = paired_test(best[args.test]["per_query"], row[args.test]["per_query"])
        print(f"  {args.test}: {row['variant']:<44} against the chosen {describe_test(test)}")
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "data": str(args.data),
                    "cpu": " ".join(rate_flags()) or platform.processor(),
                    "rows": rows,
                    "chosen": best["variant"],
                }
            )
        )


if __name__ == "__main__":
    main()
