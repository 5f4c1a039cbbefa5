"""Build the shipped demo set (demo/pyfaq) from the Python FAQ in Debian's python3.11-doc.

Each FAQ question is a query; its answer is the one relevant document. The queries are split
50/50 by a seeded hash into `train` (adaptation, labels unused) and `test` (evaluation).

    apt-get download python3.11-doc && dpkg-deb -x python3.11-doc_*.deb /tmp/pydoc
    python scripts/build_demo_pyfaq.py \
        /tmp/pydoc/usr/share/doc/python3.11/html/_sources/faq demo/pyfaq
"""

import hashlib
import json
import re
import sys
from pathlib import Path

HEADING = re.compile(r"^(-{3,}|={3,}|~{3,}|\^{3,}|\*{3,})\s*$")
ROLE = re.compile(r":[a-z:]+:`(?:[^`<]*<)?~?([^`>]+)>?`")
LINK = re.compile(r"`([^`<]+?)\s*<[^>]+>`_+")


def clean(lines: list[str]) -> str:
    """Strip reST markup that would only be noise to a retriever."""
    kept = [
        line
        for line in lines
        if not line.lstrip().startswith(("..", ":tocdepth:")) and not HEADING.match(line)
    ]
    text = " ".join(" ".join(kept).split())
    text = ROLE.sub(r"\1", text)
    text = LINK.sub(r"\1", text)
    return text.replace("``", "").replace("::", ":").replace("**", "")


def parse(path: Path) -> list[tuple[str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    pairs: list[tuple[str, str]] = []
    question, body = None, []
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and HEADING.match(nxt) and len(nxt.strip()) >= len(line.strip()) - 1:
            if question:
                pairs.append((question, clean(body)))
            title = clean([line])
            question, body = (title if title.endswith("?") else None), []
            continue
        body.append(line)
    if question:
        pairs.append((question, clean(body)))
    return [(q, a) for q, a in pairs if len(a.split()) >= 5]


def main(src: Path, out: Path) -> None:
    pairs = [p for f in sorted(src.glob("*.rst.txt")) for p in parse(f)]
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with (out / "corpus.jsonl").open("w") as corpus, (out / "queries.jsonl").open("w") as queries:
        for n, (question, answer) in enumerate(pairs):
            corpus.write(json.dumps({"_id": f"d{n}", "title": "", "text": answer}) + "\n")
            queries.write(json.dumps({"_id": f"q{n}", "text": question}) + "\n")
    splits = {"train": [], "test": []}
    for n in range(len(pairs)):
        digest = hashlib.sha256(f"0:q{n}".encode()).digest()[0]
        splits["train" if digest % 2 == 0 else "test"].append(n)
    for split, ids in splits.items():
        rows = "".join(f"q{n}\td{n}\t1\n" for n in ids)
        (out / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    print(f"{len(pairs)} pairs; train {len(splits['train'])}, test {len(splits['test'])}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
