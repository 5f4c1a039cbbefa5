"""How good is each distillation target on the candidates it was made for, measured with labels.

A run's `iter-N/` holds the student's candidates and the teacher's pointwise scores for them; when
the training queries happen to be judged (SciFact's train split is), reranking those candidates
by the student, by the teacher, by fused targets and by the run's own target (`targets.jsonl`)
shows, at no teacher cost, whether the target the student is pulled toward is better than the
student's own order. This is the ceiling the
distillation aims at, measured on the training queries themselves.

    python bench/targets_on_candidates.py --qrels ../shared/data/beir/scifact/qrels/train.tsv \
        runs/bench-scifact/scifact/kd/iter-1 runs/bench-scifact-1.5b/plain/kd/iter-1
"""

import argparse
import json
from pathlib import Path

import numpy as np

from adapt.data import Ranking, read_qrels
from adapt.distill.targets import Weights, build_targets
from adapt.evaluate import paired_test, per_query
from adapt.teacher.evaluation import split_auc


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _mean_auc(ranking: Ranking, qrels) -> tuple[float, int]:
    values = [
        split_auc([s for _, s in hits], [qrels.get(qid, {}).get(d, 0) > 0 for d, _ in hits])
        for qid, hits in ranking.items()
    ]
    values = [v for v in values if v is not None]
    return float(np.mean(values)), len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("iterations", nargs="+", type=Path, help="a run's iter-N folders")
    parser.add_argument("--qrels", type=Path, required=True, help="labels of the training queries")
    parser.add_argument("--weights", type=float, nargs="*", default=[0.25, 0.5, 0.75])
    args = parser.parse_args()
    qrels = read_qrels(args.qrels)
    for folder in args.iterations:
        candidates = _rows(folder / "candidates.jsonl")
        pointwise = _rows(folder / "pointwise.jsonl")
        student: Ranking = {r["query_id"]: [tuple(h) for h in r["hits"]] for r in candidates}
        judged = {q: qrels[q] for q in student if q in qrels}
        targets = {"student's own order": student}
        for w in [1.0, *args.weights]:
            rows = build_targets(pointwise, candidates, Weights(teacher=w))
            name = "teacher" if w >= 1.0 else f"fused w={w:g}"
            targets[name] = {r["query_id"]: list(zip(r["docs"], r["scores"])) for r in rows}
        if (folder / "targets.jsonl").is_file():  # what the run trained on, its own weights
            own = _rows(folder / "targets.jsonl")
            targets["the run's target"] = {
                r["query_id"]: list(zip(r["docs"], r["scores"])) for r in own
            }
        base = per_query(judged, student)["ndcg@10"]
        print(f"\n{folder} ({len(judged)} judged queries of {len(student)})")
        print(
            "| order | AUC (queries) | nDCG@10 of the candidates | Δ vs student (p, wins/losses) |"
        )
        print("|---|---|---|---|")
        for name, ranking in targets.items():
            ndcg = per_query(judged, {q: ranking[q] for q in judged})["ndcg@10"]
            value, count = _mean_auc({q: ranking[q] for q in judged}, judged)
            test = paired_test(base, ndcg)
            delta = (
                f"{test['delta'] * 100:+.1f} (p={test['p_value']:.3f}, "
                f"{test['wins']}/{test['losses']})"
                if ranking is not student
                else "—"
            )
            mean = 100 * sum(ndcg.values()) / len(ndcg)
            print(f"| {name} | {value:.3f} ({count}) | {mean:.1f} | {delta} |")


if __name__ == "__main__":
    main()
