"""Deterministic shards of the queries, so teacher scoring can run on several machines at once.

A query belongs to shard `I/N` by a hash of its id: the same on every machine, for any subset
or order of the queries. Each shard writes its scores to a score cache (its own file, or a shared
one); `adapt merge` unites the files, and the full run then finds every score stored.
"""

import hashlib

from adapt.errors import AdaptError


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` with 1 <= I <= N.

    >>> parse_shard("2/4")
    (2, 4)
    """
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise AdaptError(f"--shard '{text}': expected I/N, for example 1/4") from None
    if not 1 <= index <= count:
        raise AdaptError(f"--shard '{text}': I must be between 1 and N")
    return index, count


def in_shard(query_id: str, shard: tuple[int, int]) -> bool:
    index, count = shard
    return (
        int.from_bytes(hashlib.sha256(query_id.encode()).digest()[:8], "big") % count == index - 1
    )
