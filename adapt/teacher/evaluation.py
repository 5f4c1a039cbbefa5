"""How good is a teacher before hours go into it (`adapt teacher-eval`): measured inside the
student's own top-k of a labelled sample.

Pointwise templates: per-query AUC of relevant vs non-relevant passages (0.5 = chance), beside
the student's own AUC on the same passages, and nDCG@10 after reranking the top-k by the teacher
beside the student's own order. Pairwise templates: accuracy on (relevant, non-relevant) pairs
from one prompt order and from both, and the share of "A" answers (position bias). Prompts/s
counts only prompts the model scored (not cached).
"""

import dataclasses
import functools
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rich.console import Console

from adapt import precision
from adapt.config import StudentConfig, TeacherConfig
from adapt.data import Document, Qrels, Query, Ranking, read_corpus, read_qrels, read_queries
from adapt.errors import AdaptError
from adapt.evaluate import per_query, summarize
from adapt.teacher.cache import ScoreCache
from adapt.teacher.scoring import Progress, TeacherScorer
from adapt.teacher.templates import load_template

Track = Callable[[int], Progress]  # given the prompts to come, returns what to advance


def auc(relevant: list[float], other: list[float]) -> float | None:
    """P(a relevant score beats a non-relevant one), ties counting half; None without both.

    >>> auc([3.0, 1.0], [2.0, 0.0])
    0.75
    """
    if not relevant or not other:
        return None
    wins = sum((r > o) + 0.5 * (r == o) for r in relevant for o in other)
    return wins / (len(relevant) * len(other))


def split_auc(values, relevant: list[bool]) -> float | None:
    """`auc` of the scores `values`, split by the relevance flags beside them."""
    return auc(
        [v for v, r in zip(values, relevant) if r], [v for v, r in zip(values, relevant) if not r]
    )


def _timed(scorer: TeacherScorer, fn):
    computed, start = scorer.computed, time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    done = scorer.computed - computed
    return result, (done / elapsed if done and elapsed > 0 else None)


def evaluate_pointwise(
    scorer: TeacherScorer,
    queries: list[Query],
    docs: dict[str, Document],
    ranking: Ranking,
    qrels: Qrels,
    track: Track | None = None,
) -> dict:
    items = [(q, docs[d]) for q in queries for d, _ in ranking[q.id]]
    advance = track(len(items)) if track else None
    scores, rate = _timed(scorer, lambda: scorer.score_pointwise(items, advance))
    reranked: Ranking = {}
    aucs, own_aucs, cursor = [], [], 0
    for q in queries:
        hits = ranking[q.id]
        values = scores[cursor : cursor + len(hits)]
        cursor += len(hits)
        relevant = [qrels.get(q.id, {}).get(d, 0) > 0 for d, _ in hits]
        value = split_auc(values, relevant)
        if value is not None:
            aucs.append(value)
            own_aucs.append(split_auc([s for _, s in hits], relevant))
        order = np.argsort(-values, kind="stable")
        reranked[q.id] = [(hits[i][0], float(values[i])) for i in order]
    subset = {q.id: qrels[q.id] for q in queries if q.id in qrels}
    return {
        "auc": float(np.mean(aucs)) if aucs else None,
        "auc_queries": len(aucs),
        "auc_student": float(np.mean(own_aucs)) if own_aucs else None,
        "ndcg@10_reranked": summarize(per_query(subset, reranked))["ndcg@10"],
        "ndcg@10_student": summarize(per_query(subset, {q.id: ranking[q.id] for q in queries}))[
            "ndcg@10"
        ],
        "prompts_per_s": rate,
    }


def evaluate_pairwise(
    scorer: TeacherScorer,
    queries: list[Query],
    docs: dict[str, Document],
    ranking: Ranking,
    qrels: Qrels,
    pairs_per_query: int,
    seed: int = 0,
    track: Track | None = None,
) -> dict:
    rng = random.Random(seed)
    items = []
    for q in queries:
        judged = qrels.get(q.id, {})
        relevant = [d for d, _ in ranking[q.id] if judged.get(d, 0) > 0]
        other = [d for d, _ in ranking[q.id] if judged.get(d, 0) <= 0]
        pairs = [(r, o) for r in relevant for o in other]
        for r, o in rng.sample(pairs, min(pairs_per_query, len(pairs))):
            items.append((q, docs[r], docs[o]))
    if not items:
        return {"pairs": 0}
    advance = track(scorer.pair_prompts(len(items))) if track else None
    results, rate = _timed(scorer, lambda: scorer.score_pairs(items, advance))
    from scipy.stats import binomtest

    forward = np.array([s.prob_a_forward for s in results])  # relevant shown as A
    backward = np.array([s.prob_a_backward for s in results])  # relevant shown as B
    right = sum(s.prob > 0.5 for s in results)
    return {
        "pairs": len(items),
        "accuracy_one_order": float(np.mean(np.concatenate([forward > 0.5, backward < 0.5]))),
        "accuracy_both_orders": right / len(results),
        # Two-sided, against a coin: whether the both-order log-odds order pairs at all.
        "p_both_orders": float(binomtest(right, len(results), 0.5).pvalue),
        "share_answer_a": float(np.mean(np.concatenate([forward > 0.5, backward > 0.5]))),
        "prompts_per_s": rate,
    }


def teacher_eval(
    data: Path,
    teachers: list[TeacherConfig],
    prompts: list[str],
    student: StudentConfig,
    console: Console,
    cache: Path,
    split: str = "test",
    queries_split: str | None = None,
    sample: int = 100,
    top_k: int = 20,
    pairs_per_query: int = 4,
    max_document_tokens: int = 0,
    seed: int = 0,
) -> dict:
    """Every teacher x template on a seeded sample of a BEIR folder's judged queries, inside
    the top-k of the start `adapt run` builds from `student` (indexed as its evaluation
    indexes): one result row each, with what it was measured on."""
    from adapt.progress import TeacherBar, make_progress
    from adapt.retriever.index import ExactIndex
    from adapt.stages.start import start_student
    from adapt.teacher.backends import check_teacher, load_backend

    for t in teachers:
        check_teacher(t)  # before the student indexes the corpus
    templates = [load_template(p) for p in prompts]
    for template in templates:
        if template.kind == "generate":
            raise AdaptError(f"{template.name}: a generate template writes queries, it scores none")
    if max_document_tokens:
        templates = [
            dataclasses.replace(t, max_document_tokens=max_document_tokens) for t in templates
        ]
    docs = read_corpus(data)
    qrels = read_qrels(data / "qrels" / f"{split}.tsv")
    judged = [
        q
        for q in read_queries(data, queries_split)
        if any(g > 0 for g in qrels.get(q.id, {}).values())
    ]
    queries = sorted(
        random.Random(seed).sample(judged, min(sample, len(judged))), key=lambda q: q.id
    )
    model, _ = start_student(student, docs, console)
    with make_progress(console) as progress:
        index = ExactIndex.build(
            model, docs, student.eval_doc_maxlen, student.encode_batch_size, progress
        )
    ranking = index.search(model, queries, top_k)
    by_id = {d.id: d for d in docs}
    rows = []
    for t in teachers:
        backend = load_backend(t)
        for template in templates:
            console.print(f"{t.model} x {template.name} on {len(queries)} queries")
            pointwise = template.kind == "pointwise"
            scorer = TeacherScorer(
                backend,
                ScoreCache(cache),
                template if pointwise else None,
                None if pointwise else template,
            )
            with make_progress(console) as progress:
                track = functools.partial(TeacherBar, progress, f"{t.model} x {template.name}")
                result = (
                    evaluate_pointwise(scorer, queries, by_id, ranking, qrels, track)
                    if pointwise
                    else evaluate_pairwise(
                        scorer, queries, by_id, ranking, qrels, pairs_per_query, seed, track
                    )
                )
            rows.append(
                {
                    "teacher": t.model,
                    "template": template.name,
                    "mode": template.mode,
                    "dtype": precision.teacher_dtype(t.dtype, t.engine, t.device),
                    "max_document_tokens": template.max_document_tokens,
                    **result,
                }
            )
    return {
        "data": str(data),
        "split": split,
        "queries_split": queries_split,
        "queries": [q.id for q in queries],
        "top_k": top_k,
        "student": student.model,
        "seed": seed,
        "results": rows,
    }


COLUMNS = (
    "teacher",
    "template",
    "AUC (student)",
    "nDCG@10 reranked (student)",
    "pair acc. one order / both",
    "share A",
    "prompts/s",
)


def table(rows: list[dict]) -> list[list[str]]:
    """`teacher_eval`'s result rows as the cells of a table under COLUMNS."""

    def cell(value, fmt: str = "{:.3f}") -> str:
        return "-" if value is None else fmt.format(value)

    cells = []
    for row in rows:
        ndcg = (
            f"{row['ndcg@10_reranked'] * 100:.1f} ({row['ndcg@10_student'] * 100:.1f})"
            if "ndcg@10_reranked" in row
            else "-"
        )
        pair = (
            f"{row['accuracy_one_order']:.3f} / {row['accuracy_both_orders']:.3f} "
            f"(p={row['p_both_orders']:.2g})"
            if row.get("pairs")
            else "-"
        )
        cells.append(
            [
                row["teacher"],
                row["template"],
                f"{cell(row.get('auc'))} ({cell(row.get('auc_student'))})" if "auc" in row else "-",
                ndcg,
                pair,
                cell(row.get("share_answer_a")),
                cell(row.get("prompts_per_s"), "{:.2f}"),
            ]
        )
    return cells
