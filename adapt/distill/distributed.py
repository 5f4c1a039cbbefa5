"""torch.distributed for training under `torchrun`: gloo on CPU, NCCL on GPUs.

Every rank walks the same shuffled order and takes every WORLD-th query of each global batch;
losses are pre-weighted by each share's size, so summing gradients over ranks gives the gradient
of the whole batch, as one process would compute it. Only rank 0 writes checkpoints.
"""

import os

import torch
import torch.distributed as dist


def init_from_env(device: torch.device) -> tuple[int, int]:
    """Join the process group `torchrun` describes in the environment, with the backend that
    suits the student's `device` (adapt.device places each rank); (rank, world size)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        gpu = device.type == "cuda"
        if gpu:
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if gpu else "gloo")
    return rank_and_world()


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return rank_and_world()[0] == 0


def sum_gradients_and_values(
    model: torch.nn.Module, values: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """All-reduce (sum) every gradient, and the logged loss values, across ranks."""
    device = next(model.parameters()).device
    for param in model.parameters():
        if param.requires_grad:
            if param.grad is None:  # a rank whose share of a small last batch was empty
                param.grad = torch.zeros_like(param)
            dist.all_reduce(param.grad)
    names = ["kd", "pair", "cl", "loss"]
    stacked = torch.stack([torch.as_tensor(values.get(n, 0.0), device=device) for n in names])
    dist.all_reduce(stacked)
    return {n: v for n, v in zip(names, stacked) if n in values or n != "cl"}


def finish() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
