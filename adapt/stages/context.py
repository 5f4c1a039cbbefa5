"""What every stage's step reads in a run directory: the config and inputs (checked before any
work), where iteration N's files go, the stage records that say what is done, and the models a
run loads once (the teacher, each iteration's student)."""

import dataclasses
import hashlib
import json
import time
from pathlib import Path

from rich.console import Console

from adapt import hub, precision
from adapt.config import Config, TeacherConfig
from adapt.data import Query, Ranking
from adapt.distill import check_distill
from adapt.errors import AdaptError
from adapt.inputs import load_inputs
from adapt.io import read_json, write_json
from adapt.progress import (
    TeacherBar,
    make_progress,
    passage_chars,
    record_rate,
    teacher_rate_key,
)
from adapt.retriever import backend
from adapt.retriever.backend import Index
from adapt.retriever.colbert import METADATA
from adapt.retriever.student import Student, check_student, load_student
from adapt.rundir import RunDir, kept_on_disk
from adapt.teacher.backends import check_teacher
from adapt.teacher.cache import ScoreCache
from adapt.teacher.labels import LabelsScorer, is_labels
from adapt.teacher.ray_engine import load_teacher
from adapt.teacher.scoring import TeacherScorer
from adapt.teacher.templates import FROM_POINTWISE, load_template


def record(stage: str, upstream: str = "", **inputs) -> str:
    """A stage's record: a digest of a small JSON of what its output depends on (its upstream
    record, its settings, the content of what it reads), so any change re-runs it and
    everything after it."""
    record = {"stage": stage, "upstream": upstream, **inputs}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def make_scorer(t: TeacherConfig, cache: Path, console: Console) -> TeacherScorer:
    """A TeacherScorer for the configured teacher and templates, storing scores in `cache`."""
    console.print(f"loading teacher [bold]{t.model}[/] ({t.engine})")
    loaded = load_teacher(t)
    pairwise = (
        None
        if t.pairwise_prompt == FROM_POINTWISE
        else load_template(t.pairwise_prompt, "pairwise")
    )
    pointwise = load_template(t.pointwise_prompt, "pointwise")
    if t.max_document_tokens:
        pointwise = dataclasses.replace(pointwise, max_document_tokens=t.max_document_tokens)
        if pairwise is not None:
            pairwise = dataclasses.replace(pairwise, max_document_tokens=t.max_document_tokens)
    return TeacherScorer(loaded, ScoreCache(cache), pointwise, pairwise, t.both_orders)


class RunContext:
    def __init__(
        self,
        config: Config,
        run_dir: Path,
        console: Console,
        force: bool = False,
        cache: Path | None = None,
        shard: tuple[int, int] | None = None,
    ) -> None:
        self.config = config
        self.shard = shard
        self.cache_path = cache or run_dir / "teacher-cache.sqlite"
        self.console = console
        self.inputs = load_inputs(config)
        s, t = config.student, config.teacher
        check_student(s)  # bad student settings fail before any work
        hub.check(s.model, "student")  # ... and a student that cannot be had
        check_teacher(t)
        self.labels = is_labels(t.model)
        # What the teacher runs at here: stage records, rates and reports name it, never "auto".
        self.teacher_dtype = (
            "judgments" if self.labels else precision.teacher_dtype(t.dtype, t.engine, t.device)
        )
        check_distill(config.distill)
        if config.distill.lambda_cl > 0 and not self.labels:
            raise AdaptError(
                f"distill.lambda_cl = {config.distill.lambda_cl}: L_CL trains on judged "
                "positives, which only the labels teacher has (--teacher labels), or set it to 0"
            )
        backend.choose(s.index, len(self.inputs.docs), s.kind)  # a bad index kind fails now
        self.run = RunDir(run_dir, config, force)
        self.path = run_dir
        self._scorer: TeacherScorer | LabelsScorer | None = None
        self._student: tuple[int, Student] | None = None
        self.timings: dict[str, float] = (
            read_json(run_dir / "timings.json") if (run_dir / "timings.json").is_file() else {}
        )

    def folder(self, iteration: int, step: int = 0) -> Path:
        """Iteration N's folder, or that of the checkpoint its training kept after `step`."""
        folder = self.path / f"iter-{iteration}"
        return folder / f"step-{step}" if step else folder

    def name(self, iteration: int, step: int = 0) -> str:
        """A checkpoint's name in records and reports: its folder in the run (`iter-1/step-13`)."""
        return self.folder(iteration, step).relative_to(self.path).as_posix()

    def kept(self, iteration: int) -> list[int]:
        """The steps iteration N's training kept a checkpoint after, besides its last (on disk)."""
        return kept_on_disk(self.folder(iteration))

    def done(self, out: Path, fp: str) -> bool:
        """Whether `out` exists with the record `fp`: then its stage is skipped."""
        return self.run.done(out, fp)

    def complete(self, out: Path, fp: str, name: str, began: float) -> None:
        """Record a finished stage (its output is already in place) and its wall time."""
        self.run.mark(out, fp)
        self.timings[name] = round(time.time() - began, 3)
        write_json(self.path / "timings.json", self.timings)

    def scorer(self) -> TeacherScorer | LabelsScorer:
        """The teacher, loaded only when some stage actually needs a score."""
        if self._scorer is None and self.labels:
            self._scorer = LabelsScorer(self.inputs.labels)
        elif self._scorer is None:
            self._scorer = make_scorer(self.config.teacher, self.cache_path, self.console)
        return self._scorer

    def release_teacher(self) -> None:
        """End a Ray teacher's actors before training: their GPUs (one may be this process's)
        go to the student. The labels teacher has none; a later stage loads the teacher again."""
        if self.config.teacher.ray_address and isinstance(self._scorer, TeacherScorer):
            self._scorer.backend.close()
            self._scorer = None

    def student(self, iteration: int, step: int = 0) -> Student:
        """A checkpoint's student for inference (kept: index, eval and retrieval all use it)."""
        path = self.folder(iteration, step) / "checkpoint"
        if self._student is None or self._student[0] != path:
            self._student = (path, load_student(self.config.student, str(path)))
        return self._student[1]

    def index_path(self, iteration: int, step: int = 0) -> tuple[Path, str]:
        """A checkpoint's index and its kind, chosen once from the start's checkpoint (whether it
        uses colbert-ai's markers; a dense student has no ColBERT metadata)."""
        s = self.config.student
        metadata = self.folder(0) / "checkpoint" / METADATA
        markers = read_json(metadata).get("markers", True) if metadata.is_file() else True
        kind = backend.choose(s.index, len(self.inputs.docs), s.kind, markers)
        return self.folder(iteration, step) / backend.FILENAMES[kind], kind

    def search(
        self, iteration: int, built: Index | None, queries: list[Query], k: int, step: int = 0
    ) -> Ranking:
        """A checkpoint's top-`k` for `queries`, from `built` or its index on disk."""
        built = built or backend.open_index(self.index_path(iteration, step)[0])
        with make_progress(self.console) as progress:
            return built.search(self.student(iteration, step), queries, k, progress=progress)

    def record_rate(self, template: str, shown: TeacherBar) -> None:
        """Keep a teacher stage's measured rate for the next run's plan (not the labels
        teacher's: a lookup's rate would mislead it)."""
        if self.labels:
            return
        t, docs = self.config.teacher, self.inputs.docs
        key = teacher_rate_key(t, self.teacher_dtype, template)
        record_rate(key, shown, passage_chars(t, docs, template))
