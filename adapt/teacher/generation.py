"""Queries written by the teacher, for a corpus that comes without any (InPars, Promptagator).

A seeded sample of passages, one query sampled for each from a `generate` template; batches are
appended to a file as they finish, so a kill loses one batch and a rerun writes nothing twice
(each batch has its own seed, so the resumed file equals an uninterrupted one). Duplicates are
dropped, then the consistency filter keeps a query only when the student, as it starts, ranks
its source passage among the candidates it would give the teacher.
"""

import json
import os
import random
import re
from collections.abc import Callable
from pathlib import Path

from adapt.data import Document, Query
from adapt.teacher.templates import Template

Progress = Callable[[int], None]


def sample_passages(docs: list[Document], n: int, seed: int) -> list[Document]:
    """`n` passages (at most the corpus), seeded, in a fixed order."""
    return random.Random(seed).sample(docs, min(n, len(docs)))


def _stored(path: Path, header: dict) -> list[dict]:
    """Rows already written under the same settings; a torn last line (a kill mid-write) is cut
    off, and a file written under other settings is started again."""
    if not path.is_file():
        return []
    good, rows = 0, []
    with path.open("rb") as handle:
        lines = handle.readlines()
    try:
        if json.loads(lines[0]) != header:
            return []
        good = len(lines[0])
        for line in lines[1:]:
            rows.append(json.loads(line))
            good += len(line)
    except (json.JSONDecodeError, IndexError, UnicodeDecodeError):
        pass
    with path.open("r+b") as handle:
        handle.truncate(good)
    return rows


def generate(
    scorer,
    template: Template,
    passages: list[Document],
    out: Path,
    temperature: float,
    seed: int,
    progress: Progress | None = None,
) -> list[dict]:
    """{passage_id, text} per passage, appended to `out` batch by batch (resumable)."""
    header = {
        "template": template.digest,
        "teacher": scorer.backend.fingerprint,
        "temperature": temperature,
        "seed": seed,
        "passages": [d.id for d in passages],
    }
    rows = _stored(out, header)
    if not rows:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(header) + "\n")
    if progress:
        progress(len(rows))
    size = getattr(scorer.backend, "batch_size", 8)
    with out.open("a") as handle:
        for start in range(len(rows), len(passages), size):
            batch = passages[start : start + size]
            prompts = [
                scorer.wrap(
                    template,
                    template.template.format(
                        document=scorer.truncate(d.full_text, template.max_document_tokens)
                    ),
                )
                for d in batch
            ]
            texts = scorer.backend.generate(
                prompts, template.max_query_tokens, temperature, seed + start // size
            )
            written = [{"passage_id": d.id, "text": t} for d, t in zip(batch, texts)]
            handle.write("".join(json.dumps(r) + "\n" for r in written))
            handle.flush()
            os.fsync(handle.fileno())
            rows += written
            if progress:
                progress(len(batch))
    return rows


def _normal(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def unique_queries(rows: list[dict]) -> list[Query]:
    """Non-empty, first of each normalised text; the id names its source passage."""
    seen: set[str] = set()
    queries = []
    for row in rows:
        key = _normal(row["text"])
        if key and key not in seen:
            seen.add(key)
            queries.append(Query(f"gen-{row['passage_id']}", row["text"]))
    return queries


def source_of(query: Query) -> str:
    return query.id.removeprefix("gen-")


def consistent(queries: list[Query], ranking: dict[str, list[tuple[str, float]]]) -> list[Query]:
    """The queries whose source passage the student ranks in its top-k for them."""
    return [q for q in queries if source_of(q) in {doc for doc, _ in ranking[q.id]}]
