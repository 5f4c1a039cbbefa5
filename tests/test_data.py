"""Readers accept the formats users have and reject malformed input with file:line errors."""

import json

import pytest

from adapt.data import check_qrels, read_corpus, read_qrels, read_queries
from adapt.errors import InputError


def test_beir_folder_reads_corpus_queries_and_split(tiny_beir):
    docs = read_corpus(tiny_beir)
    assert [d.id for d in docs][:2] == ["d1", "d2"]
    assert [q.id for q in read_queries(tiny_beir, "train")] == ["q1", "q2"]


def test_tsv_corpus_with_and_without_title(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("a\tTitle\tbody text\nb\tplain text\n")
    docs = read_corpus(path)
    assert docs[0].full_text == "Title. body text"
    assert docs[1].full_text == "plain text"


def test_plain_text_queries_get_ids(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("first query\n\nsecond query\n")
    assert [(q.id, q.text) for q in read_queries(path)] == [
        ("line-1", "first query"),
        ("line-3", "second query"),
    ]


def test_bom_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"_id": "a", "text": "x"}).encode() + b"\r\n")
    assert read_corpus(path)[0].id == "a"


@pytest.mark.parametrize(
    ("content", "message", "line"),
    [
        (b'{"_id": "a", "text": "x"}\n{not json\n', "invalid JSON", 2),
        (b'{"_id": "a"}\n', "missing string field 'text'", 1),
        (b'{"text": "x"}\n', "missing string field '_id'", 1),
        (b'{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n', "duplicate id 'a'", 2),
        (b"", "file is empty", None),
        (b'{"_id": "a", "text": "x"}\n{"_id": "b", "text": "\xff"}\n', "not UTF-8", 2),
        (b'["a", "b"]\n', "expected a JSON object", 1),
    ],
)
def test_malformed_corpus_names_file_and_line(tmp_path, content, message, line):
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        read_corpus(path)
    assert message in str(caught.value)
    assert caught.value.line == line
    assert str(path) in str(caught.value)


def test_tsv_with_wrong_field_count(tmp_path):
    path = tmp_path / "q.tsv"
    path.write_text("q1\tok\nq2\n")
    with pytest.raises(InputError, match=r"q.tsv:2: expected id<TAB>text"):
        read_queries(path)


def test_qrels_beir_and_trec_formats(tmp_path):
    beir = tmp_path / "a.tsv"
    beir.write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\n")
    trec = tmp_path / "b.txt"
    trec.write_text("q1 0 d1 2\n")
    assert read_qrels(beir) == read_qrels(trec) == {"q1": {"d1": 2}}


def test_qrels_with_non_integer_grade(tmp_path):
    path = tmp_path / "q.tsv"
    path.write_text("q1\td1\thigh\n")
    with pytest.raises(InputError, match="q.tsv:1: relevance must be an integer"):
        read_qrels(path)


def test_qrels_leftovers_are_left_out_with_one_warning(tiny_beir, capsys):
    qrels = {"q1": {"d1": 1, "gone": 1}, "q2": {"gone": 2}, "q9": {"d1": 1}, "q8": {"d2": 1}}
    path = tiny_beir / "qrels/leftovers.tsv"
    kept = check_qrels(path, qrels, read_queries(tiny_beir), read_corpus(tiny_beir))
    assert kept == {"q1": {"d1": 1}}
    warning = capsys.readouterr().err.strip().splitlines()
    assert warning == [
        f"warning: {path}: 2 judged queries are not in the queries file and 2 judgments name "
        "documents not in the corpus; they are left out"
    ]


def test_qrels_judging_nothing_known_are_refused(tiny_beir):
    qrels = {"q1": {"nope": 1}, "q9": {"d1": 1}}
    with pytest.raises(InputError, match="judges no query of the queries file with a document"):
        check_qrels(
            tiny_beir / "qrels/test.tsv", qrels, read_queries(tiny_beir), read_corpus(tiny_beir)
        )


def test_evaluation_uses_only_the_known_judgments(tiny_beir):
    from adapt.config import load_config
    from adapt.inputs import load_inputs

    qrels = tiny_beir / "qrels/test.tsv"
    qrels.write_text(qrels.read_text() + "q1\tgone\t1\nq9\td1\t1\n")
    config = load_config(
        None,
        {"data.corpus": str(tiny_beir), "data.queries": str(tiny_beir), "data.qrels": str(qrels)},
    )
    inputs = load_inputs(config)
    assert inputs.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d4": 1}, "q4": {"d5": 1}}


def test_halves_adapt_on_one_and_evaluate_on_the_other(tiny_beir):
    """A collection with one set of qrels: the qrels judge both halves, and that is no error."""
    from adapt.config import load_config
    from adapt.data import query_half
    from adapt.inputs import load_inputs

    config = load_config(
        None,
        {
            "data.corpus": str(tiny_beir),
            "data.queries": str(tiny_beir),
            "data.queries_split": "half-1",
            "data.eval_split": "half-2",
            "data.qrels": str(tiny_beir / "qrels" / "test.tsv"),
        },
    )
    inputs = load_inputs(config)
    assert inputs.queries and inputs.eval_queries
    assert {query_half(q.id) for q in inputs.queries} == {"half-1"}
    assert {query_half(q.id) for q in inputs.eval_queries} == {"half-2"}
    # Only the evaluated half is judged: the other would count as unretrieved, scoring 0.
    assert set(inputs.qrels) == {q.id for q in inputs.eval_queries}
