"""The two student kinds: multi-vector ColBERT (the paper's) and a single-vector bi-encoder (its
DPR experiment). Both expose `score_groups` to the losses, `save`, and an index of their own."""

from adapt.config import StudentConfig
from adapt.errors import AdaptError
from adapt.retriever.colbert import ColBERT
from adapt.retriever.dense import DenseEncoder

KINDS = ("colbert", "dense")
Student = ColBERT | DenseEncoder


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise AdaptError(f"unknown student kind '{kind}': choose one of {', '.join(KINDS)}")


def load_student(s: StudentConfig, ref: str | None = None) -> Student:
    """The configured kind of student from `ref` (default: the configured model)."""
    check_kind(s.kind)
    ref = ref or s.model
    if s.kind == "dense":
        return DenseEncoder.load(ref, s.doc_maxlen)
    return ColBERT.load(ref, s.dim, s.query_maxlen, s.doc_maxlen)
