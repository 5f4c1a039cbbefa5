"""The machine's measured matrix-multiply rate: the compute floor the benchmarks compare with."""

import time

import torch


def matmul_gflops(
    m: int, k: int, n: int, dtype: torch.dtype = torch.float32, seconds: float = 2.0
) -> float:
    """GFLOP/s of an (m x k) @ (k x n) product repeated for `seconds`, after one warm-up."""
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * m * k * n * count / (time.perf_counter() - start) / 1e9
