"""The labels teacher: each candidate scored by its judgment on the adaptation queries.

`teacher.model = "labels"` (with `teacher.labels`, the qrels that judge the adaptation queries)
runs the whole loop on a perfect teacher: targets, pairs, training, report and bench take its
scores as they take an LLM's. It serves users with a few hundred judged queries (the paper's
supervised setting), and it is the yardstick of every trainer change: how much of a perfect
target the student carries to queries it never saw (issue #35). A graded judgment scores its
grade; an unjudged candidate scores 0, as BEIR counts it.
"""

from pathlib import Path

import numpy as np

from adapt.data import Document, Qrels, Query, read_qrels
from adapt.errors import AdaptError, InputError

LABELS = "labels"  # the teacher's name in `teacher.model`


def is_labels(model: str) -> bool:
    return model == LABELS


def labels_path(data) -> str:
    """Where the adaptation queries' judgments are: `data.labels`, else the BEIR folder's qrels
    of the queries' split, else the evaluation qrels (classic sets judge every query in one
    file; their halves split the queries, not the file)."""
    if data.labels:
        return data.labels
    split = (data.queries_split or "").split(":")[0]
    folder = Path(data.queries)
    if split and split not in ("all", "half-1", "half-2") and folder.is_dir():
        return str(folder / "qrels" / f"{split}.tsv")
    return data.qrels or ""


def load_labels(path: str, queries: list[Query]) -> Qrels:
    """The judgments of the adaptation queries; every one of them must be judged (a query with
    no judgment would be taught that all its candidates are equally wrong)."""
    if not path:
        raise AdaptError(
            "the labels teacher needs the judgments of the adaptation queries: "
            "data.labels = QRELS (--labels on the command line)"
        )
    qrels = read_qrels(Path(path))
    unjudged = [q.id for q in queries if not qrels.get(q.id)]
    if unjudged:
        shown = ", ".join(unjudged[:5]) + (" ..." if len(unjudged) > 5 else "")
        raise InputError(
            path,
            f"judges no document for {len(unjudged)} of the {len(queries)} adaptation queries "
            f"({shown}): the labels teacher needs every adaptation query judged "
            "(choose the queries its qrels judge, e.g. --queries-split with that split's name)",
        )
    return qrels


class LabelsScorer:
    """The pointwise part of TeacherScorer's interface, answered from judgments: no model, no
    cache (a lookup is cheaper than a cache's), no prompts. Pair targets come from the
    pointwise targets (`from-pointwise`), as for any teacher without an A/B prompt.

    >>> scorer = LabelsScorer({"q": {"a": 2, "b": 0}})
    >>> scorer.score_pointwise([(Query("q", "x"), Document("a", "t")), (Query("q", "x"),
    ...     Document("c", "t"))]).tolist()
    [2.0, 0.0]
    """

    def __init__(self, qrels: Qrels) -> None:
        self.qrels = qrels
        self.computed = 0  # the report's and messages' counters, as TeacherScorer's
        self.reused = 0

    def score_pointwise(self, items: list[tuple[Query, Document]], progress=None) -> np.ndarray:
        scores = np.array(
            [float(self.qrels.get(q.id, {}).get(d.id, 0)) for q, d in items], dtype=np.float64
        )
        self.computed += len(items)
        if progress:
            progress(len(items))
        return scores

    def score_pairs(self, items, progress=None):
        raise AdaptError(
            "the labels teacher has no pairwise prompt: use teacher.pairwise_prompt = "
            '"from-pointwise" (pair targets from the judgments)'
        )
