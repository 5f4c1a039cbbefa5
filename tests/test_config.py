"""Recipes override defaults, flags override recipes, and typos are refused."""

import json

import pytest

from adapt.config import load_config
from adapt.errors import InputError


def test_defaults_are_the_papers():
    config = load_config()
    assert (config.distill.delta, config.distill.n_pairs, config.distill.lambda_pair) == (
        10,
        50,
        3.0,
    )
    assert (config.student.dim, config.student.query_maxlen, config.distill.lr) == (128, 32, 1e-5)


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

    from adapt.bench import load_bench

    for recipe in Path(__file__).parents[1].glob("recipes/*.toml"):
        if recipe.name.startswith("bench-"):
            assert load_bench(recipe).domains
        else:
            load_config(recipe)


def test_settings_at_their_neutral_values_keep_older_fingerprints():
    import hashlib

    from adapt.config import Config

    config = Config()
    older = config.to_dict()["distill"]
    del older["teacher_weight"], older["min_pair_confidence"], older["bm25_weight"]
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
    older = config.to_dict()
    del older["student"]["kind"], older["distill"]["teacher_weight"]
    write_json(tmp_path / "config.json", older)
    RunDir(tmp_path, config)._lock_handle.close()
    write_json(tmp_path / "config.json", older)
    config.distill.teacher_weight = 0.5
    with pytest.raises(AdaptError, match=r"\(distill.teacher_weight\)"):
        RunDir(tmp_path, config)
