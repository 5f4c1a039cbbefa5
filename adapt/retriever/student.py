"""The two student kinds: multi-vector ColBERT (the paper's) and a single-vector bi-encoder (its
DPR experiment). Both expose `score_groups` to the losses, `save`, and an index of their own."""

from adapt.config import StudentConfig
from adapt.device import resolve
from adapt.errors import AdaptError
from adapt.precision import STUDENT_CHOICES, student_dtype
from adapt.retriever.colbert import ColBERT
from adapt.retriever.dense import DenseEncoder

STUDENT_KINDS = ("colbert", "dense")
Student = ColBERT | DenseEncoder
SWITCHES = {"auto": None, "on": True, "off": False}


def check_kind(kind: str) -> None:
    if kind not in STUDENT_KINDS:
        raise AdaptError(f"unknown student kind '{kind}': choose one of {', '.join(STUDENT_KINDS)}")


def check_student(s: StudentConfig) -> None:
    """Every student setting that can be wrong, before any work."""
    check_kind(s.kind)
    for name in ("query_augmentation", "markers"):
        if getattr(s, name) not in SWITCHES:
            raise AdaptError(
                f"student.{name} = '{getattr(s, name)}': choose one of {', '.join(SWITCHES)}"
            )
    resolve(s.device, "student.device")
    if s.dtype not in STUDENT_CHOICES:
        raise AdaptError(f"student.dtype = '{s.dtype}': choose one of {', '.join(STUDENT_CHOICES)}")


def load_student(s: StudentConfig, ref: str | None = None) -> Student:
    """The configured kind of student from `ref` (default: the configured model), on the
    configured device, where indexing, search and training then run."""
    check_student(s)
    ref = ref or s.model
    device = resolve(s.device, "student.device")
    if s.kind == "dense":
        model: Student = DenseEncoder.load(ref, s.doc_maxlen)
    else:
        model = ColBERT.load(
            ref,
            s.dim,
            s.query_maxlen,
            s.doc_maxlen,
            SWITCHES[s.query_augmentation],
            SWITCHES[s.markers],
        )
    model.compute_dtype = student_dtype(s.dtype, device)  # what adapt.device.autocast runs at
    return model.to(device)
