"""What a user sees while a stage works: bars with count, rate and time left, and for teacher
stages a line with how many prompts the cache already holds and the time the rest will take at
the rate just measured. Measured rates are kept per machine and teacher, so the next run's plan
can say how long its scoring takes before any of it starts."""

import json
import time
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from adapt import hub
from adapt.config import TeacherConfig
from adapt.data import Document
from adapt.io import atomic_open, read_json
from adapt.teacher.templates import load_template

ESTIMATE_AFTER_S = 3.0  # measure this long (the first batch warms the model up) before saying
MIN_MEASURED = 16  # prompts a stored rate must rest on


class RateColumn(ProgressColumn):
    """Items per second over the bar's recent window (blank until rich has measured it)."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:.2f}/s" if task.speed else "", style="progress.data.speed")


def make_progress(console: Console) -> Progress:
    """Every long stage's bar: count, rate and time left, so a user sees at once whether a run
    takes minutes or hours."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def duration(seconds: float) -> str:
    """A time span as a person reads it.

    >>> duration(75), duration(7300)
    ('1 min', '2.0 h')
    """
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class TeacherBar:
    """A teacher stage's bar. The scorer's first call reports the cache hits; once a few
    seconds of scoring are measured, one line gives the rate and the time the rest takes."""

    def __init__(
        self,
        progress: Progress,
        label: str,
        total: int,
        unit: str = "prompts",
        held: str = "already in the cache",
        todo: str = "to score",
    ) -> None:
        self.progress, self.label, self.total = progress, label, total
        self.unit, self.held, self.todo = unit, held, todo
        self.task = progress.add_task(label, total=total)
        self.cached: int | None = None
        self.started = 0.0
        self.computed = 0
        self.said = False

    def __call__(self, n: int) -> None:
        self.progress.advance(self.task, n)
        if self.cached is None:  # the scorer's first call: what the cache already held
            self.cached, self.started = n, time.perf_counter()
            left = self.total - n
            self.progress.console.print(
                f"{self.label}: {self.total} {self.unit}, {n} {self.held}, {left} {self.todo}"
            )
            return
        self.computed += n
        elapsed = time.perf_counter() - self.started
        if not self.said and elapsed >= ESTIMATE_AFTER_S:
            self.said = True
            left = self.total - self.cached - self.computed
            self.progress.console.print(
                f"{self.label}: {self.rate:.2f} {self.unit}/s measured; about "
                f"{duration(left / self.rate)} for the {left} left"
            )

    @property
    def rate(self) -> float:
        return self.computed / max(time.perf_counter() - self.started, 1e-9)


def _rates_file() -> Path:
    return hub.cache_dir() / "teacher-rates.json"


def _cpu() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown cpu"
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if "model name" in line]
    return names[0] if names else "unknown cpu"


def rate_key(*parts: str) -> str:
    """A teacher setting on this machine: a rate measured elsewhere says nothing here."""
    return " | ".join([*parts, _cpu()])


def teacher_rate_key(t: TeacherConfig, dtype: str, template: str) -> str:
    """A teacher setting (at its resolved dtype) and template, on this machine."""
    return rate_key(t.model, t.engine, dtype, t.device, template)


def passage_chars(t: TeacherConfig, docs: list[Document], template: str) -> float:
    """The corpus's mean passage length as the teacher reads it (cut at the template's token
    limit, about four characters a token): what a stored rate is scaled by."""
    limit = 4 * (t.max_document_tokens or load_template(template).max_document_tokens)
    return sum(min(len(d.full_text), limit) for d in docs) / len(docs)


def known_rate(key: str) -> dict | None:
    """{prompts_per_s, passage_chars, date} last measured for `key`, if any."""
    path = _rates_file()
    return read_json(path).get(key) if path.is_file() else None


def estimate_s(known: dict, prompts: int, passage_chars: float) -> float:
    """Seconds for `prompts` at a stored rate, scaled by passage length (a prompt's cost grows
    with its passage, which is most of it)."""
    scale = passage_chars / known["passage_chars"] if known.get("passage_chars") else 1.0
    return prompts * scale / known["prompts_per_s"]


def record_rate(key: str, teacher_bar: TeacherBar, passage_chars: float) -> None:
    """Keep the stage's measured rate, and the mean passage length it was measured on, for the
    next plan (only when enough prompts were scored to mean something)."""
    if teacher_bar.computed < MIN_MEASURED:
        return
    path = _rates_file()
    rates = read_json(path) if path.is_file() else {}
    rates[key] = {
        "prompts_per_s": round(teacher_bar.rate, 3),
        "passage_chars": round(passage_chars),
        "date": date.today().isoformat(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as handle:
        json.dump(rates, handle, indent=1)
