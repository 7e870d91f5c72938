"""Bounded cardinality: keep the top K rows, sum the rest into one aggregate.

Row types are frozen dataclasses whose field names are the column names of
their SQL (so a result row maps onto them by name, ``from_row``); the fields
marked ``summed()`` are added up into the one aggregate of the rows beyond
the top-K (``fold``), so totals over all series stay exact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
_SUMMED = "summed"


def summed(default: float | None = 0.0) -> Any:
    """A dataclass field that the ``__other__`` aggregate sums (``None`` counts as 0)."""
    return dataclasses.field(default=default, metadata={_SUMMED: True})


def from_row(cls: type[T], row: Mapping[str, Any], **values: Any) -> T:
    """``cls`` from a result row whose column names are its field names; ``values`` add or override."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs = {k: v for k, v in row.items() if k in names and v is not None}
    kwargs.update(values)
    return cls(**kwargs)


def fold(rows: Sequence[T], cls: type[T], **identity: Any) -> T | None:
    """One aggregate of ``rows``: summed fields added up, identity fields given, the rest at defaults."""
    if not rows:
        return None
    totals = {
        f.name: sum(getattr(r, f.name) or 0 for r in rows)
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.metadata.get(_SUMMED)
    }
    return cls(**identity, **totals)


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
