"""Estimated table and index bloat (a maintenance read: ``BLOAT`` in ``queries.py``).

The top-K tables and the top-K indexes by estimated bloat bytes are exported,
and the rest summed into one ``__other__`` series each (its ratio is not: a
sum of ratios means nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from collectors.base.samples import OTHER, SampleList
from collectors.base.topk import fold, summed


@dataclass(frozen=True)
class BloatRow:
    relid: int
    schema: str
    table: str
    index: str = ""  # "" for a table
    readable: bool = True  # False: no SELECT on the table, so pg_stats hides its statistics
    size_bytes: float = summed()
    bloat_bytes: float | None = summed(None)  # None: no statistics (never analyzed, or not readable)
    bloat_ratio: float | None = None


@dataclass
class Bloat:
    tables: list[BloatRow]
    tables_other: BloatRow | None
    indexes: list[BloatRow]
    indexes_other: BloatRow | None
    unreadable: int  # relations whose statistics the role may not read


def top_bloat(rows: list[BloatRow], k: int) -> Bloat:
    def split(kind: list[BloatRow], other: dict[str, str]) -> tuple[list[BloatRow], BloatRow | None]:
        ranked = sorted(kind, key=lambda r: (-(r.bloat_bytes or 0.0), r.schema, r.table, r.index))
        return ranked[:k], fold(ranked[k:], BloatRow, relid=0, **other)

    known = [r for r in rows if r.bloat_bytes is not None]
    tables, tables_other = split([r for r in known if not r.index], {"schema": OTHER, "table": OTHER})
    indexes, indexes_other = split([r for r in known if r.index],
                                   {"schema": OTHER, "table": OTHER, "index": OTHER})
    return Bloat(tables, tables_other, indexes, indexes_other, sum(1 for r in rows if not r.readable))


def add_samples(out: SampleList, bloat: Bloat, datname: str) -> None:
    db = {"datname": datname}
    for t in bloat.tables:
        out.add("dbpulse_pg_table_bloat_bytes", t.bloat_bytes, **db, schema=t.schema, table=t.table)
        out.add("dbpulse_pg_table_bloat_ratio", t.bloat_ratio, **db, schema=t.schema, table=t.table)
    if bloat.tables_other is not None:
        out.add("dbpulse_pg_table_bloat_bytes", bloat.tables_other.bloat_bytes, **db, schema=OTHER, table=OTHER)
    for i in bloat.indexes:
        labels = {"schema": i.schema, "table": i.table, "index": i.index}
        out.add("dbpulse_pg_index_bloat_bytes", i.bloat_bytes, **db, **labels)
        out.add("dbpulse_pg_index_bloat_ratio", i.bloat_ratio, **db, **labels)
    if bloat.indexes_other is not None:
        out.add("dbpulse_pg_index_bloat_bytes", bloat.indexes_other.bloat_bytes, **db, schema=OTHER, table=OTHER,
                index=OTHER)
