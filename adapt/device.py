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


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on a GPU: matmuls at tensor-core speed while the weights, and so the
    optimizer's master copy, stay fp32. On the CPU nothing changes here."""
    from adapt.precision import bf16_units

    if device.type == "cuda" and bf16_units(device):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
