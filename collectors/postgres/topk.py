"""Bounded cardinality: keep the top K rows, sum the rest into one aggregate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def top_k_interleaved(rows: Sequence[T], k: int, *keys: Callable[[T], float]) -> tuple[list[T], list[T]]:
    """Pick at most ``k`` rows, taking turns from each ranking (e.g. by size, then by activity).

    Returns (kept, rest). Order of ``kept`` follows the rankings.
    """
    if len(rows) <= k:
        return list(rows), []
    rankings = [sorted(rows, key=key, reverse=True) for key in keys]
    kept: list[T] = []
    seen: set[int] = set()
    positions = [0] * len(rankings)
    while len(kept) < k:
        for r, ranking in enumerate(rankings):
            while positions[r] < len(ranking) and id(ranking[positions[r]]) in seen:
                positions[r] += 1
            if positions[r] < len(ranking) and len(kept) < k:
                row = ranking[positions[r]]
                kept.append(row)
                seen.add(id(row))
    rest = [row for row in rows if id(row) not in seen]
    return kept, rest
