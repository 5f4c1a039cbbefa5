"""`adapt eval` through its real entry point: what the run covers, warnings, one-line refusals."""

import re

import pytest

from tests.conftest import run_cli

QRELS = "query-id\tcorpus-id\tscore\nq1\ta\t1\nq2\tb\t1\nq3\tc\t1\n"
# q1 finds a first, q2 finds b second, q3 is not in the run: nDCG@10 1 and 1/log2(3) = 0.63093.
RUN = "q1 Q0 a 1 9.0 t\nq1 Q0 x 2 8.0 t\nq2 Q0 y 1 9.0 t\nq2 Q0 b 2 8.0 t\n"


def adapt_eval(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `adapt eval ARGS`, run in this process."""
    done = run_cli(monkeypatch, capsys, "eval", *args)
    return done.returncode, done.stdout, done.stderr


def metrics(stdout: str) -> dict[str, float]:
    return {m: float(v) for m, v in re.findall(r"(\w+@\d+)\W+([\d.]+)", stdout)}


def write(path, text: str):
    path.write_text(text)
    return path


def test_mean_over_covered_queries_and_complete(tmp_path, monkeypatch, capsys):
    run, qrels = write(tmp_path / "run.trec", RUN), write(tmp_path / "q.tsv", QRELS)
    code, out, err = adapt_eval(monkeypatch, capsys, run, "--qrels", qrels)
    assert code == 0 and "covers 2 of 3 judged queries" in err and "no judgments" not in err
    # (1 + 0.63093) / 2; MRR (1 + 1/2) / 2; both relevant documents found.
    assert metrics(out) == {"ndcg@10": 81.55, "recall@100": 100.0, "mrr@10": 75.0}
    code, out, err = adapt_eval(monkeypatch, capsys, run, "--qrels", qrels, "--complete")
    assert code == 0 and "covers 2 of 3 judged queries; the other ones count as 0" in err
    # The same sums over 3 queries: 1.63093 / 3, 2 / 3, 1.5 / 3.
    assert metrics(out) == {"ndcg@10": 54.36, "recall@100": 66.67, "mrr@10": 50.0}


def test_a_run_with_unjudged_queries_says_how_many(tmp_path, monkeypatch, capsys):
    run = write(tmp_path / "run.trec", RUN + "q7 Q0 a 1 9.0 t\nq8 Q0 a 1 9.0 t\n")
    code, _, err = adapt_eval(monkeypatch, capsys, run, "--qrels", write(tmp_path / "q", QRELS))
    assert code == 0 and "warning: 2 of the run's 4 queries have no judgments" in err


def test_ignore_identical_ids_flag(tmp_path, monkeypatch, capsys):
    run = write(tmp_path / "run.trec", "q1 Q0 q1 1 9.0 t\nq1 Q0 a 2 8.0 t\n")
    qrels = write(tmp_path / "q.tsv", "q1\ta\t1\n")
    assert metrics(adapt_eval(monkeypatch, capsys, run, "--qrels", qrels)[1])["mrr@10"] == 50.0
    flagged = adapt_eval(monkeypatch, capsys, run, "--qrels", qrels, "--ignore-identical-ids")
    assert metrics(flagged[1])["mrr@10"] == 100.0


def test_a_run_of_ten_hits_warns_that_recall_at_100_is_recall_at_10(tmp_path, monkeypatch, capsys):
    # Like `adapt search --k 10`: a at rank 10, b beyond the run. Recall 1 of 2 = 50.
    hits = [f"d{i}" for i in range(1, 10)] + ["a"]
    run = write(
        tmp_path / "run.trec", "".join(f"q1 Q0 {d} {r} {20 - r} t\n" for r, d in enumerate(hits, 1))
    )
    qrels = write(tmp_path / "q.tsv", "q1\ta\t1\nq1\tb\t1\n")
    code, out, err = adapt_eval(monkeypatch, capsys, run, "--qrels", qrels)
    assert code == 0
    assert "warning: the run has at most 10 hits per query: recall@100 is recall@10\n" in err
    assert metrics(out)["recall@100"] == 50.0 and metrics(out)["mrr@10"] == 10.0


def test_a_run_covering_no_judged_query_is_refused(tmp_path, monkeypatch, capsys):
    run = write(tmp_path / "run.trec", "q1 Q0 a 1 9.0 t\nq2 Q0 b 1 9.0 t\n")
    qrels = write(tmp_path / "q.tsv", "1\ta\t1\n2\tb\t1\n")
    code, out, err = adapt_eval(monkeypatch, capsys, run, "--qrels", qrels)
    assert code == 2 and out == ""
    assert err == (
        f"adapt: error: {run}: covers none of the 2 judged queries; "
        "its ids look like 'q1', the qrels' like '1'\n"
    )


def test_a_beir_folder_is_read_as_its_test_split(tmp_path, monkeypatch, capsys):
    (tmp_path / "beir" / "qrels").mkdir(parents=True)
    write(tmp_path / "beir" / "qrels" / "test.tsv", QRELS)
    write(tmp_path / "beir" / "qrels" / "dev.tsv", "q3\tc\t1\n")
    run = write(tmp_path / "run.trec", RUN)
    code, out, err = adapt_eval(monkeypatch, capsys, run, "--qrels", tmp_path / "beir")
    assert code == 0 and f"qrels: {tmp_path / 'beir' / 'qrels' / 'test.tsv'}" in err
    assert "covers 2 of 3" in err and metrics(out)["mrr@10"] == 75.0


def test_a_beir_folder_without_test_split_lists_its_splits(tmp_path, monkeypatch, capsys):
    (tmp_path / "beir" / "qrels").mkdir(parents=True)
    for split in ("train", "dev"):
        write(tmp_path / "beir" / "qrels" / f"{split}.tsv", QRELS)
    run = write(tmp_path / "run.trec", RUN)
    code, _, err = adapt_eval(monkeypatch, capsys, run, "--qrels", tmp_path / "beir")
    assert code == 2 and len(err.splitlines()) == 1
    assert "no test.tsv; splits present: dev, train" in err


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "run.trec",
            "q1 Q0 a 1 9.0 t\nq1 Q0 b 2 high t\n",
            "run.trec:2: score must be a number, got 'high'",
        ),
        (
            "run.jsonl",
            '{"query_id": "q1", "hits": [["a", "nan"]]}\n',
            "run.jsonl:1: score must be a number, got 'nan'",
        ),
    ],
)
def test_a_non_numeric_score_is_a_one_line_error(
    tmp_path, monkeypatch, capsys, name, text, expected
):
    run, qrels = write(tmp_path / name, text), write(tmp_path / "q.tsv", QRELS)
    code, out, err = adapt_eval(monkeypatch, capsys, run, "--qrels", qrels)
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and expected in err
