"""The start stage: the student adaptation begins from (`iter-0/checkpoint`). A plain encoder
gets a fresh ColBERT head fitted to the corpus first: a random head would throw away the
encoder's geometry. A checkpoint with a head keeps it."""

import random
import time
from pathlib import Path

from rich.console import Console

from adapt.config import StudentConfig
from adapt.data import Document
from adapt.io import replace_dir, write_json
from adapt.retriever.student import Student, load_student
from adapt.stages.context import RunContext, record

PROJECTION_SAMPLE = 2000  # documents used to fit a fresh projection head
# What the start depends on besides the corpus.
SETTINGS = ("model", "kind", "dim", "query_maxlen", "doc_maxlen", "query_augmentation", "markers")


def fingerprint(s: StudentConfig, corpus_digest: str) -> dict:
    return {"student": {k: getattr(s, k) for k in SETTINGS}, "corpus": corpus_digest}


def start_student(
    s: StudentConfig, docs: list[Document], console: Console, out: Path | None = None
) -> tuple[Student, dict]:
    """The student to adapt and what was done to it (`start.json`); saved at `out` (with
    `start.json` beside it) when given."""
    model = load_student(s)
    info: dict = {"model": s.model, "kind": s.kind, "fresh_head": model.is_fresh}
    if model.is_fresh:
        console.print("fitting the projection head to the corpus (uncentred PCA)")
        sample = random.Random(0).sample(docs, min(PROJECTION_SAMPLE, len(docs)))
        info["energy_kept"] = model.init_projection([d.full_text for d in sample])
    if out is not None:
        tmp = out.parent / ".checkpoint.tmp"
        model.save(tmp, {"adapt_start": info}, location=out)
        replace_dir(tmp, out)
        write_json(out.parent / "start.json", info)
    return model, info


def step(run: RunContext) -> str:
    """`iter-0/checkpoint` in a run directory; its record."""
    out = run.folder(0) / "checkpoint"
    fp = record("start", **fingerprint(run.config.student, run.inputs.corpus_digest))
    if not run.done(out, fp):
        began = time.time()
        start_student(run.config.student, run.inputs.docs, run.console, out)
        run.complete(out, fp, "iter-0/start", began)
    return fp
