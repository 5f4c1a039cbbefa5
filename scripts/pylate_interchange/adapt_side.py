"""Step 1 of the PyLate interchange check (run with adapt's Python): two checkpoints of the
MiniLM start, one with adapt's fresh-start conventions (no query augmentation, no markers), one
with colbert-ai's, and adapt's MaxSim scores for 3 queries x 5 demo passages.

    .venv/bin/python scripts/pylate_interchange/adapt_side.py OUT
    PYLATE_ENV/bin/python scripts/pylate_interchange/pylate_side.py OUT
"""

import sys
from pathlib import Path

import torch

from adapt.data import read_corpus
from adapt.retriever.colbert import ColBERT, maxsim

QUERIES = ["how do I sort a list", "why is my loop slow", "what is a tuple"]


def main(out: Path) -> None:
    torch.set_grad_enabled(False)
    docs = read_corpus(Path(__file__).parents[2] / "demo" / "pyfaq")
    texts = [d.full_text for d in docs]
    scores = {}
    for name, conventions in (("off", False), ("on", True)):
        model = ColBERT.load("minilm", 128, 32, 180, conventions, conventions)
        model.init_projection(texts[:40])
        model.save(out / name)
        doc_emb, mask = model.encode_docs(texts[:5])
        scores[name] = maxsim(model.encode_queries(QUERIES), doc_emb, mask)
    torch.save({"scores": scores, "docs": texts[:5], "queries": QUERIES}, out / "adapt.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
