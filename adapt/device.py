"""Where the student and the teacher run, and the student's precision there.

One rule for both settings (`student.device`, `teacher.device`): "auto" is "cuda" when torch sees
a GPU, else "cpu". "cuda" takes GPU LOCAL_RANK modulo the GPUs this process sees: torchrun's
processes each get their own, and a process whose CUDA_VISIBLE_DEVICES names one GPU (a shard
run) sees only cuda:0 and takes it. "cuda:N" is GPU N of those this process sees.
"""

import contextlib
import os
import re

import torch

from adapt.errors import AdaptError

CHOICES = "auto, cpu, cuda or cuda:N"


def resolve(name: str, setting: str = "device") -> torch.device:
    """The device `name` means in this process; a one-line AdaptError naming `setting` when this
    process has no such device, so a bad setting fails before any work."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if match is None:
        raise AdaptError(f"{setting} = '{name}': choose {CHOICES}")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise AdaptError(f"{setting} = '{name}': this process sees no CUDA device")
    index = int(match[1]) if match[1] else int(os.environ.get("LOCAL_RANK", "0")) % count
    if index >= count:
        raise AdaptError(f"{setting} = '{name}': this process sees {count} CUDA devices")
    return torch.device("cuda", index)


def autocast(model: torch.nn.Module) -> contextlib.AbstractContextManager:
    """The student's forward passes at its `compute_dtype` (set from `student.dtype` when it is
    loaded): bf16 autocast runs the matmuls at the chip's bf16 speed while the weights, and so
    the optimizer's master copy, stay fp32. fp32 changes nothing."""
    dtype = getattr(model, "compute_dtype", torch.float32)
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(next(model.parameters()).device.type, dtype=dtype)
