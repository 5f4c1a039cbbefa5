"""How often the label-free check (adapt/stages/guard.py) chooses the checkpoint the labels would.

    python bench/guard.py runs/demo /tmp/sf-real /tmp/sf-gen ...

Each argument is a finished run directory with qrels and a label-free check. Per run, every
checkpoint the check chose among (the start, those kept along training, each iteration's last)
is scored twice: nDCG@10 on the evaluation queries (their `eval.json`) and on the check's
written queries. The labels' best is the checkpoint with the best labelled mean, the start
included. The check's recommendation counts as right when it is the labels' best or not
significantly below it on the evaluation queries (paired t-test): a tie on the labels makes
either choice harmless.
"""

import argparse
from pathlib import Path

from adapt.evaluate import SIGNIFICANT, describe_test, paired_test
from adapt.io import read_json
from adapt.stages.guard import read_check


def row(run: Path, check: dict) -> dict:
    evaluations = {n: read_json(run / n / "eval.json") for n in check["checkpoints"]}
    means = {n: e["metrics"]["ndcg@10"] for n, e in evaluations.items()}
    labelled = {n: e["per_query"]["ndcg@10"] for n, e in evaluations.items()}
    best = max(means, key=means.get)  # the earliest of equal means
    use = check["call"]["use"]
    cost = paired_test(labelled[best], labelled[use])
    return {
        "run": str(run),
        "labelled": means,
        "checked": {n: v["ndcg@10"] for n, v in check["checkpoints"].items()},
        "labels_best": best,
        "use": use,
        "cost": cost,
        "queries": (len(labelled[use]), check["queries"]),
        "right": best == use or not (cost["p_value"] < SIGNIFICANT and cost["delta"] < 0),
    }


def means(values: dict[str, float]) -> str:
    return ", ".join(f"{n} {v * 100:.1f}" for n, v in values.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    checks = {run: read_check(run / "guard" / "check.json") for run in parser.parse_args().runs}
    for run, check in checks.items():
        if "call" not in check:
            print(f"{run}: no label-free check ({check['reason']})")
    rows = [row(run, check) for run, check in checks.items() if "call" in check]
    print(
        "| run | labelled nDCG@10 (evaluation queries) | check nDCG@10 (check queries) "
        "| labels' best | check recommends | its labelled Δ vs the labels' best | right |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cost = "the same" if r["use"] == r["labels_best"] else describe_test(r["cost"])
        print(
            f"| {r['run']} | {means(r['labelled'])} ({r['queries'][0]} queries) "
            f"| {means(r['checked'])} ({r['queries'][1]} queries) | {r['labels_best']} "
            f"| {r['use']} | {cost} | {'yes' if r['right'] else 'no'} |"
        )
    chosen = sum(r["use"] == r["labels_best"] for r in rows)
    right = sum(r["right"] for r in rows)
    print(
        f"\nthe labels' best checkpoint in {chosen} of {len(rows)} runs; not significantly below "
        f"it in {right} of {len(rows)}"
    )


if __name__ == "__main__":
    main()
