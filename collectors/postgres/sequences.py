"""Sequences near exhaustion (a maintenance read: ``SEQUENCES`` in ``queries.py``), the top-K by used range."""

from __future__ import annotations

from dataclasses import dataclass

from collectors.base.samples import SampleList


@dataclass(frozen=True)
class SequenceRow:
    schema: str
    sequence: str
    readable: bool = True  # False: the role may not read it, used_ratio unknown
    used_ratio: float | None = None  # of the range of the sequence and of the columns it feeds


def top_sequences(rows: list[SequenceRow], k: int) -> list[SequenceRow]:
    """The k most used; the rest are less used than the last one kept (no aggregate: a ratio)."""
    known = [r for r in rows if r.used_ratio is not None]
    return sorted(known, key=lambda r: (-(r.used_ratio or 0.0), r.schema, r.sequence))[:k]


def add_samples(out: SampleList, rows: list[SequenceRow], datname: str) -> None:
    for r in rows:
        out.add("dbpulse_pg_sequence_used_ratio", r.used_ratio, datname=datname, schema=r.schema, sequence=r.sequence)
