"""The PairDistill loop: index -> retrieve -> pointwise teacher -> targets -> pairs (pairwise
teacher) -> train, repeated; evaluation of the start, its baselines and every iteration when
qrels are given.

Layout of a run directory:
    config.toml, config.json, stages.json, queries.jsonl (and teacher-cache.sqlite when private)
    baselines/{bm25, biencoder}.json       what the user has without adapt (with qrels)
    iter-0/checkpoint                      the start (with its fitted head, if it was fresh)
    iter-N/{index.pt | plaid/ | faiss/, eval.json}  index (by kind) and metrics of iteration N
    iter-N/{candidates, pointwise, targets, pairs}.jsonl, train-log.jsonl, checkpoint  (N >= 1)
    report.json, report.md
"""

import dataclasses
import hashlib
import json
import random
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch
from rich.console import Console

from adapt import baselines, guard, hub, precision, report
from adapt.config import Config, StudentConfig, TeacherConfig
from adapt.data import (
    Document,
    Qrels,
    Query,
    Ranking,
    check_qrels,
    read_corpus,
    read_qrels,
    read_queries,
)
from adapt.distill import check_distill, pairs
from adapt.distill.targets import Weights, build_targets
from adapt.distill.train import load_examples, train, train_seed
from adapt.errors import AdaptError, InputError, ShardDone
from adapt.evaluate import EVAL_VERSION, per_query, summarize
from adapt.io import read_json, read_jsonl, replace_dir, write_json, write_jsonl
from adapt.progress import (
    TeacherBar,
    duration,
    estimate_s,
    known_rate,
    make_progress,
    rate_key,
    record_rate,
)
from adapt.retriever import backend
from adapt.retriever.backend import Index
from adapt.retriever.colbert import METADATA
from adapt.retriever.student import Student, check_student, load_student
from adapt.rundir import RunDir
from adapt.teacher.agreement import NOISE_TAU, agreement_with_student
from adapt.teacher.backends import check_teacher
from adapt.teacher.cache import count_scores
from adapt.teacher.scoring import score_candidates
from adapt.teacher.shard import in_shard
from adapt.teacher.templates import FROM_POINTWISE, load_template

PROJECTION_SAMPLE = 2000  # documents used to fit a fresh projection head
NO_HELD_OUT = (
    "every passage is the source of an adaptation query, so none is held out for it "
    "(write queries for fewer passages with --generate-queries to keep some)"
)


@dataclass
class Inputs:
    docs: list[Document]
    queries: list[Query]
    eval_queries: list[Query] = field(default_factory=list)
    qrels: Qrels | None = None

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
        return _digest([(d.id, d.title, d.text) for d in self.docs])

    @cached_property
    def digest(self) -> str:
        """The adaptation queries (a changed seed or sample is a changed set)."""
        return _digest([(q.id, q.text) for q in self.queries])

    @cached_property
    def eval_digest(self) -> str:
        qrels = sorted((q, sorted(j.items())) for q, j in (self.qrels or {}).items())
        return _digest([[(q.id, q.text) for q in self.eval_queries], qrels])


def _digest(value) -> str:
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


def start_student(s: StudentConfig, docs: list[Document], console: Console) -> tuple[Student, dict]:
    """The student to adapt; a fresh ColBERT head (plain encoder) is fitted to the corpus first."""
    model = load_student(s)
    info: dict = {"model": s.model, "kind": s.kind, "fresh_head": model.is_fresh}
    if model.is_fresh:
        console.print("fitting the projection head to the corpus (uncentred PCA)")
        sample = random.Random(0).sample(docs, min(PROJECTION_SAMPLE, len(docs)))
        info["energy_kept"] = model.init_projection([d.full_text for d in sample])
    return model, info


def make_scorer(t: TeacherConfig, cache: Path, console: Console):
    """A TeacherScorer for the configured teacher and templates, storing scores in `cache`."""
    from adapt.teacher.backends import load_backend
    from adapt.teacher.cache import ScoreCache
    from adapt.teacher.scoring import TeacherScorer

    console.print(f"loading teacher [bold]{t.model}[/] ({t.engine})")
    backend = load_backend(t)
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
    return TeacherScorer(backend, ScoreCache(cache), pointwise, pairwise, t.both_orders)


class Pipeline:
    def __init__(
        self,
        config: Config,
        run_dir: Path,
        console: Console,
        force: bool = False,
        cache: Path | None = None,
        shard: tuple[int, int] | None = None,
        baselines: bool = True,
        check: bool = True,
    ):
        self.config = config
        self.shard = shard
        self.with_baselines = baselines  # a bench computes them once per domain, as methods
        # The label-free check: not in a bench (it has labels) nor in a shard (it only scores).
        self.checking = (
            check and not shard and config.generate.check_queries > 0 and config.iterations > 0
        )
        self.cache_path = cache or run_dir / "teacher-cache.sqlite"
        self.console = console
        self.inputs = load_inputs(config)
        s = config.student
        check_student(s)  # bad student settings fail before any work
        hub.check(s.model, "student")  # ... and a student that cannot be had
        check_teacher(config.teacher)
        t = config.teacher
        # What the teacher runs at here: stage records, rates and reports name it, never "auto".
        self.teacher_dtype = precision.teacher_dtype(t.dtype, t.engine, t.device)
        check_distill(config.distill)
        backend.choose(s.index, len(self.inputs.docs), s.kind)  # a bad index kind fails now
        self.run = RunDir(run_dir, config, force)
        self.path = run_dir
        self._scorer = None
        self._student: tuple[int, Student] | None = None
        self.timings: dict[str, float] = (
            read_json(run_dir / "timings.json") if (run_dir / "timings.json").is_file() else {}
        )

    # -- helpers ---------------------------------------------------------------------------

    def _fp(self, stage: str, upstream: str = "", **inputs) -> str:
        """A stage's record: a digest of a small JSON of what its output depends on (its
        upstream record, its settings, the content of what it reads), so any change re-runs it
        and everything after it."""
        record = {"stage": stage, "upstream": upstream, **inputs}
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]

    def _complete(self, out: Path, fp: str, name: str, start: float) -> None:
        """Record a finished stage (its output is already in place) and its wall time."""
        self.run.mark(out, fp)
        self.timings[name] = round(time.time() - start, 3)
        write_json(self.path / "timings.json", self.timings)

    def scorer(self):
        """The teacher, loaded only when some stage actually needs a score."""
        if self._scorer is None:
            self._scorer = make_scorer(self.config.teacher, self.cache_path, self.console)
        return self._scorer

    def _rate_key(self, template: str) -> str:
        t = self.config.teacher
        return rate_key(t.model, t.engine, self.teacher_dtype, t.device, template)

    def passage_chars(self, template: str) -> float:
        """The corpus's mean passage length as the teacher reads it (cut at the template's
        token limit, about four characters a token): what a stored rate is scaled by."""
        limit = 4 * (
            self.config.teacher.max_document_tokens or load_template(template).max_document_tokens
        )
        docs = self.inputs.docs
        return sum(min(len(d.full_text), limit) for d in docs) / len(docs)

    def student(self, iteration: int) -> Student:
        """Iteration N's student for inference (kept: index, eval and retrieval all use it)."""
        if self._student is None or self._student[0] != iteration:
            path = self.path / f"iter-{iteration}" / "checkpoint"
            self._student = (iteration, load_student(self.config.student, str(path)))
        return self._student[1]

    # -- stages ----------------------------------------------------------------------------

    def start_checkpoint(self) -> str:
        out = self.path / "iter-0" / "checkpoint"
        s = self.config.student
        fp = self._fp(
            "start",
            student={
                k: getattr(s, k)
                for k in ("model", "kind", "dim", "query_maxlen", "doc_maxlen")
                + ("query_augmentation", "markers")
            },
            corpus=self.inputs.corpus_digest,
        )
        if self.run.done(out, fp):
            return fp
        start = time.time()
        model, info = start_student(self.config.student, self.inputs.docs, self.console)
        tmp = out.parent / ".checkpoint.tmp"
        model.save(tmp, {"adapt_start": info}, location=out)
        replace_dir(tmp, out)
        write_json(out.parent / "start.json", info)
        self._complete(out, fp, "iter-0/start", start)
        return fp

    def _index_path(self, iteration: int) -> tuple[Path, str]:
        s = self.config.student
        metadata = self.path / "iter-0" / "checkpoint" / METADATA  # dense students have none
        markers = read_json(metadata).get("markers", True) if metadata.is_file() else True
        kind = backend.choose(s.index, len(self.inputs.docs), s.kind, markers)
        return self.path / f"iter-{iteration}" / backend.FILENAMES[kind], kind

    def index(self, iteration: int, upstream: str) -> tuple[Index | None, str]:
        out, kind = self._index_path(iteration)
        s = self.config.student
        fp = self._fp("index", upstream, kind=kind, doc_maxlen=s.eval_doc_maxlen)
        if self.run.done(out, fp):
            return None, fp
        start = time.time()
        model = self.student(iteration)
        checkpoint = self.path / f"iter-{iteration}" / "checkpoint"
        with make_progress(self.console) as progress:
            index = backend.build(
                kind,
                model,
                checkpoint,
                self.inputs.docs,
                out,
                s.eval_doc_maxlen,
                s.encode_batch_size,
                progress,
                self.config.data.corpus,
            )
        self._complete(out, fp, f"iter-{iteration}/index", start)
        return index, fp

    def _search(self, iteration: int, index: Index | None, queries: list[Query], k: int) -> Ranking:
        index = index or backend.open_index(self._index_path(iteration)[0])
        with make_progress(self.console) as progress:
            return index.search(self.student(iteration), queries, k, progress=progress)

    def evaluate(self, iteration: int, index: Index | None, upstream: str) -> None:
        if not self.inputs.qrels:
            return
        out = self.path / f"iter-{iteration}" / "eval.json"
        fp = self._fp(
            "eval",
            upstream,
            k=self.config.search_k,
            version=EVAL_VERSION,
            queries=self.inputs.eval_digest,
            identical_ids=self.config.data.ignore_identical_ids,
        )
        if self.run.done(out, fp):
            return
        start = time.time()
        ranking = self._search(iteration, index, self.inputs.eval_queries, self.config.search_k)
        values = per_query(
            self.inputs.qrels, ranking, ignore_identical_ids=self.config.data.ignore_identical_ids
        )
        write_json(out, {"metrics": summarize(values), "per_query": values})
        write_jsonl(
            self.path / f"iter-{iteration}" / "eval-run.jsonl",
            ({"query_id": q, "hits": h} for q, h in ranking.items()),
        )
        self._complete(out, fp, f"iter-{iteration}/eval", start)
        metrics = summarize(values)
        self.console.print(
            f"iteration {iteration}: " + "  ".join(f"{m} {v * 100:.1f}" for m, v in metrics.items())
        )

    def baselines(self) -> None:
        """BM25 and the start's encoder as it ships, on the evaluation queries: every reported
        number stands beside what the user has without adapt."""
        if not self.inputs.qrels or not self.with_baselines:
            return
        fresh = read_json(self.path / "iter-0" / "start.json").get("fresh_head", False)
        wanted = baselines.applicable(self.config, fresh)
        for stale in (self.path / "baselines").glob("*.json"):
            if stale.stem not in wanted:  # e.g. a bi-encoder left from another start
                stale.unlink()
        for name in wanted:
            out = self.path / "baselines" / f"{name}.json"
            baselines.evaluate(name, self.config, self.inputs, out, self.console)

    def generated_count(self) -> int:
        return min(self.config.generate.queries, len(self.inputs.docs))

    def generate_queries(self, index: Index | None, upstream: str) -> None:
        """A corpus-only run's queries: written by the teacher for sampled passages, deduplicated,
        kept where the start ranks the source passage in its top-k (generated/)."""
        from adapt.teacher import generation

        g, d = self.config.generate, self.config.distill
        folder = self.path / "generated"
        out = folder / "queries.jsonl"
        template = load_template(g.prompt, "generate")
        fp = self._fp(
            "generate", upstream, **self._writing(template), queries=g.queries, top_k=d.top_k
        )
        if not self.run.done(out, fp):
            start = time.time()
            passages = generation.sample_passages(self.inputs.docs, g.queries, d.seed)
            rows, shown = self._write_queries(template, passages, "writing queries")
            rate = round(shown.rate, 3) if shown.computed else None  # writing alone
            if self.shard:
                raise ShardDone(
                    f"shard {self.shard[0]}/{self.shard[1]} of the written queries: "
                    f"{shown.computed} written, {len(rows)} of {len(passages)} stored in "
                    f"{self.cache_path}. When every shard is done: `adapt merge` the caches into "
                    "this run's, then run again without --shard"
                )
            write_jsonl(folder / "written.jsonl", rows)
            written = generation.unique_queries(rows)
            ranking = self._search(0, index, written, d.top_k)
            kept = generation.consistent(written, ranking)
            stats = {
                "passages": len(passages),
                "written": len(rows),
                "unique": len(written),
                "kept": len(kept),
                "share_kept": round(len(kept) / max(len(passages), 1), 4),
                "filter": f"source passage in the start's top-{d.top_k}",
                "queries_per_s": rate,
                "dtype": self.teacher_dtype,
            }
            write_json(folder / "stats.json", stats)
            write_jsonl(out, generation.records(kept))
            self._complete(out, fp, "generated/queries", start)
            self.console.print(
                f"queries: {stats['written']} written, {stats['unique']} unique, {len(kept)} kept "
                f"({stats['filter']})"
            )
        queries = [Query(r["_id"], r["text"]) for r in read_jsonl(out)]
        if not queries:
            raise AdaptError(
                f"no written query survived the filter ({folder / 'stats.json'}): the start "
                "ranks none of their passages in its top-k; try a larger distill.top_k"
            )
        self.inputs.use_queries(queries)

    def _writing(self, template) -> dict:
        """What the queries the teacher writes depend on, for a stage's record."""
        g, t = self.config.generate, self.config.teacher
        return {
            "teacher": t.model,
            "template": template.digest,
            "dtype": self.teacher_dtype,
            "temperature": g.temperature,
            "seed": self.config.distill.seed,
        }

    def _write_queries(
        self, template, passages: list[Document], what: str
    ) -> tuple[list[dict], TeacherBar]:
        """The teacher writes one query per passage (through the cache), with its bar."""
        from adapt.teacher import generation

        g, d = self.config.generate, self.config.distill
        with make_progress(self.console) as progress:
            scorer = self.scorer()
            shown = TeacherBar(
                progress, f"teacher: {what}", len(passages), "queries", "already written",
                "to write",
            )  # fmt: skip
            rows = generation.generate(
                scorer, template, passages, g.temperature, d.seed, shown, self.shard
            )
        return rows, shown

    def check_queries(self) -> tuple[list[Query], str]:
        """The label-free check's queries: written by the teacher for held-out passages, none a
        source of an adaptation query (guard/queries.jsonl)."""
        from adapt.teacher import generation

        g, d = self.config.generate, self.config.distill
        out = self.path / "guard" / "queries.jsonl"
        template = load_template(g.prompt, "generate")
        adapting = self.path / "generated" / "written.jsonl"  # a corpus-only run's sources
        sources = {r["passage_id"] for r in read_jsonl(adapting)} if adapting.is_file() else set()
        fp = self._fp(
            "check-queries",
            **self._writing(template),
            queries=g.check_queries,
            corpus=self.inputs.corpus_digest,
            excluded=sorted(sources),
        )
        if not self.run.done(out, fp):
            start = time.time()
            passages = guard.held_out_passages(self.inputs.docs, g.check_queries, d.seed, sources)
            rows, _ = self._write_queries(template, passages, "writing check queries")
            written = generation.unique_queries(rows)
            write_jsonl(out, generation.records(written))
            self._complete(out, fp, "guard/queries", start)
        return [Query(r["_id"], r["text"]) for r in read_jsonl(out)], fp

    def check(self, upstream: str) -> None:
        """Start against adapted on the check's queries, each one's source passage relevant:
        the recommendation a run without qrels still gets (adapt/guard.py)."""
        if not self.checking:
            return
        queries, queries_fp = self.check_queries()
        out = self.path / "guard" / "check.json"
        fp = self._fp("check", upstream, queries=queries_fp, k=self.config.search_k)
        if self.run.done(out, fp):
            return
        start = time.time()
        if not queries:  # the report says why there is no call
            write_json(out, {"queries": 0, "reason": NO_HELD_OUT})
            self._complete(out, fp, "guard/check", start)
            return
        qrels = guard.known_items(queries)
        values = {}
        for iteration in range(self.config.iterations + 1):
            ranking = self._search(iteration, None, queries, self.config.search_k)
            values[iteration] = per_query(qrels, ranking)
        last = self.config.iterations
        verdict = guard.call(values[0]["ndcg@10"], values[last]["ndcg@10"])
        write_json(
            out,
            {
                "queries": len(queries),
                "iterations": {str(i): summarize(v) for i, v in values.items()},
                "per_query": {str(i): v["ndcg@10"] for i, v in values.items()},
                "call": {**verdict, "iteration": last},
            },
        )
        self._complete(out, fp, "guard/check", start)

    def candidates(self, iteration: int, index: Index | None, upstream: str) -> str:
        """Top-k for the adaptation queries, retrieved by the previous iteration's student."""
        out = self.path / f"iter-{iteration + 1}" / "candidates.jsonl"
        fp = self._fp(
            "candidates", upstream, top_k=self.config.distill.top_k, queries=self.inputs.digest
        )
        if not self.run.done(out, fp):
            start = time.time()
            ranking = self._search(iteration, index, self.inputs.queries, self.config.distill.top_k)
            write_jsonl(
                out, ({"query_id": q.id, "hits": ranking[q.id]} for q in self.inputs.queries)
            )
            self._complete(out, fp, f"iter-{iteration + 1}/candidates", start)
        return fp

    def pointwise(self, iteration: int, upstream: str) -> str:
        out = self.path / f"iter-{iteration}" / "pointwise.jsonl"
        t = self.config.teacher
        fp = self._fp(
            "pointwise",
            upstream,
            teacher=t.model,
            template=load_template(t.pointwise_prompt, "pointwise").digest,
            dtype=self.teacher_dtype,
            max_document_tokens=t.max_document_tokens,
        )
        if self.run.done(out, fp):
            return fp
        start = time.time()
        rows = read_jsonl(self.path / f"iter-{iteration}" / "candidates.jsonl")
        if self.shard:
            self._score_shard(iteration, rows)
        with make_progress(self.console) as progress:
            scorer = self.scorer()
            shown = TeacherBar(progress, "teacher: pointwise", sum(len(r["hits"]) for r in rows))
            records = score_candidates(
                scorer, rows, self.inputs.query_by_id, self.inputs.doc_by_id, shown
            )
        record_rate(
            self._rate_key(t.pointwise_prompt), shown, self.passage_chars(t.pointwise_prompt)
        )
        self._check_agreement(iteration, agreement_with_student(rows, records))
        write_jsonl(out, records)
        self._complete(out, fp, f"iter-{iteration}/pointwise", start)
        return fp

    def _check_agreement(self, iteration: int, found: dict) -> None:
        write_json(self.path / f"iter-{iteration}" / "pointwise-diagnostics.json", found)
        tau, floor = found["teacher_student_tau"], self.config.teacher.min_student_agreement
        tau = 0.0 if tau is None else tau  # constant scores: no order at all
        message = (
            f"the teacher's scores barely agree with the student's (Kendall tau {tau:.3f} over "
            f"{found['queries']} queries): this teacher may be noise on this domain; "
            "`adapt teacher-eval` on a few labelled queries tells for sure"
        )
        if floor is not None and tau < floor:
            raise AdaptError(
                f"{message}. Refusing to train (teacher.min_student_agreement {floor})"
            )
        if tau < NOISE_TAU:
            self.console.print(f"[yellow]warning:[/] {message}")

    def targets(self, iteration: int, upstream: str) -> str:
        """targets.jsonl: the teacher's scores, fused with the student's and BM25's as
        configured (adapt/distill/targets.py), each query's candidates in target order."""
        out = self.path / f"iter-{iteration}" / "targets.jsonl"
        d = self.config.distill
        fp = self._fp(
            "targets",
            upstream,
            teacher=d.teacher_weight,
            bm25=d.bm25_weight,
            biencoder=[
                d.biencoder_weight,
                self.config.student.model,
                self.config.student.doc_maxlen,
            ],
        )
        if self.run.done(out, fp):
            return fp
        start = time.time()
        folder = self.path / f"iter-{iteration}"
        write_jsonl(
            out,
            self._target_rows(
                read_jsonl(folder / "pointwise.jsonl"), read_jsonl(folder / "candidates.jsonl")
            ),
        )
        self._complete(out, fp, f"iter-{iteration}/targets", start)
        return fp

    def _target_rows(self, pointwise: list[dict], candidates: list[dict]) -> list[dict]:
        d = self.config.distill
        wanted = {r["query_id"]: r["docs"] for r in pointwise}
        bm25 = biencoder = None
        if d.bm25_weight > 0:
            from adapt.retriever.bm25 import bm25_scores

            bm25 = bm25_scores(self.inputs.docs, self.inputs.query_by_id, wanted)
        if d.biencoder_weight > 0:
            from adapt.retriever.dense import biencoder_scores

            s = self.config.student
            biencoder = biencoder_scores(
                s.model, s.doc_maxlen, self.inputs.query_by_id, self.inputs.doc_by_id, wanted
            )
        weights = Weights(d.teacher_weight, d.bm25_weight, d.biencoder_weight)
        return build_targets(pointwise, candidates, weights, bm25, biencoder)

    def pairs(self, iteration: int, upstream: str) -> str:
        """pairs.jsonl: each query's KD group and pair targets (adapt/distill/pairs.py)."""
        out = self.path / f"iter-{iteration}" / "pairs.jsonl"
        d, t = self.config.distill, self.config.teacher
        template = (
            FROM_POINTWISE
            if t.pairwise_prompt == FROM_POINTWISE
            else load_template(t.pairwise_prompt, "pairwise").digest
        )
        fp = self._fp(
            "pairs",
            upstream,
            template=template,
            both_orders=t.both_orders,
            sampling=[d.seed, d.nway, d.delta, d.n_pairs, d.temperature],
        )
        if self.run.done(out, fp):
            return fp
        start = time.time()
        targets = read_jsonl(self.path / f"iter-{iteration}" / "targets.jsonl")
        sampled = pairs.sample(targets, d, iteration)
        if t.pairwise_prompt == FROM_POINTWISE:
            records = pairs.from_targets(sampled, targets, d.temperature)
            diagnostics = {"source": FROM_POINTWISE}
        else:
            from adapt.teacher.scoring import pair_diagnostics

            items = pairs.prompts(sampled, self.inputs.query_by_id, self.inputs.doc_by_id)
            with make_progress(self.console) as progress:
                scorer = self.scorer()
                shown = TeacherBar(progress, "teacher: pairwise", scorer.pair_prompts(len(items)))
                scores = scorer.score_pairs(items, shown)
            record_rate(
                self._rate_key(t.pairwise_prompt), shown, self.passage_chars(t.pairwise_prompt)
            )
            records = pairs.from_scores(sampled, scores)
            diagnostics = pair_diagnostics(scores)
        write_json(self.path / f"iter-{iteration}" / "teacher-diagnostics.json", diagnostics)
        write_jsonl(out, records)
        self._complete(out, fp, f"iter-{iteration}/pairs", start)
        return fp

    def _score_shard(self, iteration: int, rows: list[dict]) -> None:
        """Score this shard's prompts of `iteration` into the cache, then stop the run. Its
        targets and pairs come from the same functions as the whole run's, so the merged run
        finds every prompt in the cache."""
        queries, docs = self.inputs.query_by_id, self.inputs.doc_by_id
        rows = [r for r in rows if in_shard(r["query_id"], self.shard)]
        scorer = self.scorer()
        with make_progress(self.console) as progress:
            total = sum(len(r["hits"]) for r in rows)
            shown = TeacherBar(progress, "teacher: pointwise (shard)", total)
            records = score_candidates(scorer, rows, queries, docs, shown)
            if self.config.teacher.pairwise_prompt != FROM_POINTWISE:
                targets = self._target_rows(records, rows)
                sampled = pairs.sample(targets, self.config.distill, iteration)
                items = pairs.prompts(sampled, queries, docs)
                total = scorer.pair_prompts(len(items))
                scorer.score_pairs(items, TeacherBar(progress, "teacher: pairwise (shard)", total))
        raise ShardDone(
            f"shard {self.shard[0]}/{self.shard[1]} of iteration {iteration}: {len(rows)} queries, "
            f"{scorer.computed} prompts scored, {scorer.reused} already stored in "
            f"{self.cache_path}. When every shard is done: `adapt merge` the caches into "
            "this run's, then run again without --shard"
        )

    def train(self, iteration: int, upstream: str) -> str:
        out = self.path / f"iter-{iteration}" / "checkpoint"
        fp = self._fp(
            "train",
            upstream,
            distill=self.config.fingerprint("distill"),
            doc_maxlen=self.config.student.doc_maxlen,
        )
        if self.run.done(out, fp):
            return fp
        if self.config.teacher.ray_address and self._scorer is not None:
            # The teacher's actors end here: their GPUs (one may be this process's) go to training.
            self._scorer.backend.close()
            self._scorer = None
        start = time.time()
        d = self.config.distill
        folder = self.path / f"iter-{iteration}"
        examples = load_examples(
            read_jsonl(folder / "targets.jsonl"),
            read_jsonl(folder / "pairs.jsonl"),
            self.inputs.query_by_id,
            self.inputs.doc_by_id,
            d.min_pair_confidence,
        )
        if not examples:
            raise AdaptError("no query has two or more candidates to train on")
        start_from = self.path / f"iter-{iteration - 1}" / "checkpoint"
        model = load_student(self.config.student, str(start_from))  # trained in place
        log: list[dict] = []
        with make_progress(self.console) as progress:
            steps = -(-len(examples) // d.batch_size) * d.epochs
            task = progress.add_task(f"training (iteration {iteration})", total=steps)

            def on_step(row: dict) -> None:
                log.append(row)
                progress.update(
                    task,
                    advance=1,
                    description=f"training (iteration {iteration}) loss {row['loss']:.3f}",
                )

            train(
                model,
                examples,
                d,
                self.config.student.doc_maxlen,
                train_seed(d.seed, iteration),
                on_step,
            )
        write_jsonl(folder / "train-log.jsonl", log)
        tmp = folder / ".checkpoint.tmp"
        model.save(tmp, {"adapt_iteration": iteration}, location=out)
        replace_dir(tmp, out)
        self._complete(out, fp, f"iter-{iteration}/train", start)
        return fp

    # -- the loop --------------------------------------------------------------------------

    def run_all(self) -> dict:
        try:
            return self._loop()
        finally:
            self.run.close()

    def plan(self) -> str:
        """What this run will do and what it costs in teacher prompts, before any of it."""
        c, t, d = self.config, self.config.teacher, self.config.distill
        n = len(self.inputs.queries) or self.generated_count()
        pairwise = (
            "pair targets from the pointwise scores (no prompts)"
            if t.pairwise_prompt == FROM_POINTWISE
            else f"{n * d.n_pairs * (2 if t.both_orders else 1)} A/B prompts at most"
        )
        evaluation = (
            f"evaluated on {len(self.inputs.eval_queries)} judged queries beside BM25 and the "
            "start's encoder"
            if self.inputs.qrels
            else "no qrels: no evaluation"
        )
        known = known_rate(self._rate_key(t.pointwise_prompt))
        chars = self.passage_chars(t.pointwise_prompt)
        timing = (
            f"about {duration(estimate_s(known, n * d.top_k, chars))} of pointwise scoring per "
            f"iteration (measured on this machine {known['date']}: {known['prompts_per_s']:.2f} "
            f"prompts/s, scaled to these passages), less what the cache holds"
            if known
            else "the teacher's rate is measured on its first prompts and the time left printed"
        )
        held_out = len(self.inputs.docs) - (0 if self.inputs.queries else n)
        check = (
            ""
            if not self.checking
            else f"; no label-free check: {NO_HELD_OUT}"
            if held_out == 0
            else f"; then a label-free check on {min(c.generate.check_queries, held_out)} queries "
            "the teacher writes for held-out passages"
        )
        written = (
            ""
            if self.inputs.queries
            else f"the teacher writes {n} queries ({c.generate.prompt}) for {n} sampled "
            f"passages, kept where the start ranks their passage in its top-{d.top_k}; then "
        )
        return (
            f"plan: {self.path}; {written}{c.iterations} iteration(s), each {n} queries x "
            f"top-{d.top_k} "
            f"= {n * d.top_k} pointwise prompts ({t.pointwise_prompt}) and {pairwise}; teacher "
            f"{t.model} in {self.teacher_dtype}; {len(self.inputs.docs)} passages; {evaluation}"
            f"{check}; {timing}. "
            f"Scores already in the cache ({self.cache_path}) are not asked again."
        )

    def resuming(self) -> str | None:
        """What a rerun keeps, before it goes on: the finished stages and the stored scores."""
        if not self.run.stages:
            return None
        done = [key for key in self.run.stages if (self.path / key).exists()]
        if not done:
            return None
        last = max(done, key=lambda key: (self.path / key).stat().st_mtime)
        scores = f"; {count_scores(self.cache_path)} teacher scores in {self.cache_path}"
        return (
            f"resuming {self.path}: {len(done)} finished stages kept (the latest: "
            f"{last}){scores if self.cache_path.is_file() else ''}"
        )

    def _loop(self) -> dict:
        resumed = self.resuming()
        if resumed:
            self.console.print(resumed)
        self.console.print(self.plan())
        torch.manual_seed(self.config.distill.seed)
        fp = self.start_checkpoint()
        for iteration in range(self.config.iterations + 1):
            if iteration:
                self.console.rule(f"iteration {iteration}")
            index, index_fp = self.index(iteration, fp)
            self.evaluate(iteration, index, index_fp)
            if iteration == 0:
                self.baselines()
                if not self.config.data.queries:
                    self.generate_queries(index, index_fp)
                write_jsonl(
                    self.path / "queries.jsonl",
                    ({"_id": q.id, "text": q.text} for q in self.inputs.queries),
                )
            if iteration == self.config.iterations:
                self.check(index_fp)
                break
            fp = self.candidates(iteration, index, index_fp)
            fp = self.pointwise(iteration + 1, fp)
            if self.checking and iteration == 0:  # while the teacher is loaded for scoring
                self.check_queries()
            fp = self.targets(iteration + 1, fp)
            fp = self.pairs(iteration + 1, fp)
            fp = self.train(iteration + 1, fp)
        return report.build(self.path, self.config, self.timings)


def run(
    config: Config,
    run_dir: Path,
    console: Console,
    force: bool = False,
    shard: tuple[int, int] | None = None,
    cache: Path | None = None,
) -> dict:
    """The loop; teacher scores go to `cache` (default: the run directory's own file)."""
    return Pipeline(config, run_dir, console, force, cache, shard).run_all()
