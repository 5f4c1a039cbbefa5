"""A finished run's start and one adapted checkpoint, evaluated on another split of its collection.

Settings are chosen on a dev split (the run's own `--eval-split`); the chosen run is then scored
once on the test split, beside BM25 and the bi-encoder, with the run's own settings (its
config.toml), each checkpoint's own index from the run folder, and adapt's own search and
metrics (nothing is trained or scored again):

    python bench/run_on_split.py /tmp/cacm-gen100-2it iter-2 ../shared/data/beir/cacm half-2

The last argument is any split `read_queries` takes (a BEIR split, `half-1`, `half-2`, `:dev`);
the qrels are the folder's `qrels/test.tsv` unless `--qrels` names others.
"""

import argparse
from pathlib import Path

import torch

from adapt.config import load_config
from adapt.data import read_corpus, read_qrels, read_queries
from adapt.evaluate import describe_test, paired_test, per_query, summarize
from adapt.retriever.backend import index_in, open_index
from adapt.retriever.student import load_student
from adapt.stages import baselines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("iteration", help="the adapted checkpoint's folder, e.g. iter-2")
    parser.add_argument("collection", type=Path, help="a BEIR folder")
    parser.add_argument("split")
    parser.add_argument("--qrels", type=Path)
    args = parser.parse_args()
    qrels = read_qrels(args.qrels or args.collection / "qrels" / "test.tsv")
    docs = read_corpus(args.collection)
    queries = [q for q in read_queries(args.collection, args.split) if q.id in qrels]
    print(f"{len(queries)} judged queries in {args.split}")
    config = load_config(args.run / "config.toml")
    identical = config.data.ignore_identical_ids
    rows = {}
    for name in ("bm25", "biencoder"):
        ranking = baselines.retrieve(name, config, docs, queries)[0]
        rows[baselines.LABELS[name]] = per_query(qrels, ranking, ignore_identical_ids=identical)
    for label, iteration in (("start", "iter-0"), ("adapted", args.iteration)):
        folder = args.run / iteration
        student = load_student(config.student, str(folder / "checkpoint"))
        index = index_in(folder)
        with torch.no_grad():
            ranking = open_index(index).search(student, queries, config.search_k)
        rows[label] = per_query(qrels, ranking, ignore_identical_ids=identical)
    print("| retriever | nDCG@10 | Recall@100 | MRR@10 | adapted vs this row (p, wins/losses) |")
    print("|---|---|---|---|---|")
    adapted = rows["adapted"]["ndcg@10"]
    for label, values in rows.items():
        metrics = summarize(values)
        test = "" if label == "adapted" else describe_test(paired_test(values["ndcg@10"], adapted))
        cells = " | ".join(f"{100 * metrics[m]:.1f}" for m in ("ndcg@10", "recall@100", "mrr@10"))
        print(f"| {label} | {cells} | {test} |")


if __name__ == "__main__":
    main()
