"""Per-table and per-index statistics at a cost that does not grow with the number of tables.

``pg_stat_user_tables`` and ``pg_stat_user_indexes`` cost the server a statistics
lookup per column of every relation: at 10,000 tables, reading them whole every
poll was most of a poll's database time. So every relation is read on the size
cadence (``postgres.size_interval``, the cadence of the sizes the top-K is
partly ranked by): that full read picks the top-K (by size and by scans, taking
turns), folds the rest into the ``__other__`` row, and counts the tables
autovacuum should process. Between full reads only the top-K are read, by oid
(``queries.TABLES_TOP``, ``queries.INDEXES_TOP``: an index scan of ``pg_class``),
so their counters, and the alerts on them, are as fresh as every poll.

As of the last full read (at most ``size_interval`` old): the ``__other__`` rows,
the counts of tables and indexes, which relations are the top-K, and how many of
the tables beyond the top-K are due for autovacuum. A table created since is
seen at the next full read; a top-K table dropped since is no longer reported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from collectors.base.samples import OTHER
from collectors.base.topk import fold, from_row, top_k_interleaved
from collectors.postgres import queries
from collectors.postgres.health import TableCounts
from collectors.postgres.query import Query
from collectors.postgres.snapshot import IndexRow, TableRow

Rows = list[dict[str, Any]]
Fetch = Callable[[Query, int, dict[str, Any] | None], Awaitable[Rows | None]]
R = TypeVar("R", TableRow, IndexRow)


@dataclass(frozen=True)
class Relations:
    """The tables and indexes of one poll: the top-K read now, the rest as of the last full read."""

    tables: list[TableRow]
    tables_other: TableRow | None
    table_count: int
    table_counts: TableCounts  # every table: the top-K's as read now, the rest's as of the last full read
    indexes: list[IndexRow]
    indexes_other: IndexRow | None
    index_count: int
    full: bool  # this poll read every relation


def table_counts(tables: Sequence[TableRow]) -> TableCounts:
    """How many of ``tables`` autovacuum should process now, and how many it may not."""
    return TableCounts(
        vacuum_due=sum(t.vacuum_due for t in tables),
        analyze_due=sum(t.analyze_due for t in tables),
        autovacuum_disabled=sum(not t.autovacuum_enabled for t in tables),
    )


def _added(a: TableCounts, b: TableCounts) -> TableCounts:
    return TableCounts(a.vacuum_due + b.vacuum_due, a.analyze_due + b.analyze_due,
                       a.autovacuum_disabled + b.autovacuum_disabled)


@dataclass
class _Kept:
    """What the last full read of one kind of relation decided, kept until the next."""

    ids: list[int]  # the top-K's oids, in ranking order
    other: Any  # the fold of the rest (TableRow | IndexRow | None)
    count: int
    rest_counts: TableCounts  # tables only


class RelationReader:
    """Reads one target's tables and indexes: every one when ``full``, else the top-K of the last full read."""

    def __init__(self, top_tables: int, top_indexes: int) -> None:
        self.top_tables = top_tables
        self.top_indexes = top_indexes
        self._tables: _Kept | None = None  # None until a full read succeeded
        self._indexes: _Kept | None = None

    async def read(self, fetch: Fetch, version: int, sizes: Mapping[int, float],
                   thresholds: Mapping[int, Mapping[str, Any]], full: bool) -> Relations:
        """``full``: read every relation (the size cadence); a kind never read whole yet is read whole."""
        def table(r: Mapping[str, Any]) -> TableRow:
            relid = int(r["relid"])
            return from_row(TableRow, r, size_bytes=sizes.get(relid), **thresholds.get(relid, {}))

        def index(r: Mapping[str, Any]) -> IndexRow:
            return from_row(IndexRow, r, size_bytes=sizes.get(int(r["indexrelid"])))

        tables, self._tables, read_tables = await self._read_kind(
            fetch, version, full, self._tables, (queries.TABLES, queries.TABLES_TOP), table, self._rank_tables)
        indexes, self._indexes, read_indexes = await self._read_kind(
            fetch, version, full, self._indexes, (queries.INDEXES, queries.INDEXES_TOP), index, self._rank_indexes)
        kept_t, kept_i = self._tables, self._indexes
        return Relations(
            tables=tables,
            tables_other=kept_t.other if kept_t else None,
            table_count=kept_t.count if kept_t else len(tables),
            table_counts=_added(table_counts(tables), kept_t.rest_counts if kept_t else TableCounts()),
            indexes=indexes,
            indexes_other=kept_i.other if kept_i else None,
            index_count=kept_i.count if kept_i else len(indexes),
            full=read_tables and read_indexes,
        )

    async def _read_kind(self, fetch: Fetch, version: int, full: bool, kept: _Kept | None,
                         queries_of: tuple[Query, Query], make: Callable[[Mapping[str, Any]], R],
                         rank: Callable[[list[R]], _Kept]) -> tuple[list[R], _Kept | None, bool]:
        """(the top-K rows, what is kept for the next polls, whether every relation was read). A failed full
        read keeps what the last one decided; a failed top-K read reports no rows this poll."""
        every, top = queries_of
        if full or kept is None:
            rows = await fetch(every, version, None)
            if rows is not None:
                made = [make(r) for r in rows]
                decided = rank(made)
                chosen = set(decided.ids)
                by_id = {_oid(m): m for m in made if _oid(m) in chosen}
                return [by_id[i] for i in decided.ids], decided, True
            if kept is None:
                return [], None, False
        rows = await fetch(top, version, {"ids": kept.ids})
        if rows is None:
            return [], kept, False
        by_id = {_oid(m): m for m in map(make, rows)}
        return [by_id[i] for i in kept.ids if i in by_id], kept, False

    def _rank_tables(self, tables: list[TableRow]) -> _Kept:
        kept, rest = top_k_interleaved(tables, self.top_tables, lambda t: t.size_bytes or 0,
                                       lambda t: t.seq_scans + t.index_scans)
        return _Kept([t.relid for t in kept], fold(rest, TableRow, schema=OTHER, table=OTHER), len(tables),
                     table_counts(rest))

    def _rank_indexes(self, indexes: list[IndexRow]) -> _Kept:
        kept, rest = top_k_interleaved(indexes, self.top_indexes, lambda i: i.size_bytes or 0, lambda i: i.scans)
        return _Kept([i.indexrelid for i in kept], fold(rest, IndexRow, schema=OTHER, table=OTHER, index=OTHER),
                     len(indexes), TableCounts())


def _oid(row: TableRow | IndexRow) -> int:
    return row.relid if isinstance(row, TableRow) else row.indexrelid
