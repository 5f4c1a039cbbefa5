"""What the student carries: train on a target over the start's candidates for adaptation
queries, and score checkpoints along training on held-out judged queries (issue #35).

The target is either the labels teacher (each candidate's judgment on the adaptation queries:
a perfect teacher, the yardstick of what the trainer carries) or a label-free one with no LLM
(per-query z-scores of the start, BM25 and the bi-encoder). Both go through the pipeline's own
functions: `build_targets`, `pairs.sample` / `pairs.from_targets`, `load_examples`, `train`.
With --written N the adaptation queries are the ones the teacher writes for N seeded passages
(the generate stage's functions: through --out's score cache, duplicates dropped, kept when the
start ranks the source passage in its top-k), each judged by its source passage alone.

    python bench/carry.py --data ../shared/data/beir/scifact --adapt train:adapt \\
        --max-adapt 300 --dev train:dev --target labels --out /tmp/carry --name lr1e-4 \\
        --set distill.lr=1e-4 --set distill.steps=320 --eval-at 40,80,160,320

The start (its fitted head, index and rankings) is built once per --out and reused. Each run
writes NAME/result.json: per checkpoint, nDCG@10 / R@100 / MRR@10 on the dev queries (and the
adaptation queries' own full retrieval) with paired tests against the start; --test adds the
test queries (read it once, for the chosen setting).
"""

import argparse
import json
import random
import time
from pathlib import Path

import torch
from rich.console import Console

from adapt.config import Config, load_config
from adapt.data import read_corpus, read_qrels, read_queries
from adapt.distill import check_distill, pairs
from adapt.distill.targets import Weights, build_targets, with_positives
from adapt.distill.train import load_examples, total_steps, train
from adapt.evaluate import paired_test, per_query, summarize
from adapt.io import read_json, write_json
from adapt.retriever.index import ExactIndex
from adapt.retriever.student import load_student
from adapt.stages.start import start_student
from adapt.teacher.generation import source_of


def parse_value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)


def judged(queries, qrels):
    return [q for q in queries if qrels.get(q.id) and any(v > 0 for v in qrels[q.id].values())]


def ranking_metrics(model, index, queries, qrels, k=100, stored: Path | None = None):
    """Per-query metrics and the ranking; `stored` keeps the start's rankings between runs."""
    if stored is not None and stored.is_file():
        ranking = {q: [tuple(h) for h in hits] for q, hits in read_json(stored).items()}
    else:
        ranking = index.search(model, queries, k)
        if stored is not None:
            write_json(stored, ranking)
    return per_query({q.id: qrels[q.id] for q in queries}, ranking), ranking


def row(values, start_values):
    summary = summarize(values)
    test = paired_test(start_values["ndcg@10"], values["ndcg@10"])
    return {**{m: round(100 * v, 2) for m, v in summary.items()}, "vs_start": test}


def target_ndcg(rows, qrels, key):
    """nDCG@10 of each query's candidates in a given order, scored with the judgments."""
    ranking = {r["query_id"]: [(d, -i) for i, d in enumerate(key(r))] for r in rows}
    return per_query({q: qrels[q] for q in ranking}, ranking)["ndcg@10"]


def written_queries(config, docs, n, start, index, out: Path, console) -> list:
    """The generate stage's kept queries for `n` seeded passages (the teacher's writing is
    cached in `out`, the stage's records in `out`/generated)."""
    from dataclasses import replace

    from adapt import precision
    from adapt.stages.context import make_scorer
    from adapt.stages.generate import generate, kept_queries
    from adapt.teacher.templates import load_template

    config = replace(config, generate=replace(config.generate, queries=n))
    t = config.teacher
    generate(
        make_scorer(t, out / "teacher-cache.sqlite", console),
        config,
        load_template(config.generate.prompt, "generate"),
        docs,
        lambda queries: index.search(start, queries, config.distill.top_k),
        out / "generated",
        console,
        precision.teacher_dtype(t.dtype, t.engine, t.device),
    )
    return kept_queries(out / "generated")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a BEIR folder")
    parser.add_argument("--adapt", default="", help="split of the adaptation queries")
    parser.add_argument("--adapt-qrels", default="train", help="qrels/NAME.tsv judging them")
    parser.add_argument("--max-adapt", type=int, default=0)
    parser.add_argument(
        "--written", type=int, default=0, help="adapt on queries the teacher writes for N passages"
    )
    parser.add_argument("--dev", default="", help="held-out dev split (none: no dev)")
    parser.add_argument("--test", default="", help="test split, scored for --test-at steps")
    parser.add_argument("--test-qrels", default="test")
    parser.add_argument(
        "--test-at", default="", help="steps whose checkpoint reads the test (or last)"
    )
    parser.add_argument("--target", choices=("labels", "fused"), default="labels")
    parser.add_argument("--label-weight", type=float, default=0.5)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--set", action="append", default=[], help="dotted.key=value")
    parser.add_argument("--eval-at", default="", help="steps to score (default: the last)")
    parser.add_argument("--recipe", type=Path, default=None)
    args = parser.parse_args()
    if bool(args.adapt) == bool(args.written):
        parser.error("give one of --adapt (a split of judged queries) and --written")

    console = Console(stderr=True)
    overrides = dict(item.split("=", 1) for item in args.set)
    config: Config = load_config(args.recipe, {k: parse_value(v) for k, v in overrides.items()})
    check_distill(config.distill)
    s, d = config.student, config.distill
    data = Path(args.data)
    docs = read_corpus(data)
    doc_by_id = {doc.id: doc for doc in docs}
    adapt_qrels = read_qrels(data / "qrels" / f"{args.adapt_qrels}.tsv")
    adapt_queries = judged(read_queries(data, args.adapt), adapt_qrels) if args.adapt else []
    if 0 < args.max_adapt < len(adapt_queries):
        keep = set(random.Random(d.seed).sample(range(len(adapt_queries)), args.max_adapt))
        adapt_queries = [q for i, q in enumerate(adapt_queries) if i in keep]
    dev_queries = judged(read_queries(data, args.dev), adapt_qrels) if args.dev else []
    assert not {q.id for q in dev_queries} & {q.id for q in adapt_queries}, "dev overlaps"
    test_qrels = read_qrels(data / "qrels" / f"{args.test_qrels}.tsv") if args.test else {}
    test_queries = judged(read_queries(data, args.test), test_qrels) if args.test else []
    console.print(
        f"{len(docs)} passages; adapt {len(adapt_queries)}, dev {len(dev_queries)}, "
        f"test {len(test_queries)} queries"
    )

    # The start, once per --out: head, index, rankings and metrics.
    start_dir = args.out / f"start-{s.eval_doc_maxlen}"
    checkpoint = start_dir / "checkpoint"
    if not checkpoint.is_dir():
        model, info = start_student(s, docs, console)
        model.save(checkpoint, {"adapt_start": info})
    start = load_student(s, str(checkpoint))
    index_path = start_dir / "index.pt"
    if index_path.is_file():
        index = ExactIndex.load(index_path)
    else:
        began = time.time()
        index = ExactIndex.build(start, docs, s.eval_doc_maxlen, s.encode_batch_size)
        index.save(index_path)
        console.print(f"start index: {time.time() - began:.0f} s")

    if args.written:
        adapt_queries = written_queries(config, docs, args.written, start, index, args.out, console)
        adapt_qrels = {**adapt_qrels, **{q.id: {source_of(q): 1} for q in adapt_queries}}
        held_out = {q.id for q in dev_queries + test_queries}
        assert not held_out & {q.id for q in adapt_queries}, "ids overlap"

    def digest(queries) -> str:
        import hashlib

        return hashlib.sha256(" ".join(q.id for q in queries).encode()).hexdigest()[:12]

    start_adapt, ranking = ranking_metrics(
        start, index, adapt_queries, adapt_qrels, stored=start_dir / f"{digest(adapt_queries)}.json"
    )
    start_dev = (
        ranking_metrics(
            start, index, dev_queries, adapt_qrels, stored=start_dir / f"{digest(dev_queries)}.json"
        )[0]
        if dev_queries
        else None
    )
    start_test = (
        ranking_metrics(
            start,
            index,
            test_queries,
            test_qrels,
            stored=start_dir / f"{digest(test_queries)}.json",
        )[0]
        if test_queries
        else None
    )

    # Candidates, targets, pairs, examples: the pipeline's functions on the start's top-k.
    candidates = [
        {"query_id": q.id, "hits": [list(h) for h in ranking[q.id][: d.top_k]]}
        for q in adapt_queries
    ]
    query_by_id = {q.id: q for q in adapt_queries}
    wanted = {r["query_id"]: [h[0] for h in r["hits"]] for r in candidates}
    if args.target == "labels":
        teacher = [
            {
                "query_id": r["query_id"],
                "docs": ids,
                "scores": [float(adapt_qrels[r["query_id"]].get(i, 0)) for i in ids],
            }
            for r, ids in zip(candidates, wanted.values())
        ]
        weights = Weights(teacher=args.label_weight)
        targets = with_positives(build_targets(teacher, candidates, weights), teacher)
    else:
        from adapt.retriever.bm25 import bm25_scores
        from adapt.retriever.dense import biencoder_scores

        bm25 = bm25_scores(docs, query_by_id, wanted)
        bienc = biencoder_scores(s.model, s.doc_maxlen, query_by_id, doc_by_id, wanted)
        plain = [
            {"query_id": q, "docs": ids, "scores": [0.0] * len(ids)} for q, ids in wanted.items()
        ]
        weights = Weights(teacher=0.0, bm25=d.bm25_weight, biencoder=d.biencoder_weight)
        targets = build_targets(plain, candidates, weights, bm25, bienc)
    sampled = pairs.sample(targets, d, 1)
    pair_rows = pairs.from_targets(sampled, targets, d.temperature)
    examples = load_examples(targets, pair_rows, query_by_id, doc_by_id)
    on_candidates = {
        "start": summarize(
            {"ndcg@10": target_ndcg(candidates, adapt_qrels, lambda r: [h[0] for h in r["hits"]])}
        )["ndcg@10"],
        "target": summarize({"ndcg@10": target_ndcg(targets, adapt_qrels, lambda r: r["docs"])})[
            "ndcg@10"
        ],
    }

    # Train, keeping the checkpoints to score.
    steps = total_steps(len(examples), d)
    eval_at = sorted({int(x) for x in args.eval_at.split(",") if x} | {steps})
    test_at = {steps if x == "last" else int(x) for x in args.test_at.split(",") if x}
    run_dir = args.out / args.name
    run_dir.mkdir(parents=True, exist_ok=True)
    model = load_student(s, str(checkpoint))
    saved: dict[int, Path] = {}
    timing = {"train_s": 0.0}
    began = time.time()

    def on_step(log_row: dict) -> None:
        if log_row["step"] % 10 == 0:
            console.print(f"step {log_row['step']}/{steps} ({time.time() - began:.0f} s)")
        if log_row["step"] in eval_at:
            path = run_dir / f"step-{log_row['step']}"
            model.save(path, {"adapt_step": log_row["step"]})
            saved[log_row["step"]] = path
            console.print(
                f"step {log_row['step']}: loss {log_row['loss']:.4f} ({time.time() - began:.0f} s)"
            )

    finished = run_dir / "train-log.jsonl"
    if finished.is_file() and all((run_dir / f"step-{n}").is_dir() for n in eval_at):
        saved = {n: run_dir / f"step-{n}" for n in eval_at}  # trained already: score again
        timing = read_json(run_dir / "result.json")["timing"]
    else:
        log = train(model, examples, d, s.doc_maxlen, d.seed * 1000 + 1, on_step)
        timing["train_s"] = round(time.time() - began, 1)
        timing["steps"] = steps
        timing["s_per_step"] = round(timing["train_s"] / steps, 3)
        finished.write_text("".join(json.dumps(r) + "\n" for r in log))

    result = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "distill": vars(d),
        "student": vars(s),
        "queries": {
            "adapt": len(adapt_queries),
            "dev": len(dev_queries),
            "test": len(test_queries),
        },
        "examples": len(examples),
        "on_candidates": on_candidates,
        "timing": timing,
        "torch_threads": torch.get_num_threads(),
        "start": {
            "adapt": row(start_adapt, start_adapt),
            **({"dev": row(start_dev, start_dev)} if start_dev else {}),
            **({"test": row(start_test, start_test)} if start_test else {}),
        },
        "checkpoints": {},
    }
    previous = read_json(run_dir / "result.json") if (run_dir / "result.json").is_file() else {}
    for step, path in sorted(saved.items()):
        began = time.time()
        if str(step) in previous.get("checkpoints", {}) and step not in test_at:
            result["checkpoints"][step] = previous["checkpoints"][str(step)]
            continue
        student = load_student(s, str(path))
        trained = ExactIndex.build(student, docs, s.eval_doc_maxlen, s.encode_batch_size)
        entry = {
            "adapt": row(
                ranking_metrics(student, trained, adapt_queries, adapt_qrels)[0], start_adapt
            ),
        }
        if start_dev:
            entry["dev"] = row(
                ranking_metrics(student, trained, dev_queries, adapt_qrels)[0], start_dev
            )
        if step in test_at and test_queries:
            entry["test"] = row(
                ranking_metrics(student, trained, test_queries, test_qrels)[0], start_test
            )
        entry["eval_s"] = round(time.time() - began, 1)
        result["checkpoints"][step] = entry
        shown = "; ".join(
            f"{part} {entry[part]['ndcg@10']} ({entry[part]['vs_start']['delta'] * 100:+.2f}, "
            f"p={entry[part]['vs_start']['p_value']:.4f})"
            for part in ("dev", "adapt", "test")
            if part in entry
        )
        console.print(f"step {step}: nDCG@10 {shown}")
        write_json(run_dir / "result.json", result)
    write_json(run_dir / "result.json", result)
    console.print(f"start {result['start']}; on candidates {on_candidates}")


if __name__ == "__main__":
    main()
