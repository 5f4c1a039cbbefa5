"""A new user's first hour, replayed: each command typed into an 80-column pseudo-terminal of a
fresh clone (after the README's set-up), with what the terminal showed, as markdown.

    python scripts/walkthrough.py --adi ../shared/data/beir/adi --out docs/first-hour-screens.md

Run it from the clone's root, after the README's demo command (it reads runs/demo). Ctrl-C is
typed, not signalled, once the teacher has printed its measured rate.
"""

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.terminal import in_terminal  # noqa: E402

MEASURED = "/s measured"


def steps(adi: str) -> list[tuple[str, list[str], bool]]:
    """(what the user wants, the command, whether to type Ctrl-C once the rate is measured)."""
    run = ["run", "--corpus", adi, "--queries", adi]
    adapted = ["search", "--checkpoint", "runs/demo/iter-1/checkpoint", "--index"]
    index = "runs/demo/iter-1/index.pt"
    sort = ["--query", "how do I sort a list"]
    return [
        ("adapt a collection of my own, no recipe (then Ctrl-C)", run, True),
        ("the same command again (then Ctrl-C)", run, True),
        ("what did the interrupted run keep?", ["report", "runs/adi"], False),
        ("a teacher that does not exist", [*run, "--teacher", "gpt-5"], False),
        ("a student that does not exist", [*run, "--student", "nosuch"], False),
        ("no candidates", [*run, "--top-k", "0"], False),
        ("a hub teacher while offline", [*run, "--teacher", "no-such-org/no-such-model"], False),
        ("a second collection, no recipe", ["run", "--corpus", "demo/pyfaq", "--queries",
                                            "demo/pyfaq", "--iterations", "0"], False),
        ("the demo recipe on my data", ["run", "--recipe", "recipes/demo.toml", *run[1:],
                                        "--iterations", "0", "--run-dir", "runs/adi-recipe"],
         False),
        ("the demo's verdict", ["report", "runs/demo"], False),
        ("search the start's index with the adapted checkpoint",
         [*adapted, "runs/demo/iter-0/index.pt", *sort], False),
        ("search the adapted index", [*adapted, index, *sort, "--k", "3"], False),
        ("search a batch of queries", [*adapted, index, "--queries", "demo/pyfaq/queries.jsonl"],
         False),
        ("evaluate that run against the folder's qrels",
         ["eval", "run-queries.trec", "--qrels", "demo/pyfaq"], False),
        ("the same questions as plain text (ids line-1, line-2, ...)",
         [*adapted, index, "--queries", "questions.txt", "--out", "plain.trec"], False),
        ("evaluate it", ["eval", "plain.trec", "--qrels", "demo/pyfaq"], False),
        ("help", ["run", "--help"], False),
        ("which teachers do I have?", ["teachers"], False),
        ("the pairwise choice that needs no prompts", ["prompts", "show", "from-pointwise"], False),
        ("another run directory on the same data and teacher (then Ctrl-C)",
         [*run, "--run-dir", "runs/adi-lr", "--seed", "1"], True),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adi", required=True, help="the ADI BEIR folder")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = Path("demo/pyfaq/queries.jsonl").read_text().splitlines()
    questions = [json.loads(row)["text"] for row in rows]
    Path("questions.txt").write_text("\n".join(questions[:20]) + "\n")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    lines = [f"Replayed {time.strftime('%Y-%m-%d %H:%M')} UTC by scripts/walkthrough.py.", ""]
    for title, argv, interrupt in steps(args.adi):
        began = time.time()
        code, screen = in_terminal(
            argv,
            type_ctrl_c_when=(lambda text: MEASURED in text) if interrupt else None,
            timeout=1800,
        )
        shown = "\n".join(line.rstrip() for line in screen.strip().splitlines())
        lines += [
            f"### {title}",
            "",
            "```",
            "$ adapt "
            + shlex.join(argv)
            + ("   # Ctrl-C typed after the rate" if interrupt else ""),
            shown,
            f"[exit {code}, {time.time() - began:.0f} s]",
            "```",
            "",
        ]
        print(f"{title}: exit {code}", file=sys.stderr)
    args.out.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
