"""A checkpoint and its index outside a run: `adapt index`, `adapt search` and `Run.search` of
the Python API load, index and search through here. Every index records the checkpoint that
encoded it, and a search with other weights is refused."""

from pathlib import Path

from rich.console import Console

from adapt.data import Document, Query, Ranking, read_corpus
from adapt.device import resolve as resolve_device
from adapt.errors import AdaptError
from adapt.hub import resolve, weights_fingerprint
from adapt.io import atomic_open, write_jsonl
from adapt.precision import student_dtype
from adapt.retriever import backend
from adapt.retriever.colbert import ColBERT
from adapt.retriever.dense import METADATA, DenseEncoder
from adapt.retriever.student import Student
from adapt.stages.index import build_index


def load_checkpoint(ref: str) -> Student:
    """A dense student, or a ColBERT checkpoint with its head (index and search must project
    with the same head), on a GPU when there is one, at its dtype, as `adapt run` runs it."""
    model = DenseEncoder.load(ref) if (Path(ref) / METADATA).is_file() else ColBERT.load(ref)
    if getattr(model, "is_fresh", False):
        raise AdaptError(
            f"{ref}: a plain encoder, not a ColBERT checkpoint; `adapt run` writes "
            "one (RUN/iter-0/checkpoint: the start, its head fitted to the corpus)"
        )
    device = resolve_device("auto")
    model.compute_dtype = student_dtype("auto", device)
    return model.to(device)


def index_corpus(
    checkpoint: str,
    corpus: Path,
    out: Path,
    console: Console,
    doc_maxlen: int = 300,
    kind: str = "auto",
    batch_size: int = 32,
    hybrid: Path | None = None,
    biencoder: str | None = None,
) -> tuple[int, str]:
    """Encode `corpus` with `checkpoint` into `out`: (documents indexed, the index kind). With
    `hybrid`, the BM25 index (and `biencoder`'s, when named) that `adapt search --hybrid` fuses
    with the student go into that folder, as a run's `hybrid/`."""
    docs = read_corpus(corpus)
    model = load_checkpoint(checkpoint)
    student = "colbert" if isinstance(model, ColBERT) else "dense"
    chosen = backend.choose(kind, len(docs), student, getattr(model, "markers", True))
    location = Path(resolve(checkpoint, "student"))
    if chosen == "plaid" and not location.is_dir():
        raise AdaptError(f"{checkpoint}: PLAID indexing needs a local checkpoint folder")
    build_index(chosen, model, location, docs, out, doc_maxlen, batch_size, console, str(corpus))
    if hybrid is not None:
        from adapt.stages.hybrid import indexes

        indexes(hybrid, docs, biencoder, doc_maxlen, console)
    return len(docs), chosen


def search_index(
    checkpoint: str, index: Path, queries: list[Query], k: int = 10, hybrid: Path | None = None
) -> tuple[Ranking, dict]:
    """The top-`k` of each query in `index` (built by `checkpoint`, or refused), fused with a
    run's BM25 and bi-encoder indexes when `hybrid` names its folder (with the weights the run
    chose for this checkpoint, found by its weights' fingerprint), and the index's record (its
    checkpoint and corpus)."""
    built = backend.open_index(index)
    location = Path(resolve(checkpoint, "student"))
    source = backend.check_source(index, location)
    model = load_checkpoint(checkpoint)
    if hybrid is not None:
        from adapt.stages.hybrid import search

        fingerprint = source.get("weights") or weights_fingerprint(location)
        return search(hybrid, built, model, queries, k, fingerprint), source
    return built.search(model, queries, k), source


def corpus_texts(source: dict, corpus: Path | None = None) -> dict[str, Document]:
    """The documents an index holds, by id: from `corpus`, else the corpus it was built from
    (empty when neither is there)."""
    texts = corpus or (Path(source["corpus"]) if source.get("corpus") else None)
    return {d.id: d for d in read_corpus(texts)} if texts and texts.exists() else {}


def write_run(ranking: Ranking, target: Path) -> None:
    """A TREC run file at `target`, and the same ranking as JSONL beside it."""
    with atomic_open(target) as handle:
        for qid, hits in ranking.items():
            for rank, (doc, score) in enumerate(hits, 1):
                handle.write(f"{qid} Q0 {doc} {rank} {score:.4f} adapt\n")
    write_jsonl(
        target.with_suffix(".jsonl"), ({"query_id": q, "hits": h} for q, h in ranking.items())
    )
