"""Teacher scoring in shards: two processes, their caches merged, equal one process's scores."""

import json
import subprocess
import sys

import pytest

from adapt.errors import AdaptError
from adapt.report import rounded
from adapt.teacher.cache import ScoreCache
from adapt.teacher.shard import in_shard, parse_shard
from tests.conftest import N_HITS, N_QUERIES
from tests.test_kill import _score, score_args


def test_two_shards_merged_give_the_scores_of_one_process(cli, short_inputs, tmp_path):
    # Both shards hold queries (the split is a hash of the id).
    assert {in_shard(f"q{j}", (1, 2)) for j in range(N_QUERIES)} == {True, False}
    shards = [
        subprocess.Popen(
            [
                *_score(short_inputs, tmp_path / f"s{i}.jsonl", tmp_path / f"s{i}.sqlite"),
                "--shard",
                f"{i}/2",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 2)
    ]
    for process in shards:
        assert process.wait(timeout=600) == 0, process.stderr.read()
    merged = tmp_path / "merged.sqlite"
    result = cli("merge", "--into", merged, tmp_path / "s1.sqlite", tmp_path / "s2.sqlite")
    assert result.returncode == 0, result.stderr
    assert len(ScoreCache(merged)) == N_QUERIES * N_HITS
    # Re-running a shard is idempotent: everything is stored.
    again = cli(
        *score_args(short_inputs, tmp_path / "s1.jsonl", tmp_path / "s1.sqlite"), "--shard", "1/2"
    )
    assert " 0 new," in again.stderr
    whole = cli(*score_args(short_inputs, tmp_path / "whole.jsonl", merged))
    assert f"0 new, {N_QUERIES * N_HITS} from the cache" in " ".join(whole.stderr.split())
    single = cli(*score_args(short_inputs, tmp_path / "single.jsonl", tmp_path / "single.sqlite"))
    assert single.returncode == 0, single.stderr
    read = lambda name: [json.loads(x) for x in (tmp_path / name).read_text().splitlines()]  # noqa: E731
    for a, b in zip(read("whole.jsonl"), read("single.jsonl"), strict=True):
        assert a["docs"] == b["docs"]
        # fp32 sums in a different batch composition: equal to rounding, not bit for bit.
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-4)


@pytest.mark.parametrize("text", ["0/2", "3/2", "1-2", "a/b", "1/0"])
def test_bad_shard_specs_are_refused(text):
    with pytest.raises(AdaptError, match="--shard"):
        parse_shard(text)


def test_merge_refuses_a_file_that_is_not_a_score_cache(tmp_path):
    bogus = tmp_path / "bogus.sqlite"
    bogus.write_text("not sqlite at all " * 100)
    with pytest.raises(AdaptError, match="not an adapt score cache"):
        ScoreCache(tmp_path / "into.sqlite").merge(bogus)


@pytest.mark.slow  # separate processes per stage: CI runs it (`pytest -m slow`)
def test_the_one_node_script_shards_every_iteration_and_scores_nothing_twice(
    tiny_beir, tiny_bert, tmp_path
):
    """recipes/paper-8gpu.sh with 2 "GPUs" on CPU and a tiny recipe: two iterations, each scored
    in two shard processes and merged; the result equals one process's run. With fused targets
    (w < 1, BM25 in them), the shards sample their A/B pairs from the same targets as the whole
    run, so the merged run scores nothing again and trains on the same pairs."""
    import os
    from pathlib import Path

    from rich.console import Console

    from adapt import pipeline
    from adapt.rundir import to_toml
    from tests.test_pipeline import _config

    config = _config(tiny_beir, tiny_bert, teacher_weight=0.5, bm25_weight=0.2)
    # fp32 pinned: bf16 (auto on a chip with bf16 units) rounds the shards' batches otherwise.
    config.teacher.dtype = config.student.dtype = "float32"
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(to_toml(config.to_dict()))
    run = tmp_path / "run"
    env = {**os.environ, "GPUS": "2", "RECIPE": str(recipe), "ADAPT": f"{sys.executable} -m adapt"}
    script = Path(__file__).parents[1] / "recipes" / "paper-8gpu.sh"
    done = subprocess.run(
        ["bash", str(script), str(tiny_beir), str(run)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert not list(tmp_path.glob("run.shard-*"))
    config.data.queries_split = "train"
    single = pipeline.run(config, tmp_path / "single", Console(quiet=True))
    stored = len(ScoreCache(tmp_path / "single" / "teacher-cache.sqlite"))
    assert len(ScoreCache(run / "teacher-cache.sqlite")) == stored > 0
    for name in ("iter-1/pairs.jsonl", "iter-2/pairs.jsonl"):
        ours, theirs = (
            [json.loads(x) for x in (r / name).read_text().splitlines()]
            for r in (run, tmp_path / "single")
        )
        for a, b in zip(ours, theirs, strict=True):
            assert (a["query_id"], a["group"]) == (b["query_id"], b["group"])
            assert [p[:2] for p in a["pairs"]] == [p[:2] for p in b["pairs"]]
            # fp32 sums in another batch composition: the same pairs, scores equal to rounding.
            for p, q in zip(a["pairs"], b["pairs"], strict=True):
                assert p[2:] == pytest.approx(q[2:], abs=1e-5)
    sharded = json.loads((run / "report.json").read_text())
    for a, b in zip(sharded["iterations"], rounded(single)["iterations"], strict=True):
        assert a["metrics"] == pytest.approx(b["metrics"], abs=1e-6)
