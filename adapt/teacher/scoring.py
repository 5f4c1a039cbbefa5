"""Pointwise and pairwise teacher scores for (query, document[s]) items, through the cache.

Pointwise: `yes-no` gives logit(pos) - logit(neg) (the log-odds over the two labels);
`query-likelihood` gives the mean log-probability of the query given the document.
Pairwise: `ab` gives P(A) over {A, B}; with `both_orders` each pair is also asked swapped and
the two orders' log-odds are averaged (`combine_orders`), which cancels a constant position bias.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from adapt.data import Document, Query
from adapt.teacher.backends import Backend
from adapt.teacher.cache import Key, ScoreCache, content_hash
from adapt.teacher.engine import DEFAULT_BATCH, Call, engine_for, units
from adapt.teacher.templates import Template

Progress = Callable[[int], None]

# Scores are committed at least this often (seconds of scoring), so a Ctrl-C or a kill loses
# a few seconds of work at most, whatever the machine's rate.
COMMIT_SECONDS = 5.0


@dataclass
class PairScore:
    prob: float  # P(first > second), from the orders asked (combine_orders)
    prob_a_forward: float  # P(A) with the first document shown as A
    prob_a_backward: float | None  # P(A) with the second shown as A; None in one-order mode


def combine_orders(forward: float, backward: float) -> float:
    """P(first > second) from P(A) with the first shown as A (`forward`) and as B (`backward`).

    The mean of the two orders' log-odds, (logit(forward) - logit(backward)) / 2, through a
    sigmoid: a position bias adds a constant to both log-odds and cancels. Averaging the
    probabilities instead leaves a teacher that answers one position near-certainly at 0.5 and a
    sliver, however consistently it orders the pair (the 1.5B answers "B" to every prompt, and
    its fp32 log-odds still order 65% of Vaswani's pairs right; docs/benchmarks.md).

    >>> round(combine_orders(0.8, 0.2), 3), round(combine_orders(1e-5, 1e-7), 3)
    (0.8, 0.909)
    """
    tiny = 1e-15  # P(A) is kept in float64: this clip only guards exact 0 and 1
    f, b = np.clip([forward, backward], tiny, 1 - tiny)
    log_odds = (np.log(f / (1 - f)) - np.log(b / (1 - b))) / 2
    return float(1.0 / (1.0 + np.exp(-log_odds)))


class TeacherScorer:
    def __init__(
        self,
        backend: Backend,
        cache: ScoreCache,
        pointwise: Template | None,
        pairwise: Template | None = None,
        both_orders: bool = True,
        commit_seconds: float = COMMIT_SECONDS,
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.pointwise = pointwise
        self.pairwise = pairwise
        self.both_orders = both_orders
        self.commit_seconds = commit_seconds
        self.engine = engine_for(backend)  # where the prompts run: here, or a Ray actor pool
        self.computed = 0  # prompts scored by the model in this process
        self.reused = 0  # prompts answered from the cache
        tokenizer = backend.tokenizer
        self.pointwise_labels = (
            pointwise.resolve_labels(tokenizer, pointwise.name) if pointwise else []
        )
        self.pairwise_labels = pairwise.resolve_labels(tokenizer, pairwise.name) if pairwise else []

    def pair_prompts(self, pairs: int) -> int:
        """Prompts that scoring `pairs` pairs asks: one per order."""
        return pairs * (2 if self.both_orders else 1)

    def truncate(self, text: str, limit: int) -> str:
        tokenizer = self.backend.tokenizer
        ids = tokenizer.encode(text, add_special_tokens=False)
        return text if len(ids) <= limit else tokenizer.decode(ids[:limit])

    def wrap(self, template: Template, prompt: str) -> str:
        if not template.chat:
            return prompt
        messages = [{"role": "user", "content": prompt}]
        return self.backend.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )

    def _cached(
        self,
        keys: list[Key],
        call: Callable[[list[int]], Call],
        finish: Callable[[np.ndarray], np.ndarray],
        lengths: list[int],
        progress: Progress | None,
        groups: list[str] | None = None,
    ) -> np.ndarray:
        """Look every key up; score only the misses, in units cut by length (`units`), and
        commit what the engine returns as it arrives: the first unit at once, then every
        `commit_seconds`, and what is held when the loop stops (Ctrl-C, an error).

        `call` makes a unit's backend call, `finish` turns its result into scores; `groups`
        (prompt prefixes) keeps the rows that share one in a unit, where the backend can encode
        it once."""
        found = self.cache.get_many(keys)
        scores = np.array([found.get(k, np.nan) for k in keys], dtype=np.float64)
        if progress:
            progress(len(found))
        missing = [i for i, k in enumerate(keys) if k not in found]
        self.reused += len(keys) - len(missing)
        plan = units(missing, lengths, getattr(self.backend, "unit_size", DEFAULT_BATCH), groups)
        held: list[tuple[Key, float]] = []
        committed_at: float | None = None
        try:
            for number, result in self.engine.run_calls(call(rows) for rows in plan):
                rows = plan[number]
                values = finish(result)
                scores[rows] = values
                held += [(keys[r], v) for r, v in zip(rows, values)]
                if progress:
                    progress(len(rows))
                now = time.perf_counter()
                if committed_at is None or now - committed_at >= self.commit_seconds:
                    self._commit(held)
                    held, committed_at = [], now
        finally:
            self._commit(held)
        return scores

    def _commit(self, items: list[tuple[Key, float]]) -> None:
        if items:
            self.cache.put_many(items)
            self.computed += len(items)

    def score_pointwise(
        self, items: list[tuple[Query, Document]], progress: Progress | None = None
    ) -> np.ndarray:
        t = self.pointwise
        if t is None:
            raise ValueError("no pointwise template configured")
        queries = [self.truncate(q.text, t.max_query_tokens) for q, _ in items]
        docs = [self.truncate(d.full_text, t.max_document_tokens) for _, d in items]
        keys = [
            (self.backend.fingerprint, t.digest, q.id, d.id, "", content_hash(q.text, d.full_text))
            for q, d in items
        ]
        lengths = [len(q) + len(d) for q, d in zip(queries, docs)]

        if t.mode == "query-likelihood":

            def likelihood(rows: list[int]) -> Call:
                prompts = [self.wrap(t, t.template.format(document=docs[r])) for r in rows]
                continuations = [t.continuation.format(query=queries[r]) for r in rows]
                return Call("continuation_logprobs", prompts, (continuations,))

            shared = getattr(self.backend, "share_prefixes", False) and not self.backend.is_seq2seq
            return self._cached(
                keys, likelihood, np.asarray, lengths, progress, docs if shared else None
            )

        def labels(rows: list[int]) -> Call:
            prompts = [
                self.wrap(t, t.template.format(query=queries[r], document=docs[r])) for r in rows
            ]
            return Call("label_logits", prompts, (self.pointwise_labels,))

        def log_odds(logits: np.ndarray) -> np.ndarray:
            return logits[:, 0] - logits[:, 1]

        return self._cached(keys, labels, log_odds, lengths, progress)

    def score_pairs(
        self, items: list[tuple[Query, Document, Document]], progress: Progress | None = None
    ) -> list[PairScore]:
        """P(first > second | query) for each item, from the A/B prompt."""
        if self.pairwise is None:
            raise ValueError("no pairwise template configured")
        t = self.pairwise
        asked: list[tuple[Query, Document, Document]] = list(items)
        if self.both_orders:
            asked += [(q, b, a) for q, a, b in items]
        truncated: dict[tuple[str, int], str] = {}

        def cut(full: str, limit: int) -> str:
            if (full, limit) not in truncated:
                truncated[full, limit] = self.truncate(full, limit)
            return truncated[full, limit]

        bodies = [
            (
                cut(q.text, t.max_query_tokens),
                cut(a.full_text, t.max_document_tokens),
                cut(b.full_text, t.max_document_tokens),
            )
            for q, a, b in asked
        ]
        keys = [
            (
                self.backend.fingerprint,
                t.digest,
                q.id,
                a.id,
                b.id,
                content_hash(q.text, a.full_text, b.full_text),
            )
            for q, a, b in asked
        ]

        def call(rows: list[int]) -> Call:
            prompts = []
            for r in rows:
                query, a, b = bodies[r]
                body = t.template.format(query=query, document_a=a, document_b=b)
                prompts.append(self.wrap(t, body))
            return Call("label_logits", prompts, (self.pairwise_labels,))

        def prob_a(logits: np.ndarray) -> np.ndarray:
            # float64, so a P(A) near 0 or 1 keeps its log-odds for combine_orders
            margin = logits[:, 0].astype(np.float64) - logits[:, 1]
            return 1.0 / (1.0 + np.exp(-margin))

        lengths = [sum(map(len, body)) for body in bodies]
        p_a = self._cached(keys, call, prob_a, lengths, progress)
        n = len(items)
        results = []
        for i in range(n):
            if self.both_orders:
                forward, backward = float(p_a[i]), float(p_a[n + i])
                results.append(PairScore(combine_orders(forward, backward), forward, backward))
            else:
                results.append(PairScore(float(p_a[i]), float(p_a[i]), None))
        return results


def score_candidates(
    scorer: "TeacherScorer",
    rows: list[dict],
    queries: dict[str, Query],
    docs: dict[str, Document],
    progress: Progress | None = None,
) -> list[dict]:
    """The pointwise stage: candidate rows ({query_id, hits}) scored by the teacher through the
    cache and re-sorted best first, as `pointwise.jsonl` records. `adapt run`, its shard runs,
    `adapt score` and the bench's teacher reranking all call this."""
    items = [(queries[r["query_id"]], docs[hit[0]]) for r in rows for hit in r["hits"]]
    return teacher_sorted(rows, scorer.score_pointwise(items, progress))


def teacher_sorted(rows: list[dict], scores: np.ndarray) -> list[dict]:
    """Candidate rows ({query_id, hits: [[doc_id, ...], ...]}) with the flat `scores` of their
    hits, re-sorted best first by the teacher: the `pointwise.jsonl` record."""
    records, cursor = [], 0
    for row in rows:
        ids = [hit[0] for hit in row["hits"]]
        ranked = sorted(zip(ids, scores[cursor : cursor + len(ids)]), key=lambda p: -p[1])
        records.append(
            {
                "query_id": row["query_id"],
                "docs": [d for d, _ in ranked],
                "scores": [float(v) for _, v in ranked],
            }
        )
        cursor += len(ids)
    return records


def pair_diagnostics(scores: list[PairScore]) -> dict[str, float]:
    """Position bias and consistency of the A/B teacher, and its disagreement with the target
    order the pairs were sampled from (the first document is always the target's winner)."""
    if not scores:
        return {}
    forward = np.array([s.prob_a_forward for s in scores])
    result = {
        "pairs": len(scores),
        "disagreement_with_targets": float(np.mean([s.prob < 0.5 for s in scores])),
    }
    backward = [s.prob_a_backward for s in scores if s.prob_a_backward is not None]
    answers_a = list(forward > 0.5) + [b > 0.5 for b in backward]
    result["share_answer_a"] = float(np.mean(answers_a))
    if backward:
        back = np.array(backward)
        result["order_agreement"] = float(np.mean((forward > 0.5) == (back < 0.5)))
    return result
