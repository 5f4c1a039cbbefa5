"""Queries written by the teacher, for a corpus that comes without any (InPars, Promptagator).

A seeded sample of passages, one query sampled for each from a `generate` template, in fixed
batches. Each batch has its own seed and is stored in the teacher's cache as it finishes (keyed
by the teacher, the template, the settings and the batch's passages and texts), so a kill loses
one batch, a rerun or another run writes nothing twice, and `--shard I/N` runs write every N-th
batch on other machines for `adapt merge` to unite, as scoring does. Duplicates are then dropped,
and the consistency filter keeps a query only when the student, as it starts, ranks its source
passage among the candidates it would give the teacher.
"""

import hashlib
import json
import random
import re
from collections.abc import Callable, Iterator

from adapt.data import Document, Query
from adapt.teacher.cache import content_hash
from adapt.teacher.engine import DEFAULT_BATCH, Call
from adapt.teacher.templates import Template

Progress = Callable[[int], None]


def sample_passages(docs: list[Document], n: int, seed: int) -> list[Document]:
    """`n` passages (at most the corpus), seeded, in a fixed order."""
    return random.Random(seed).sample(docs, min(n, len(docs)))


def batches(passages: list[Document], size: int) -> list[list[Document]]:
    return [passages[i : i + size] for i in range(0, len(passages), size)]


def _batch_key(batch: list[Document], number: int, temperature: float, seed: int) -> str:
    """What a batch's samples depend on: its passages (ids and texts), its seed, temperature."""
    ids = [(d.id, content_hash(d.full_text)) for d in batch]
    record = json.dumps([ids, number, temperature, seed])
    return hashlib.sha256(record.encode()).hexdigest()[:16]


def generate(
    scorer,
    template: Template,
    passages: list[Document],
    temperature: float,
    seed: int,
    progress: Progress | None = None,
    shard: tuple[int, int] | None = None,
) -> list[dict]:
    """{passage_id, text} per passage, in order: stored batches are read from the cache, the
    others written (by the scorer's engine: here or on a Ray cluster) and stored as each one
    arrives. With `shard` (I, N) only every N-th batch from the I-th is written, and the rows
    returned are the stored ones."""
    cache, teacher = scorer.cache, scorer.backend.fingerprint
    size = getattr(scorer.backend, "batch_size", DEFAULT_BATCH)
    keyed = [
        (number, batch, _batch_key(batch, number, temperature, seed))
        for number, batch in enumerate(batches(passages, size))
    ]
    found = {key: cache.get_written(teacher, template.digest, key) for _, _, key in keyed}
    if progress:
        progress(sum(len(texts) for texts in found.values()))
    todo = [
        (number, batch, key)
        for number, batch, key in keyed
        if len(found[key]) < len(batch) and (not shard or number % shard[1] == shard[0] - 1)
    ]

    def call(number: int, batch: list[Document]) -> Call:
        prompts = [
            scorer.wrap(
                template,
                template.template.format(
                    document=scorer.truncate(d.full_text, template.max_document_tokens)
                ),
            )
            for d in batch
        ]
        return Call("generate", prompts, (template.max_query_tokens, temperature, seed + number))

    calls = (call(number, batch) for number, batch, _ in todo)
    for position, written in scorer.engine.run_calls(calls):
        _, batch, key = todo[position]
        found[key] = {d.id: text for d, text in zip(batch, written)}
        cache.put_written(teacher, template.digest, key, found[key])
        if progress:
            progress(len(batch))
    return [
        {"passage_id": d.id, "text": found[key][d.id]}
        for _, batch, key in keyed
        if len(found[key]) == len(batch)  # another shard's batches are not stored yet
        for d in batch
    ]


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


def records(queries: list[Query]) -> Iterator[dict]:
    """Written queries as a run stores them: each with its source passage."""
    for q in queries:
        yield {"_id": q.id, "text": q.text, "passage_id": source_of(q)}


def consistent(queries: list[Query], ranking: dict[str, list[tuple[str, float]]]) -> list[Query]:
    """The queries whose source passage the student ranks in its top-k for them."""
    return [q for q in queries if source_of(q) in {doc for doc, _ in ranking[q.id]}]
