"""bench/gpu_smoke.py's toy size end to end on the CPU: the script the GPU run depends on must
work before device time is spent on it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STAGES = [
    "iter-0/start",
    "iter-0/index",
    "iter-0/eval",
    "iter-0/baselines",
    "iter-1/candidates",
    "iter-1/pointwise",
    "iter-1/targets",
    "iter-1/pairs",
    "iter-1/train",
    "iter-1/index",
    "iter-1/eval",
]


@pytest.mark.slow  # separate processes per stage: CI runs it (`pytest -m slow`)
def test_the_toy_smoke_run_records_every_stage_and_its_device(tmp_path):
    tokenizers = REPO / "bench" / "_device"
    if not (tokenizers / "qwen-tokenizer").is_dir():
        tokenizers = tmp_path / "tokenizers"  # exported there from the built-ins
    env = {**os.environ, "OUT": str(tmp_path), "PYTHONPATH": str(REPO)}
    subprocess.run(
        [sys.executable, "bench/gpu_smoke.py", "--toy", "--tokenizers", str(tokenizers)],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    found = json.loads((tmp_path / "gpu-smoke.json").read_text())
    assert list(found["stages"]) == STAGES
    stages = found["stages"]
    assert stages["iter-1/train"]["models"] == {"student": "cpu float32"}
    assert stages["iter-1/pointwise"]["models"] == {"teacher": "cpu bfloat16"}
    assert found["head_max_change"] > 0  # training moved the weights
    assert "| iter-1/train |" in (tmp_path / "gpu-smoke.md").read_text()
