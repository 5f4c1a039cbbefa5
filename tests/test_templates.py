"""Templates load from files, declare their labels, and explain what is wrong with a bad one."""

from dataclasses import replace

import pytest
from transformers import BertTokenizerFast

from adapt.errors import InputError
from adapt.teacher.templates import available, load_template


def test_every_shipped_template_loads():
    names = set(available())
    assert {"yes-no", "ab", "query-likelihood", "yes-no-chat", "yes-no-flan"} <= names
    for name in names:
        assert load_template(name).digest


def _write(tmp_path, body: str):
    path = tmp_path / "t.toml"
    path.write_text(body)
    return path


def test_missing_query_placeholder(tmp_path):
    path = _write(
        tmp_path, 'mode = "yes-no"\nlabels = ["Yes", "No"]\ntemplate = "Doc: {document}"\n'
    )
    with pytest.raises(InputError, match=r"missing \{query\}"):
        load_template(str(path))


def test_unknown_placeholder(tmp_path):
    path = _write(
        tmp_path,
        'mode = "yes-no"\nlabels = ["Yes", "No"]\ntemplate = "{query} {document} {passage}"\n',
    )
    with pytest.raises(InputError, match=r"unknown \{passage\}"):
        load_template(str(path))


def test_pairwise_template_where_pointwise_is_needed():
    with pytest.raises(InputError, match="pointwise template is needed"):
        load_template("ab", "pointwise")


def test_unknown_mode_and_bad_toml(tmp_path):
    with pytest.raises(InputError, match="'mode' must be one of"):
        load_template(str(_write(tmp_path, 'mode = "listwise"\ntemplate = "x"\n')))
    with pytest.raises(InputError, match="invalid TOML"):
        load_template(str(_write(tmp_path, "mode = \n")))


def test_label_that_is_not_one_token(tiny_bert):
    tokenizer = BertTokenizerFast.from_pretrained(tiny_bert)
    template = load_template("yes-no-flan")
    with pytest.raises(InputError, match="must be exactly one token"):
        replace(template, labels=("why how", "no")).resolve_labels(tokenizer, "t")
    with pytest.raises(InputError, match="not in this teacher's vocabulary"):
        template.resolve_labels(tokenizer, "yes-no-flan")  # "yes" is not in the tiny vocabulary
    assert len(replace(template, labels=("why", "how")).resolve_labels(tokenizer, "t")) == 2


def test_query_likelihood_needs_query_continuation(tmp_path):
    path = _write(
        tmp_path,
        'mode = "query-likelihood"\ntemplate = "{document}"\ncontinuation = "{document}"\n',
    )
    with pytest.raises(InputError, match="continuation"):
        load_template(str(path))
