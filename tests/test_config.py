"""Recipes override defaults, flags override recipes, and typos are refused."""

import json

import pytest

from adapt.config import NEUTRAL, load_config
from adapt.errors import InputError


def test_the_paper_recipe_is_the_papers_setting_whatever_the_defaults():
    from pathlib import Path

    config = load_config(Path(__file__).parents[1] / "recipes" / "paper.toml")
    d, t = config.distill, config.teacher
    assert (d.top_k, d.nway, d.delta, d.n_pairs, d.lambda_kd, d.lambda_pair) == (
        100,
        64,
        10,
        50,
        1.0,
        3.0,
    )
    assert (d.lr, d.batch_size, d.temperature, d.teacher_weight, d.bm25_weight) == (
        1e-5,
        32,
        1.0,
        1.0,
        0.0,
    )
    assert (t.pointwise_prompt, t.pairwise_prompt, t.both_orders) == (
        "yes-no-flan",
        "ab-flan",
        True,
    )
    assert (config.iterations, config.student.query_maxlen, config.student.doc_maxlen) == (
        2,
        32,
        180,
    )


def test_recipe_then_flags(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('iterations = 3\n[data]\ncorpus = "c"\n[distill]\nlr = 1\n')
    config = load_config(recipe, {"distill.lr": 0.5, "teacher.model": None})
    assert config.iterations == 3 and config.distill.lr == 0.5
    assert config.data.corpus == str(tmp_path / "c")  # relative to the recipe
    assert config.teacher.model == "qwen2.5-coder-0.5b"


def test_wrong_type_is_refused(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('iterations = "two"\n')
    with pytest.raises(InputError, match="'iterations' must be"):
        load_config(recipe)


def test_shipped_recipes_load():
    from pathlib import Path

    from adapt.bench_recipe import load_bench

    for recipe in Path(__file__).parents[1].glob("recipes/*.toml"):
        if recipe.name.startswith("bench-"):
            assert load_bench(recipe).domains
        else:
            load_config(recipe)


def test_settings_at_their_neutral_values_keep_older_fingerprints():
    import hashlib

    from adapt.config import Config

    config = Config()
    for key, value in NEUTRAL.items():  # a config with every new setting at its neutral value
        section, name = key.split(".")
        setattr(getattr(config, section), name, value)
    older = config.to_dict()["distill"]
    del older["teacher_weight"], older["min_pair_confidence"], older["bm25_weight"]
    del older["biencoder_weight"], older["dropout"], older["steps"], older["schedule"]
    del older["student_scores"], older["checkpoints"], older["lambda_cl"], older["lambda_ib"]
    blob = json.dumps({"distill": older}, sort_keys=True).encode()
    assert config.fingerprint("distill") == hashlib.sha256(blob).hexdigest()[:16]
    config.distill.teacher_weight = 0.5
    assert config.fingerprint("distill") != hashlib.sha256(blob).hexdigest()[:16]


def test_a_run_from_before_a_setting_existed_opens_without_force(tmp_path):
    """Its saved config lacks the new key; the key's neutral value counts as unchanged."""
    from adapt.config import Config
    from adapt.errors import AdaptError
    from adapt.io import write_json
    from adapt.rundir import RunDir

    config = Config()
    config.distill.teacher_weight = NEUTRAL["distill.teacher_weight"]
    older = config.to_dict()
    del older["student"]["kind"], older["distill"]["teacher_weight"]
    write_json(tmp_path / "config.json", older)
    RunDir(tmp_path, config)._lock_handle.close()
    write_json(tmp_path / "config.json", older)
    write_json(tmp_path / "stages.json", {"iter-1/pointwise.jsonl": "fp"})  # read the weight
    config.distill.teacher_weight = 0.5
    with pytest.raises(AdaptError, match=r"\(distill.teacher_weight\)"):
        RunDir(tmp_path, config)
