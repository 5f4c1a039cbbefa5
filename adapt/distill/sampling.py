"""Pair sampling over the teacher-sorted candidates (section 4.2 of the paper)."""

import random


def sample_pairs(n: int, delta: int, n_pairs: int, rng: random.Random) -> list[tuple[int, int]]:
    """Pairs (i, j) of ranks, i < j < n and j - i < delta, at most `n_pairs` of them.

    Nearby ranks are where a pointwise teacher is least sure and a pairwise one helps most. A query
    with fewer candidates than asked gets every pair it has, never an error.

    >>> sample_pairs(4, delta=2, n_pairs=10, rng=random.Random(0))
    [(0, 1), (1, 2), (2, 3)]
    >>> len(sample_pairs(100, delta=10, n_pairs=50, rng=random.Random(0)))
    50
    """
    candidates = [(i, j) for i in range(n) for j in range(i + 1, min(n, i + delta))]
    if len(candidates) <= n_pairs:
        return candidates
    return sorted(rng.sample(candidates, n_pairs))
