"""Which index a corpus gets, and opening one from disk whatever its kind.

For ColBERT students exact MaxSim is the default up to PLAID_ABOVE passages: it is faster to
build (no k-means) and loses nothing. Above that its fp16 token store outgrows memory (about
25 GB at 10^6 passages of 100 tokens), and PLAID's compressed residuals take over when colbert-ai
is installed. Dense students get a faiss flat index (one vector per passage).
"""

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from adapt.data import Document
from adapt.errors import AdaptError
from adapt.hub import weights_fingerprint
from adapt.io import read_json, write_json
from adapt.retriever.dense import DenseIndex
from adapt.retriever.index import ExactIndex
from adapt.retriever.plaid import PlaidIndex
from adapt.retriever.student import Student

if TYPE_CHECKING:
    from rich.progress import Progress

PLAID_ABOVE = 100_000
INDEX_KINDS = ("auto", "exact", "plaid")
FILENAMES = {"exact": "index.pt", "plaid": "plaid", "faiss": "faiss"}

Index = ExactIndex | PlaidIndex | DenseIndex


def index_in(folder: Path) -> Path | None:
    """The index a run folder holds (one kind: exact, PLAID or faiss, named by its kind), if any."""
    return next((folder / name for name in FILENAMES.values() if (folder / name).exists()), None)


def choose(kind: str, n_docs: int, student: str = "colbert", markers: bool = True) -> str:
    """Resolve "auto" by student kind, corpus size and whether the student uses colbert-ai's
    markers (PLAID encodes documents through colbert-ai, which always adds them); refuse PLAID
    when colbert-ai is missing."""
    if kind not in INDEX_KINDS:
        raise AdaptError(f"unknown index kind '{kind}': choose one of {', '.join(INDEX_KINDS)}")
    if student == "dense":
        if kind == "plaid":
            raise AdaptError("PLAID indexes multi-vector students; a dense student uses faiss")
        return "faiss"
    plaid_installed = importlib.util.find_spec("colbert") is not None
    if kind == "auto":
        return "plaid" if n_docs > PLAID_ABOVE and plaid_installed and markers else "exact"
    if kind == "plaid" and not plaid_installed:
        raise AdaptError("the PLAID index needs colbert-ai: pip install 'adapt[plaid]'")
    return kind


def build(
    kind: str,
    model: Student,
    checkpoint: Path,
    docs: list[Document],
    out: Path,
    maxlen: int,
    batch_size: int,
    progress: "Progress | None" = None,
    corpus: str = "",
) -> Index:
    """Build and save an index of `kind` (a `choose` result) at `out`, with a record of the
    checkpoint that encoded it and the corpus it holds (`source_path`)."""
    if kind == "plaid":
        index = PlaidIndex.build(checkpoint, docs, out, maxlen, batch_size, progress=progress)
    else:
        index = (DenseIndex if kind == "faiss" else ExactIndex).build(
            model, docs, maxlen, batch_size, progress
        )
        index.save(out)
    source = {
        "checkpoint": str(checkpoint),
        "weights": weights_fingerprint(checkpoint) if checkpoint.exists() else None,
        "corpus": str(Path(corpus).resolve()) if corpus else None,
        "documents": len(docs),
    }
    write_json(source_path(out), source)
    return index


def source_path(index: Path) -> Path:
    """The record beside an index (a file or a folder): `index.pt` -> `index.pt.source.json`."""
    return index.with_name(index.name + ".source.json")


def check_source(index: Path, checkpoint: Path) -> dict:
    """The index's record, after making sure `checkpoint` is the one that encoded it: queries
    encoded by other weights score against its vectors without any error, and mean nothing."""
    record = source_path(index)
    if not record.is_file():
        return {}
    source = read_json(record)
    known = source.get("weights") and checkpoint.exists()
    if known and weights_fingerprint(checkpoint) != source["weights"]:
        raise AdaptError(
            f"{index} was encoded by {source['checkpoint']}, not by {checkpoint} (other "
            "weights): its scores would mean nothing. Search it with that checkpoint, or "
            f"index again: adapt index --checkpoint {checkpoint} --corpus CORPUS --out NEW"
        )
    return source


def open_index(path: Path) -> Index:
    """An exact index is one file; PLAID and dense indexes are folders."""
    if (path / "index.faiss").is_file():
        return DenseIndex.load(path)
    if path.is_dir():
        return PlaidIndex.load(path)
    if path.is_file():
        return ExactIndex.load(path)
    raise AdaptError(f"{path}: index not found (build it with `adapt index`)")
