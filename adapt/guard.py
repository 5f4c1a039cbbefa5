"""A label-free check of the adapted student against its start: which checkpoint to use when
there are no qrels to say.

The teacher writes one query for each of a seeded sample of passages that adaptation never
wrote a query for; each query's own passage is its one relevant document (the known-item test
behind InPars' and Promptagator's filters). Every iteration's student retrieves for these queries
from the whole corpus, and the nDCG@10 of the source passage, paired over queries, makes the
call: the adapted student is recommended only when it is significantly better than the start.

The distillation targets play no part in the check, so a student that learned to agree with a
teacher no better than itself is not rewarded for the agreement. How often the call matches the
labelled one is measured in docs/benchmarks.md (bench/guard.py).
"""

import random

from adapt.data import Document, Query
from adapt.evaluate import SIGNIFICANT, paired_test
from adapt.teacher.generation import source_of


def held_out_passages(docs: list[Document], n: int, seed: int, exclude: set[str]) -> list[Document]:
    """`n` passages (at most those left), seeded apart from the adaptation sample, none of them
    a source of an adaptation query."""
    pool = [d for d in docs if d.id not in exclude]
    return random.Random(f"check-{seed}").sample(pool, min(n, len(pool)))


def known_items(queries: list[Query]) -> dict[str, dict[str, int]]:
    """Qrels with each written query's source passage as its one relevant document."""
    return {q.id: {source_of(q): 1} for q in queries}


def call(start: dict[str, float], adapted: dict[str, float]) -> dict:
    """The recommendation from per-query nDCG@10 of the start and the adapted student: the
    adapted one only when it is significantly better; the start when it is not (a tie costs
    nothing to keep the start) or when it is significantly worse."""
    test = paired_test(start, adapted)
    significant = test["p_value"] < SIGNIFICANT
    if significant and test["delta"] > 0:
        outcome = "better"
    elif significant:
        outcome = "worse"
    else:
        outcome = "no evidence either way"
    return {"outcome": outcome, "recommend": "adapted" if outcome == "better" else "start", **test}
