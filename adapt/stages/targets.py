"""The targets stage: what the student is pulled toward (`iter-N/targets.jsonl`, each query's
candidates in target order): the teacher's scores, fused with the student's, BM25's and the
bi-encoder's as configured; with the labels teacher, each row also names its judged positives
(for L_CL). The maths is in adapt/distill/targets.py; this stage gathers the signals for it."""

import time

from adapt.config import Config
from adapt.distill.targets import Weights, build_targets, with_positives
from adapt.inputs import Inputs
from adapt.io import read_jsonl, write_jsonl
from adapt.stages.context import RunContext, record
from adapt.teacher.labels import is_labels


def fingerprint(config: Config) -> dict:
    d = config.distill
    labels = {"positives": "judged"} if is_labels(config.teacher.model) else {}
    return {
        "teacher": d.teacher_weight,
        "bm25": d.bm25_weight,
        "biencoder": [d.biencoder_weight, config.student.model, config.student.doc_maxlen],
        **labels,  # the labels teacher's rows carry their judged positives, for L_CL
    }


def targets(
    config: Config, inputs: Inputs, pointwise: list[dict], candidates: list[dict]
) -> list[dict]:
    """`targets.jsonl` rows from the pointwise stage's records and the candidates they score."""
    d = config.distill
    wanted = {r["query_id"]: r["docs"] for r in pointwise}
    bm25 = biencoder = None
    if d.bm25_weight > 0:
        from adapt.retriever.bm25 import bm25_scores

        bm25 = bm25_scores(inputs.docs, inputs.query_by_id, wanted)
    if d.biencoder_weight > 0:
        from adapt.retriever.dense import biencoder_scores

        s = config.student
        biencoder = biencoder_scores(
            s.model, s.doc_maxlen, inputs.query_by_id, inputs.doc_by_id, wanted
        )
    weights = Weights(d.teacher_weight, d.bm25_weight, d.biencoder_weight)
    rows = build_targets(pointwise, candidates, weights, bm25, biencoder)
    return with_positives(rows, pointwise) if is_labels(config.teacher.model) else rows


def step(run: RunContext, iteration: int, upstream: str) -> str:
    """`iter-N/targets.jsonl` from its pointwise scores and candidates in a run directory."""
    folder = run.folder(iteration)
    out = folder / "targets.jsonl"
    fp = record("targets", upstream, **fingerprint(run.config))
    if not run.done(out, fp):
        began = time.time()
        pointwise, rows = (read_jsonl(folder / f) for f in ("pointwise.jsonl", "candidates.jsonl"))
        write_jsonl(out, targets(run.config, run.inputs, pointwise, rows))
        run.complete(out, fp, f"iter-{iteration}/targets", began)
    return fp
