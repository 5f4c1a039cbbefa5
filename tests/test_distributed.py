"""Training under torchrun (2 CPU processes, gloo) and with gradient accumulation equals one
process on the same global batch."""

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

# fp32: the same sums in another order. Each process (and each micro-batch) pads its own
# length-sorted chunks of passages, so matmul shapes differ between the splits as well.
TOLERANCE = 2e-5


@pytest.fixture()
def training_inputs(tiny_beir, tiny_bert, tmp_path):
    # Dropout off: with it, each process draws its own masks, and runs agree only on average.
    encoder = tmp_path / "encoder"
    encoder.mkdir()
    for item in tiny_bert.iterdir():
        (encoder / item.name).write_bytes(item.read_bytes())
    config = json.loads((encoder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (encoder / "config.json").write_text(json.dumps(config))
    orders = {"q1": ["d1", "d2", "d3"], "q2": ["d2", "d4", "d1"], "q3": ["d4", "d1", "d5"]}
    orders["q4"] = ["d5", "d3", "d2"]
    targets = tmp_path / "targets.jsonl"
    targets.write_text(
        "".join(
            json.dumps({"query_id": q, "docs": d, "scores": [2.0, 0.5, -1.0]}) + "\n"
            for q, d in orders.items()
        )
    )
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(
            json.dumps({"query_id": q, "group": d, "pairs": [[d[0], d[1], 0.9], [d[1], d[2], 0.7]]})
            + "\n"
            for q, d in orders.items()
        )
    )
    return encoder, targets, pairs, tiny_beir


def _train(inputs, out, tmp_path, launcher: list[str], micro_batch: int = 0):
    encoder, targets, pairs, beir = inputs
    recipe = tmp_path / f"{out}.toml"
    recipe.write_text(
        # fp32: the claim is equal sums across processes, which bf16 rounding would blur
        '[student]\ndim = 16\nquery_maxlen = 12\ndoc_maxlen = 16\ndtype = "float32"\n'
        f"[distill]\nbatch_size = 4\nmicro_batch = {micro_batch}\nlr = 0.001\nepochs = 3\n"
    )
    args = ["--checkpoint", str(encoder), "--targets", str(targets), "--pairs", str(pairs)]
    args += ["--corpus", str(beir), "--queries", str(beir), "--out", str(tmp_path / out)]
    result = subprocess.run(
        [*launcher, "train", *args, "--recipe", str(recipe)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    losses = [line for line in result.stderr.splitlines() if line.startswith("step ")]
    return load_file(tmp_path / out / "model.safetensors"), losses


@pytest.mark.slow  # separate processes per stage: CI runs it (`pytest -m slow`)
def test_two_processes_and_accumulation_match_one_process(training_inputs, tmp_path):
    single, single_log = _train(
        training_inputs, "single", tmp_path, [sys.executable, "-m", "adapt"]
    )
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    two, two_log = _train(
        training_inputs, "two", tmp_path, [*torchrun, "--nproc-per-node", "2", "-m", "adapt"]
    )
    accumulated, accumulated_log = _train(
        training_inputs, "micro", tmp_path, [sys.executable, "-m", "adapt"], micro_batch=1
    )
    assert len(single_log) == 3 and single_log == two_log == accumulated_log  # 4 decimals
    start = load_file(training_inputs[0] / "model.safetensors")
    moved = max(
        (single[f"bert.{k}"] - v).abs().max().item()
        for k, v in start.items()
        if f"bert.{k}" in single
    )
    assert moved > 100 * TOLERANCE  # training changed the weights, so equality means something
    for name, value in single.items():
        torch.testing.assert_close(two[name], value, atol=TOLERANCE, rtol=0)
        torch.testing.assert_close(accumulated[name], value, atol=TOLERANCE, rtol=0)
