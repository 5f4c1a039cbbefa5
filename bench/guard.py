"""How often the label-free check (adapt/stages/guard.py) makes the call the labels make.

    python bench/guard.py runs/demo /tmp/sf-real /tmp/sf-gen ...

Each argument is a finished run directory with qrels and a label-free check. Per run: the
labelled comparison (nDCG@10 of the last iteration against the start on the evaluation queries,
paired t-test) and the check's (the same on the teacher-written queries of held-out passages).
The check's recommendation counts as wrong when it keeps the start while the labels call the
adapted student significantly better (a missed gain), or recommends the adapted student while
the labels call it significantly worse (harm); a tie on the labels makes either choice harmless.
The sign columns say whether the two differences point the same way, significant or not.
"""

import argparse
from pathlib import Path

from adapt.evaluate import describe_test
from adapt.io import read_json
from adapt.stages.guard import call

SIGN = {True: "yes", False: "no", None: "—"}


def row(run: Path, check: dict) -> dict:
    last = check["call"]["iteration"]
    start = read_json(run / "iter-0" / "eval.json")["per_query"]["ndcg@10"]
    adapted = read_json(run / f"iter-{last}" / "eval.json")["per_query"]["ndcg@10"]
    labelled = call(start, adapted)
    recommend = check["call"]["recommend"]
    wrong = (recommend == "start" and labelled["outcome"] == "better") or (
        recommend == "adapted" and labelled["outcome"] == "worse"
    )
    return {
        "run": str(run),
        "labelled": labelled,
        "check": check["call"],
        "queries": (len(start), check["queries"]),
        # None where either difference is exactly 0 (no direction to agree with).
        "same_sign": (labelled["delta"] > 0) == (check["call"]["delta"] > 0)
        if labelled["delta"] and check["call"]["delta"]
        else None,
        "right": not wrong,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    checks = {run: read_json(run / "guard" / "check.json") for run in parser.parse_args().runs}
    for run, check in checks.items():
        if "call" not in check:
            print(f"{run}: no label-free check ({check['reason']})")
    rows = [row(run, check) for run, check in checks.items() if "call" in check]
    print(
        "| run | labelled: Δ nDCG@10 adapted vs start (p, w/l) | queries | check: Δ (p, w/l) "
        "| check queries | check recommends | same sign | right |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['run']} | {describe_test(r['labelled'])} {r['labelled']['outcome']} "
            f"| {r['queries'][0]} | {describe_test(r['check'])} {r['check']['outcome']} "
            f"| {r['queries'][1]} | {r['check']['recommend']} | {SIGN[r['same_sign']]} "
            f"| {'yes' if r['right'] else 'no'} |"
        )
    right = sum(r["right"] for r in rows)
    signed = [r["same_sign"] for r in rows if r["same_sign"] is not None]
    print(
        f"\nright in {right} of {len(rows)} runs; the same sign in {sum(signed)} of the "
        f"{len(signed)} where both differences are not 0"
    )


if __name__ == "__main__":
    main()
