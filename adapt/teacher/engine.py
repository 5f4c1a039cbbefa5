"""Where a teacher stage's prompts run, and in which batches.

A stage's pending prompts (those the cache does not answer) are cut into units (`units`), each
one backend call (`Call`). An engine runs the calls and yields each result as it completes; the
scorer, in the driver, commits it to the cache. `LocalEngine` runs them one after another in
this process; `RayTeacher` (adapt/teacher/ray_engine.py) spreads them over an actor pool. The
units are a function of the prompts alone, never of timing or of where they run, so both engines
hand the backend the same batches, and the same backend at the same dtype gives the same bits.
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

# Prompts in one backend call when a backend names no batch size of its own (TransformersBackend's
# default batch).
DEFAULT_BATCH = 8
# A unit that shares prompt prefixes holds this many backend batches: the transformers backend
# encodes a shared passage once for up to four batches of its queries.
SHARED_BATCHES = 4


@dataclass(frozen=True)
class Call:
    """One backend call, picklable, so that it can run in another process: the backend method,
    its prompts and its other arguments (label ids, continuations, or generation settings)."""

    method: str  # "label_logits", "continuation_logprobs" or "generate"
    prompts: list[str]
    args: tuple = ()

    def run(self, backend):
        return getattr(backend, self.method)(self.prompts, *self.args)


@runtime_checkable
class Engine(Protocol):
    def run_calls(self, calls: Iterable[Call]) -> Iterator[tuple[int, object]]:
        """(position in `calls`, result) for every call, in the order they complete."""
        ...


class LocalEngine:
    """The backend in this process, one call after another."""

    def __init__(self, backend) -> None:
        self.backend = backend

    def run_calls(self, calls: Iterable[Call]) -> Iterator[tuple[int, object]]:
        for number, call in enumerate(calls):
            yield number, call.run(self.backend)


def engine_for(backend) -> Engine:
    """A backend that runs calls elsewhere (a Ray actor pool) is its own engine."""
    return backend if isinstance(backend, Engine) else LocalEngine(backend)


def units(
    rows: list[int], lengths: Sequence[int], size: int, groups: Sequence[str] | None = None
) -> list[list[int]]:
    """`rows` cut into backend calls of `size` prompts, longest first, so a batch pads little
    and the last calls of a stage (a cluster's stragglers) are its shortest.

    With `groups` (the shared prompt prefix of each row: query likelihood's passage, on a
    backend that encodes a shared prefix once), a group's rows stay together, longest passage
    first, and a call closes at a group boundary once it holds SHARED_BATCHES x `size` rows.

    >>> units([0, 1, 2, 3, 4], [3, 9, 1, 7, 5], 2)
    [[1, 3], [4, 0], [2]]
    >>> units([0, 1, 2, 3, 4, 5], [1] * 6, 1, ["p", "q", "p", "q", "p", "r"])
    [[0, 2, 4, 1, 3], [5]]
    """
    if groups is None:
        order = sorted(rows, key=lambda r: -lengths[r])
        return [order[i : i + size] for i in range(0, len(order), size)]
    order = sorted(rows, key=lambda r: (-len(groups[r]), groups[r]))
    cut, current = [], []
    for row in order:
        if len(current) >= size * SHARED_BATCHES and groups[row] != groups[current[-1]]:
            cut.append(current)
            current = []
        current.append(row)
    return cut + [current] if current else cut
