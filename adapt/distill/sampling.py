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


def training_set(
    docs: list[str], nway: int, delta: int, n_pairs: int, rng: random.Random
) -> tuple[list[str], list[tuple[str, str]]]:
    """One query's KD group and pairs, by document id, from its target-sorted top-k `docs`.

    Pairs are sampled over the whole top-k (|i - j| < delta). The group is `nway` passages that
    hold every passage of the kept pairs, filled with a random sample of the rest of the top-k
    (as the authors' scripts sample from the reranked list), never only the best `nway`: the
    passages the target ranks low are the student's false positives, which training must push
    down. Pairs are taken best rank first; one whose passages no longer fit in `nway` is
    dropped. The group keeps the target's order.

    >>> training_set(list("abcdefghij"), nway=4, delta=3, n_pairs=3, rng=random.Random(0))
    (['a', 'b', 'g', 'h'], [('a', 'b'), ('g', 'h')])
    """
    group: set[int] = set()
    kept = []
    for i, j in sample_pairs(len(docs), delta, n_pairs, rng):
        if len(group | {i, j}) <= nway:
            group |= {i, j}
            kept.append((i, j))
    rest = [i for i in range(len(docs)) if i not in group]
    group |= set(rng.sample(rest, min(len(rest), nway - len(group))))
    return [docs[i] for i in sorted(group)], [(docs[i], docs[j]) for i, j in kept]
