"""The index stage: the corpus encoded by an iteration's student, in the index its kind and the
corpus's size call for (exact MaxSim, PLAID, or faiss for a dense student)."""

import time
from pathlib import Path

from rich.console import Console

from adapt.config import StudentConfig
from adapt.data import Document
from adapt.progress import make_progress
from adapt.retriever import backend
from adapt.retriever.backend import Index
from adapt.retriever.student import Student
from adapt.stages.context import RunContext, record


def fingerprint(kind: str, s: StudentConfig) -> dict:
    return {"kind": kind, "doc_maxlen": s.eval_doc_maxlen}


def build_index(
    kind: str,
    model: Student,
    checkpoint: Path,
    docs: list[Document],
    out: Path,
    doc_maxlen: int,
    batch_size: int,
    console: Console,
    corpus: str = "",
) -> Index:
    """Encode `docs` with `model` (loaded from `checkpoint`) into `out`, with a progress bar; the
    index records its checkpoint and `corpus` beside it."""
    with make_progress(console) as progress:
        return backend.build(
            kind, model, checkpoint, docs, out, doc_maxlen, batch_size, progress, corpus
        )


def step(run: RunContext, iteration: int, upstream: str, step: int = 0) -> tuple[Index | None, str]:
    """The index of iteration N's checkpoint (the one kept after `step`, 0: its last) in a run
    directory (None when kept from before) and its record."""
    out, kind = run.index_path(iteration, step)
    s = run.config.student
    fp = record("index", upstream, **fingerprint(kind, s))
    if run.done(out, fp):
        return None, fp
    began = time.time()
    checkpoint = run.folder(iteration, step) / "checkpoint"
    built = build_index(
        kind,
        run.student(iteration, step),
        checkpoint,
        run.inputs.docs,
        out,
        s.eval_doc_maxlen,
        s.encode_batch_size,
        run.console,
        run.config.data.corpus,
    )
    run.complete(out, fp, f"{run.name(iteration, step)}/index", began)
    return built, fp
