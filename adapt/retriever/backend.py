"""Which index a corpus gets, and opening one from disk whatever its kind.

Exact MaxSim is the default up to PLAID_ABOVE passages: it is faster to build (no k-means) and
loses nothing. Above that its fp16 token store outgrows memory (about 25 GB at 10^6 passages of
100 tokens), and PLAID's compressed residuals take over when colbert-ai is installed.
"""

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from adapt.data import Document
from adapt.errors import AdaptError
from adapt.retriever.colbert import ColBERT
from adapt.retriever.index import ExactIndex
from adapt.retriever.plaid import PlaidIndex

if TYPE_CHECKING:
    from rich.progress import Progress

PLAID_ABOVE = 100_000
KINDS = ("auto", "exact", "plaid")
FILENAMES = {"exact": "index.pt", "plaid": "plaid"}

Index = ExactIndex | PlaidIndex


def choose(kind: str, n_docs: int) -> str:
    """Resolve "auto" by corpus size; refuse PLAID when colbert-ai is missing."""
    if kind not in KINDS:
        raise AdaptError(f"unknown index kind '{kind}': choose one of {', '.join(KINDS)}")
    plaid_installed = importlib.util.find_spec("colbert") is not None
    if kind == "auto":
        return "plaid" if n_docs > PLAID_ABOVE and plaid_installed else "exact"
    if kind == "plaid" and not plaid_installed:
        raise AdaptError("the PLAID index needs colbert-ai: pip install 'adapt[plaid]'")
    return kind


def build(
    kind: str,
    model: ColBERT,
    checkpoint: Path,
    docs: list[Document],
    out: Path,
    maxlen: int,
    batch_size: int,
    progress: "Progress | None" = None,
) -> Index:
    """Build and save an index of `kind` ("exact" or "plaid") at `out`."""
    if kind == "plaid":
        return PlaidIndex.build(checkpoint, docs, out, maxlen, batch_size, progress=progress)
    index = ExactIndex.build(model, docs, maxlen, batch_size, progress)
    index.save(out)
    return index


def open_index(path: Path) -> Index:
    """An exact index is one file, a PLAID index a folder."""
    if path.is_dir():
        return PlaidIndex.load(path)
    if path.is_file():
        return ExactIndex.load(path)
    raise AdaptError(f"{path}: index not found (build it with `adapt index`)")
