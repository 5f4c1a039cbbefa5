"""Paired t-tests of nDCG@10 between runs' evaluations on the same queries.

    python bench/paired.py START/iter-0/eval.json BASE/iter-1/eval.json OTHER/iter-1/eval.json ...

Each file after the first two against the first (the start) and the second (the setting it
would replace): what the dev-split tables of docs/benchmarks.md print.
"""

import argparse
from pathlib import Path

from adapt.evaluate import paired_test
from adapt.io import read_json


def ndcg(path: Path) -> dict[str, float]:
    return read_json(path)["per_query"]["ndcg@10"]


def line(name: str, test: dict) -> str:
    counts = f"{test['wins']}/{test['losses']}"
    return f"{name} {100 * test['delta']:+.1f} (p = {test['p_value']:.3f}, {counts})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("evals", nargs="+", type=Path, help="eval.json files: start, base, others")
    args = parser.parse_args()
    if len(args.evals) < 2:
        parser.error("give the start's evaluation, the base setting's, then the others'")
    start, base = ndcg(args.evals[0]), ndcg(args.evals[1])
    for path in args.evals[1:]:
        values = ndcg(path)
        mean = 100 * sum(values.values()) / len(values)
        print(
            f"{path}: {mean:.1f}; {line('vs the start', paired_test(start, values))}; "
            f"{line('vs the base', paired_test(base, values))}"
        )


if __name__ == "__main__":
    main()
