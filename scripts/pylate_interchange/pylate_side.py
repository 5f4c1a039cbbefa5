"""Step 2 of the PyLate interchange check (run with a Python that has PyLate): load adapt's two
checkpoints in PyLate and compare its MaxSim scores with adapt's (see adapt_side.py)."""

import sys
from pathlib import Path

import torch
from pylate import models
from pylate.scores import colbert_scores

# How a checkpoint adapted from a fresh start must be opened in PyLate: no [Q]/[D] prefixes, no
# [MASK] expansion, as its artifact.metadata records.
FRESH = {"query_prefix": "", "document_prefix": "", "do_query_expansion": False}


def main(out: Path) -> None:
    ours = torch.load(out / "adapt.pt")
    for name, settings in (("on", {}), ("off", {}), ("off", FRESH)):
        model = models.ColBERT(model_name_or_path=str(out / name), device="cpu", **settings)
        pad = torch.nn.utils.rnn.pad_sequence
        q = pad(list(model.encode(ours["queries"], is_query=True, convert_to_tensor=True)), True)
        d = pad(list(model.encode(ours["docs"], is_query=False, convert_to_tensor=True)), True)
        gap = (colbert_scores(q, d) - ours["scores"][name]).abs().max().item()
        print(f"conventions {name}, PyLate settings {settings}: max |score - adapt's| {gap:.2e}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
