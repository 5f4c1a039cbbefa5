"""What a run reads: the corpus, the adaptation queries and the judged evaluation queries, read
and validated once before any expensive stage. Every stage takes them from here, by id."""

import hashlib
import json
import random
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from adapt.config import Config
from adapt.data import (
    Document,
    Qrels,
    Query,
    check_qrels,
    read_corpus,
    read_qrels,
    read_queries,
)
from adapt.errors import AdaptError, InputError
from adapt.teacher.labels import is_labels, labels_path, load_labels
from adapt.teacher.templates import FROM_POINTWISE, load_template


@dataclass
class Inputs:
    docs: list[Document]
    queries: list[Query]
    eval_queries: list[Query] = field(default_factory=list)
    qrels: Qrels | None = None
    labels: Qrels | None = None  # the adaptation queries' judgments (the labels teacher)

    @cached_property
    def doc_by_id(self) -> dict[str, Document]:
        return {d.id: d for d in self.docs}

    @cached_property
    def query_by_id(self) -> dict[str, Query]:
        return {q.id: q for q in self.queries}

    def use_queries(self, queries: list[Query]) -> None:
        """Adapt on `queries` (a corpus-only run's, once the teacher has written them)."""
        self.queries = queries
        for derived in ("query_by_id", "digest"):
            self.__dict__.pop(derived, None)

    @cached_property
    def corpus_digest(self) -> str:
        """The corpus's content: a file edited in place re-runs what read it."""
        return digest([(d.id, d.title, d.text) for d in self.docs])

    @cached_property
    def digest(self) -> str:
        """The adaptation queries (a changed seed or sample is a changed set)."""
        return digest([(q.id, q.text) for q in self.queries])

    @cached_property
    def eval_digest(self) -> str:
        qrels = sorted((q, sorted(j.items())) for q, j in (self.qrels or {}).items())
        return digest([[(q.id, q.text) for q in self.eval_queries], qrels])


def digest(value) -> str:
    """A short digest of a JSON value: what stage records compare.

    >>> digest({"stage": "start"})
    '147e37d2f8722730'
    """
    return hashlib.sha256(json.dumps(value).encode()).hexdigest()[:16]


def load_inputs(config: Config) -> Inputs:
    """Read and validate every input before any expensive stage starts."""
    data = config.data
    if not data.corpus:
        raise AdaptError("a corpus is needed (--corpus or a recipe)")
    docs = read_corpus(Path(data.corpus))
    if len(docs) < 2:
        raise InputError(data.corpus, "at least 2 documents are needed: training compares them")
    queries = read_queries(Path(data.queries), data.queries_split) if data.queries else []
    if data.queries and not queries:
        raise AdaptError(f"{data.queries}: no queries to adapt on")
    if not data.queries:  # corpus-only: the teacher writes them
        load_template(config.generate.prompt, "generate")
        if config.generate.queries < 1:
            raise AdaptError("generate.queries must be at least 1 without --queries")
        if data.qrels and not data.eval_queries:
            raise AdaptError(
                "with generated queries, --eval-queries names the queries --qrels judge"
            )
    if 0 < data.max_queries < len(queries):
        keep = set(random.Random(config.distill.seed).sample(range(len(queries)), data.max_queries))
        queries = [q for i, q in enumerate(queries) if i in keep]
    inputs = Inputs(docs, queries)
    if is_labels(config.teacher.model):
        if not data.queries:
            raise AdaptError("the labels teacher scores judged queries: give --queries")
        if config.teacher.pairwise_prompt != FROM_POINTWISE:
            raise AdaptError(
                "the labels teacher has no A/B prompt: use --pairwise-prompt from-pointwise"
            )
        if config.teacher.ray_address:
            raise AdaptError(
                "the labels teacher has no model to run on a cluster: drop --ray-address"
            )
        inputs.labels = load_labels(labels_path(data), queries)  # unjudged: refused here
    if data.qrels:
        source = Path(data.eval_queries or data.queries)
        # Against the whole file: a split (half-2) leaves out queries the qrels rightly judge.
        qrels = check_qrels(
            Path(data.qrels), read_qrels(Path(data.qrels)), read_queries(source), docs
        )
        pool = read_queries(source, data.eval_split)
        inputs.eval_queries = [q for q in pool if q.id in qrels]
        if not inputs.eval_queries:
            raise InputError(data.qrels, f"judges none of the evaluation queries ({source})")
        # Only the evaluated queries' judgments: the other half must not count as misses.
        inputs.qrels = {q.id: qrels[q.id] for q in inputs.eval_queries}
    load_template(config.teacher.pointwise_prompt, "pointwise")
    if config.teacher.pairwise_prompt != FROM_POINTWISE:
        load_template(config.teacher.pairwise_prompt, "pairwise")
    return inputs
