"""Which precision a model runs at when the user says `auto`: chosen by the machine.

bf16 pays only where the chip multiplies bf16 natively: GPUs, and CPUs with AVX512-BF16 or AMX
tiles, where the 0.5B teacher runs 2.2 to 4.4x its fp32 speed with likelihood scores at Spearman
0.998+ against fp32. On an AVX2-only CPU bf16 is emulated and 5x slower (docs/benchmarks.md), so
`auto` stays fp32 there. The resolved dtype, never "auto", is what runs record and caches key on.
"""

from pathlib import Path

import torch

DTYPES = ("float32", "bfloat16", "float16")
CHOICES = ("auto", *DTYPES)
STUDENT_CHOICES = ("auto", "float32", "bfloat16")  # fp16 autocast has no CPU kernels worth it
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# The flags every CPU rate is recorded beside: they decide fp32 and bf16 speed.
RATE_FLAGS = ("avx2", "avx512f", *BF16_CPU_FLAGS)


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux); empty where /proc/cpuinfo is not there."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def rate_flags() -> list[str]:
    """Which of RATE_FLAGS this CPU has, in their order."""
    present = cpu_flags()
    return [f for f in RATE_FLAGS if f in present]


def bf16_units(device: torch.device) -> bool:
    """Whether `device` multiplies bf16 natively."""
    if device.type == "cuda":  # native only: V100 and T4 emulate bf16, slowly
        return torch.cuda.get_device_capability(device)[0] >= 8
    return device.type == "cpu" and any(f in cpu_flags() for f in BF16_CPU_FLAGS)


def resolve(name: str, device: torch.device) -> str:
    """`auto` -> bfloat16 where `device` has bf16 units, else float32; any other name as is.

    >>> resolve("float32", torch.device("cpu"))
    'float32'
    """
    if name != "auto":
        return name
    return "bfloat16" if bf16_units(device) else "float32"


def teacher_dtype(dtype: str, engine: str, device: str) -> str:
    """The dtype a teacher with these settings runs at on this machine: what a stage's record
    and a report name (the score cache keys on the backend's own resolved dtype)."""
    from adapt.device import resolve as resolve_device

    # vLLM places itself: on the GPU when there is one, which is what "auto" means.
    where = "auto" if engine == "vllm" else device
    return resolve(dtype, resolve_device(where, "teacher.device"))


def student_dtype(name: str, device: torch.device) -> torch.dtype:
    """The student's compute dtype (its weights stay fp32): bf16 autocast where the chip
    multiplies bf16 natively, which on an AVX512-BF16 CPU encodes and trains 1.8x faster with the
    same retrieval metrics (docs/benchmarks.md), fp32 elsewhere."""
    return getattr(torch, resolve(name, device))
