"""The labels teacher: judgments as teacher scores, and a clear refusal of unjudged queries."""

import pytest

from adapt.data import Document, Query
from adapt.errors import AdaptError, InputError
from adapt.teacher.labels import LabelsScorer, load_labels
from tests.conftest import labels_config


def _qrels(tmp_path, rows):
    path = tmp_path / "qrels.tsv"
    path.write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows)
    )
    return path


def test_a_candidate_scores_its_grade_and_an_unjudged_one_zero(tmp_path):
    qrels = load_labels(str(_qrels(tmp_path, [("q1", "a", 2), ("q1", "b", 1)])), [Query("q1", "x")])
    items = [(Query("q1", "x"), Document(d, "t")) for d in ("a", "b", "c")]
    assert LabelsScorer(qrels).score_pointwise(items).tolist() == [2.0, 1.0, 0.0]


def test_unjudged_adaptation_queries_are_refused_before_any_work(tmp_path):
    path = _qrels(tmp_path, [("q1", "a", 1)])
    with pytest.raises(
        InputError, match=r"judges no document for 1 of the 2 adaptation queries \(q2\)"
    ):
        load_labels(str(path), [Query("q1", "x"), Query("q2", "y")])


def test_the_labels_teacher_without_judgments_says_what_it_needs():
    with pytest.raises(AdaptError, match="data.labels"):
        load_labels("", [Query("q1", "x")])


def test_a_run_on_the_labels_teacher_scores_candidates_by_their_judgments(
    tiny_beir, tiny_bert, tmp_path
):
    """The whole loop runs on judgments: the pointwise record holds each candidate's grade,
    no model is loaded, and the report says why there is no label-free check."""
    from rich.console import Console

    from adapt import pipeline
    from adapt.io import read_json, read_jsonl

    run_dir = tmp_path / "run"
    config = labels_config(tiny_beir, tiny_bert, queries_split="train")
    summary = pipeline.run(config, run_dir, Console(quiet=True))
    rows = {
        r["query_id"]: dict(zip(r["docs"], r["scores"]))
        for r in read_jsonl(run_dir / "iter-1/pointwise.jsonl")
    }
    assert set(rows) == {"q1", "q2"}  # the train split's queries, judged by qrels/train.tsv
    for qid, gold in (("q1", "d1"), ("q2", "d2")):
        assert all(score == (1.0 if doc == gold else 0.0) for doc, score in rows[qid].items())
    assert "labels teacher writes no queries" in read_json(run_dir / "guard/check.json")["reason"]
    assert (run_dir / "iter-1/checkpoint").is_dir() and summary["iterations"]


def test_a_labels_run_whose_queries_are_not_all_judged_is_refused_before_any_work(
    tiny_beir, tiny_bert, tmp_path
):
    from rich.console import Console

    from adapt import pipeline

    config = labels_config(tiny_beir, tiny_bert, labels=str(tiny_beir / "qrels" / "train.tsv"))
    with pytest.raises(InputError, match=r"judges no document for 2 of the 4 adaptation queries"):
        pipeline.run(config, tmp_path / "run", Console(quiet=True))
    assert not (tmp_path / "run" / "iter-0").exists()


def test_the_labels_teacher_on_a_ray_cluster_is_refused_with_the_reason(tiny_beir, tiny_bert):
    from adapt.errors import AdaptError
    from adapt.inputs import load_inputs

    config = labels_config(tiny_beir, tiny_bert, queries_split="train")
    config.teacher.ray_address = "auto"
    with pytest.raises(AdaptError, match="no model to run on a cluster"):
        load_inputs(config)


def test_l_cl_trains_on_the_judged_positives_of_a_labels_run(tiny_beir, tiny_bert, tmp_path):
    """With judgments the paper's L_CL joins the loss: each targets row names its judged
    candidates, and every step's loss is lambda_kd L_KD + lambda_pair L_pair + lambda_cl L_CL."""
    from rich.console import Console

    from adapt import pipeline
    from adapt.io import read_jsonl

    config = labels_config(tiny_beir, tiny_bert, queries_split="train")
    config.distill.lambda_cl = 2.0
    run_dir = tmp_path / "run"
    pipeline.run(config, run_dir, Console(quiet=True))
    gold = {"q1": "d1", "q2": "d2"}  # the train split's judgments
    rows = read_jsonl(run_dir / "iter-1/targets.jsonl")
    assert {r["query_id"] for r in rows} == set(gold)
    for row in rows:
        assert row["positives"] == [d for d in row["docs"] if d == gold[row["query_id"]]]
    assert any(row["positives"] for row in rows)
    log = read_jsonl(run_dir / "iter-1/train-log.jsonl")
    d = config.distill
    for step in log:
        expected = d.lambda_kd * step["kd"] + d.lambda_pair * step["pair"] + 2.0 * step["cl"]
        assert step["cl"] > 0 and step["loss"] == pytest.approx(expected, rel=1e-5)


def test_l_cl_without_judgments_is_refused_before_any_work(tiny_beir, tiny_bert, tmp_path):
    from rich.console import Console

    from adapt import pipeline

    config = labels_config(tiny_beir, tiny_bert, queries_split="train")
    config.teacher.model = "smollm2-135m"
    config.distill.lambda_cl = 1.0
    with pytest.raises(AdaptError, match="only the labels teacher has"):
        pipeline.run(config, tmp_path / "run", Console(quiet=True))
    assert not (tmp_path / "run").exists()
