"""`auto` precision: bf16 only where the chip multiplies it natively."""

import pytest
import torch

from adapt import precision


def test_pinned_dtypes_are_kept_on_any_chip():
    for name in precision.DTYPES:
        assert precision.resolve(name, torch.device("cpu")) == name


def test_auto_on_a_cpu_follows_its_bf16_flags(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f"})
    assert precision.resolve("auto", torch.device("cpu")) == "float32"
    for flag in precision.BF16_CPU_FLAGS:
        monkeypatch.setattr(precision, "cpu_flags", lambda flag=flag: {"avx2", flag})
        assert precision.resolve("auto", torch.device("cpu")) == "bfloat16"


def test_rates_name_the_flags_that_decide_speed_in_a_fixed_order(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"sse2", "amx_bf16", "fma", "avx2"})
    assert precision.rate_flags() == ["avx2", "amx_bf16"]
    monkeypatch.setattr(precision, "cpu_flags", set)
    assert precision.rate_flags() == []


@pytest.mark.parametrize(("capability", "expected"), [((7, 0), "float32"), ((8, 0), "bfloat16")])
def test_auto_on_a_gpu_wants_native_bf16(monkeypatch, capability, expected):
    """A V100 (7.0) emulates bf16, slowly; an A100 or later (8.0+) runs it natively."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert precision.resolve("auto", torch.device("cuda", 0)) == expected


def test_the_teacher_dtype_is_resolved_for_its_own_device(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    assert precision.teacher_dtype("auto", "transformers", "cpu") == "float32"
    assert precision.teacher_dtype("bfloat16", "transformers", "cpu") == "bfloat16"
