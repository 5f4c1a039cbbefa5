"""The command line as a user runs it (its entry point, in this process): one-line errors with
exit code 2, and the stage commands."""

import json
import math
import subprocess

import pytest
import torch


@pytest.mark.parametrize(
    ("corpus_text", "expected"),
    [
        (
            '{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n',
            "corpus.jsonl:2: duplicate id 'a'",
        ),
        ('{"_id": "a", "text": "x"}\n{oops\n', "corpus.jsonl:2: invalid JSON"),
    ],
)
def test_bad_corpus_fails_in_one_line_with_code_2(cli, tmp_path, corpus_text, expected):
    (tmp_path / "corpus.jsonl").write_text(corpus_text)
    (tmp_path / "q.txt").write_text("a query\n")
    result = cli(
        "run",
        "--corpus",
        str(tmp_path / "corpus.jsonl"),
        "--queries",
        str(tmp_path / "q.txt"),
        "--run-dir",
        str(tmp_path / "run"),
    )
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # validated before anything was written


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        (["--teacher", "gpt-5"], "unknown teacher 'gpt-5': not a built-in"),
        (["--student", "nosuch"], "unknown student 'nosuch': not a built-in"),
        (["--top-k", "0"], "distill.top_k = 0: it must be at least 1"),
        (["--generate-queries", "5"], "--generate-queries is for runs without queries"),
        (["--pointwise-prompt", "no-such-template"], "no such template"),
    ],
)
def test_mistakes_are_refused_before_anything_is_written(
    cli, tiny_beir, tmp_path, mistake, expected
):
    result = cli(
        "run",
        "--corpus",
        str(tiny_beir),
        "--queries",
        str(tiny_beir),
        "--run-dir",
        str(tmp_path / "run"),
        *mistake,
    )
    _one_line_error(result, expected)
    assert not (tmp_path / "run").exists()  # so nothing blocks the corrected command


def test_unknown_recipe_key(cli, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text("[distill]\nlearning_rate = 1\n")
    result = cli("run", "--recipe", str(recipe))
    assert result.returncode == 2 and "unknown setting 'distill.learning_rate'" in result.stderr


def test_listing_commands(cli):
    assert "query-likelihood" in cli("prompts", "list").stdout
    assert "qwen2.5-coder-0.5b" in cli("teachers").stdout
    assert "{document_a}" in cli("prompts", "show", "ab").stdout


def test_index_search_and_eval(cli, tiny_beir, tiny_colbert, tmp_path):
    index = tmp_path / "index.pt"
    built = cli(
        "index",
        "--checkpoint",
        str(tiny_colbert),
        "--corpus",
        str(tiny_beir),
        "--out",
        str(index),
        "--doc-maxlen",
        "16",
    )
    assert built.returncode == 0, built.stderr

    def search(*args: str, cwd=None):
        found = ["--checkpoint", str(tiny_colbert), "--index", str(index)]
        return cli("search", *found, *args, cwd=cwd)

    one = search("--query", "sort a list", "--k", "8")
    # The index remembers its corpus: each hit shows its text, not only its id.
    assert one.returncode == 0 and "sort a list" in one.stdout
    assert "a thread can lock memory" in " ".join(one.stdout.split())
    unnamed = search("--queries", str(tiny_beir / "queries.jsonl"), cwd=tmp_path)
    written = tmp_path / "run-queries.trec"
    assert unnamed.returncode == 0 and written.is_file()
    assert f"to{written}" in "".join(unnamed.stderr.split())  # says where it wrote
    run_file = tmp_path / "run.trec"
    batch = search("--queries", str(tiny_beir), "--out", str(run_file))
    assert batch.returncode == 0, batch.stderr
    assert len(run_file.read_text().splitlines()) == 4 * 8
    evaluated = cli("eval", str(run_file), "--qrels", str(tiny_beir / "qrels" / "test.tsv"))
    assert evaluated.returncode == 0 and "ndcg@10" in evaluated.stdout
    # The same questions as plain text, in another order: ids q1, q2, ... (the qrels' numbering)
    # named the wrong questions and were scored; their line ids match no judged query.
    from tests.conftest import QUERIES

    (tmp_path / "questions.txt").write_text("".join(f"{t}\n" for _, t in reversed(QUERIES)))
    plain = tmp_path / "plain.trec"
    searched = search("--queries", str(tmp_path / "questions.txt"), "--out", str(plain))
    assert searched.returncode == 0 and plain.read_text().startswith("line-1 ")
    refused = cli("eval", str(plain), "--qrels", str(tiny_beir))
    assert refused.returncode == 2 and "covers none of the 4 judged queries" in refused.stderr


def test_an_index_is_searched_only_with_the_checkpoint_that_built_it(
    cli, tiny_beir, tiny_colbert, tmp_path
):
    from adapt.retriever.colbert import ColBERT

    index = tmp_path / "index.pt"
    built = cli(
        "index", "--checkpoint", str(tiny_colbert), "--corpus", str(tiny_beir), "--out", str(index)
    )
    assert built.returncode == 0, built.stderr
    other = ColBERT.load(str(tiny_colbert))
    with torch.no_grad():
        next(other.parameters()).add_(0.01)
    other.save(tmp_path / "other")
    searched = cli(
        "search", "--checkpoint", str(tmp_path / "other"), "--index", str(index), "--query", "x"
    )
    assert searched.returncode == 2
    assert f"{index} was encoded by {tiny_colbert}, not by" in " ".join(searched.stderr.split())


def test_index_refuses_a_plain_encoder(cli, tiny_beir, tmp_path):
    result = cli(
        "index",
        "--checkpoint",
        "minilm",
        "--corpus",
        str(tiny_beir),
        "--out",
        str(tmp_path / "i.pt"),
    )
    assert result.returncode == 2 and "not a ColBERT checkpoint" in " ".join(result.stderr.split())


def test_train_command_on_stored_targets(cli, tiny_beir, tiny_bert, tmp_path):
    targets = tmp_path / "targets.jsonl"
    targets.write_text('{"query_id": "q3", "docs": ["d4", "d1", "d2"], "scores": [2.0, 0.5, -1]}\n')
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        '{"query_id": "q3", "group": ["d4", "d1", "d2"], '
        '"pairs": [["d4", "d1", 0.9], ["d1", "d2", 0.7]]}\n'
    )
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        "[student]\ndim = 16\nquery_maxlen = 12\ndoc_maxlen = 16\n"
        "[distill]\nbatch_size = 1\nlr = 0.001\n"
    )
    result = cli(
        "train",
        "--checkpoint",
        str(tiny_bert),
        "--targets",
        str(targets),
        "--pairs",
        str(pairs),
        "--corpus",
        str(tiny_beir),
        "--queries",
        str(tiny_beir),
        "--out",
        str(tmp_path / "ckpt"),
        "--recipe",
        str(recipe),
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ckpt" / "model.safetensors").is_file()
    assert "step 1: loss" in result.stderr


def _one_line_error(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert expected in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_missing_model_paths(cli, tiny_beir, tmp_path):
    index = tmp_path / "i.pt"
    _one_line_error(
        cli(
            "index",
            "--checkpoint",
            str(tmp_path / "nope"),
            "--corpus",
            str(tiny_beir),
            "--out",
            str(index),
        ),
        "model path not found",
    )
    _one_line_error(
        cli(
            "index", "--checkpoint", "not-a-model", "--corpus", str(tiny_beir), "--out", str(index)
        ),
        "unknown student 'not-a-model'",
    )
    assert not index.exists()


def test_corrupt_checkpoint(cli, tiny_bert, tiny_beir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "vocab.txt", "tokenizer_config.json"):
        (broken / name).write_bytes((tiny_bert / name).read_bytes())
    (broken / "model.safetensors").write_bytes((tiny_bert / "model.safetensors").read_bytes()[:500])
    _one_line_error(
        cli(
            "index",
            "--checkpoint",
            str(broken),
            "--corpus",
            str(tiny_beir),
            "--out",
            str(tmp_path / "i.pt"),
        ),
        "corrupt or truncated weights",
    )


def test_truncated_gguf_teacher(cli, tiny_beir, tmp_path):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 64)
    candidates = tmp_path / "c.jsonl"
    candidates.write_text('{"query_id": "q1", "hits": [["d1", 1.0]]}\n')
    result = cli(
        "score",
        "--candidates",
        str(candidates),
        "--corpus",
        str(tiny_beir),
        "--queries",
        str(tiny_beir),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--teacher",
        str(gguf),
        "--cache",
        str(tmp_path / "c.sqlite"),
    )
    _one_line_error(result, "not a loadable GGUF model")
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize(
    ("second_row", "expected"),
    [
        ('{"query_id": "q2", "hits": [["d2", 1.0], ["gone", 0.5]]}', ":2: document 'gone' is not"),
        ('{"query_id": "q9", "hits": [["d2", 1.0]]}', ":2: query 'q9' is not in the queries"),
    ],
)
def test_score_names_the_candidates_line_with_an_unknown_id(
    cli, tiny_beir, tmp_path, second_row, expected
):
    candidates = tmp_path / "c.jsonl"
    candidates.write_text('{"query_id": "q1", "hits": [["d1", 1.0]]}\n' + second_row + "\n")
    result = cli(
        *("score", "--candidates", str(candidates), "--corpus", str(tiny_beir)),
        *("--queries", str(tiny_beir), "--out", str(tmp_path / "o.jsonl")),
        *("--teacher", "smollm2-135m", "--cache", str(tmp_path / "c.sqlite")),
    )
    _one_line_error(result, f"{candidates}{expected}")


def test_query_split_needs_a_beir_folder(cli, tmp_path):
    (tmp_path / "q.txt").write_text("a query\n")
    (tmp_path / "c.tsv").write_text("d1\ttext\nd2\tmore text\n")
    _one_line_error(
        cli(
            "run",
            "--corpus",
            str(tmp_path / "c.tsv"),
            "--queries",
            str(tmp_path / "q.txt"),
            "--queries-split",
            "train",
        ),
        "needs a BEIR folder",
    )


def _teacher_eval(cli, tiny_beir, tiny_bert, tmp_path, *options: str):
    """`adapt teacher-eval` of the tiny student and SmolLM2 on the tiny set; JSON in eval.json."""
    return cli(
        *("teacher-eval", "--data", str(tiny_beir), "--teacher", "smollm2-135m"),
        *("--student", str(tiny_bert), "--dim", "16", "--max-document-tokens", "24"),
        *("--out", str(tmp_path / "eval.json"), "--cache", str(tmp_path / "c.sqlite")),
        *options,
    )


def test_teacher_eval_reports_every_combination(cli, tiny_beir, tiny_bert, tmp_path):
    result = _teacher_eval(
        cli,
        tiny_beir,
        tiny_bert,
        tmp_path,
        *("--prompt", "query-likelihood", "--prompt", "ab"),
        # The whole corpus: each query's one relevant passage is a candidate.
        *("--top-k", "8", "--sample", "1", "--pairs-per-query", "2"),
        *("--dtype", "float32"),  # bf16 scores could tie, and a tie is half a rank in AUC
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "eval.json").read_text())["results"]
    pointwise, pairwise = rows
    assert pointwise["template"] == "query-likelihood" and pointwise["auc_queries"] == 1
    # One relevant passage among 8 at rank r: AUC (8 - r) / 7 and nDCG@10 1 / log2(r + 1), from
    # separate code (pair counts, pytrec_eval), for the teacher's order and the student's.
    for auc, ndcg in [("auc", "ndcg@10_reranked"), ("auc_student", "ndcg@10_student")]:
        rank = 8 - 7 * pointwise[auc]
        assert pointwise[ndcg] == pytest.approx(1 / math.log2(rank + 1)), (auc, rank)
    assert pairwise["template"] == "ab" and pairwise["pairs"] == 2  # 1 relevant x 7 others, cut
    assert 0.0 <= pairwise["share_answer_a"] <= 1.0
    assert pointwise["max_document_tokens"] == pairwise["max_document_tokens"] == 24
    # Piped, the table keeps every digit of the JSON's numbers.
    assert f"{pointwise['auc']:.3f} ({pointwise['auc_student']:.3f})" in result.stdout


def test_teacher_eval_samples_only_the_queries_split(cli, tiny_beir, tiny_bert, tmp_path):
    """A teacher chosen on one half never reads the other: q2 and q3 hash to half-1."""
    result = _teacher_eval(
        cli,
        tiny_beir,
        tiny_bert,
        tmp_path,
        *("--queries-split", "half-1", "--prompt", "query-likelihood", "--top-k", "2"),
    )
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "eval.json").read_text())
    assert record["queries_split"] == "half-1" and record["queries"] == ["q2", "q3"]


def test_teacher_eval_refuses_a_bad_dtype_before_loading_the_student(cli, tiny_beir, tmp_path):
    result = cli(
        "teacher-eval",
        "--data",
        str(tiny_beir),
        "--teacher",
        "smollm2-135m",
        "--prompt",
        "yes-no",
        "--dtype",
        "bf16",
        "--student",
        str(tmp_path / "no-such-student"),  # loading it would fail with another message
    )
    _one_line_error(
        result, "unknown teacher dtype 'bf16' (known: auto, float32, bfloat16, float16)"
    )


def test_a_corpus_of_one_document_is_refused_before_any_work(cli, tmp_path):
    (tmp_path / "c.tsv").write_text("d1\tthe only passage\n")
    (tmp_path / "q.txt").write_text("a query\n")
    result = cli(
        "run",
        "--corpus",
        str(tmp_path / "c.tsv"),
        "--queries",
        str(tmp_path / "q.txt"),
        "--run-dir",
        str(tmp_path / "run"),
    )
    _one_line_error(result, "at least 2 documents are needed")
    assert not (tmp_path / "run").exists()


def test_a_one_megabyte_document_is_read_and_cut_to_the_student_length(tiny_colbert, tmp_path):
    from adapt.data import read_corpus
    from adapt.retriever.colbert import ColBERT
    from tests.conftest import WORDS

    huge = " ".join(WORDS[i % len(WORDS)] for i in range(200_000))
    assert len(huge) > 1_000_000
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps({"_id": "big", "text": huge}) + "\n")
    (doc,) = read_corpus(path)
    embeddings, mask = ColBERT.load(str(tiny_colbert)).encode_docs([doc.full_text], 16)
    assert embeddings.shape[1] <= 16 and mask.any()
