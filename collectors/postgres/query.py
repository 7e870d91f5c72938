"""A statistics query is one value: its name, its SQL per server-version band, the feature it serves.

The name labels ``dbpulse_pg_query_errors_total{query}``; the bands map a minimum
``server_version_num`` to the SQL used from that version on (None: the version
lacks the view). ``fetch_counted`` picks the band and runs the query, so no call
site writes a name or picks a band of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg.rows import namedtuple_row

from collectors.postgres.access import COLLECTOR_TAG, error_line, tagged

Row = TypeVar("Row")

MIN_SUPPORTED = 130000


@dataclass(frozen=True, eq=False)
class Query:
    name: str  # the ``query`` label of dbpulse_pg_query_errors_total
    bands: Mapping[int, str | None]  # minimum server_version_num -> SQL (None: not on these versions)
    feature: str | None = None  # the health area (dbpulse_pg_feature_enabled) a failure turns off

    def sql(self, version_num: int, tag: str = COLLECTOR_TAG) -> str | None:
        """The SQL of the newest band at or below ``version_num``, tagged as dbpulse's (``access.tagged``);
        None where the version lacks the view."""
        if version_num < MIN_SUPPORTED:
            raise ValueError(f"PostgreSQL {version_num} is older than the supported 13")
        sql = self.bands[max(v for v in self.bands if v <= version_num)]
        return None if sql is None else tagged(sql, tag)

    def available(self, version_num: int) -> bool:
        return self.sql(version_num) is not None

    def required_sql(self, version_num: int, tag: str = COLLECTOR_TAG) -> str:
        """``sql`` for a version that has the query (a caller checks ``available`` first)."""
        sql = self.sql(version_num, tag)
        if sql is None:
            raise ValueError(f"query {self.name} does not exist on PostgreSQL {version_num}")
        return sql


async def fetch_counted(conn: psycopg.AsyncConnection[dict[str, Any]], query: Query, version_num: int,
                        errors: dict[str, int], params: Mapping[str, Any] | None = None,
                        passed_on: tuple[type[psycopg.Error], ...] = (),
                        ) -> tuple[list[dict[str, Any]] | None, str | None]:
    """Run one statistics query, its band picked for ``version_num``: its rows, or ``None`` and the error's
    first line.

    A failure that leaves the connection usable (a missing privilege, a lock or
    statement timeout) is counted in ``errors[query.name]`` and the poll goes on;
    a broken or closed connection raises, so the poller reconnects. Errors of the
    ``passed_on`` types are the caller's to handle: raised, not counted.
    """
    return await _counted(conn, conn.cursor(), query, version_num, errors, params, passed_on)


async def rows_counted(conn: psycopg.AsyncConnection[Any], query: Query, version_num: int,
                       errors: dict[str, int], params: Mapping[str, Any] | None = None,
                       passed_on: tuple[type[psycopg.Error], ...] = (),
                       ) -> tuple[AsyncIterator[Any] | None, str | None]:
    """``fetch_counted``, the rows as named tuples made one at a time as they are iterated (the result is
    in libpq's memory): for reads of one row per statement, folded as they are read, a list of them is the
    poll's peak (10,000 rows: 6.3 MiB as dicts)."""
    cur = conn.cursor(row_factory=namedtuple_row)
    found, error = await _counted(conn, cur, query, version_num, errors, params, passed_on, fetch=False)
    return (_rows_of(cur) if found is not None else None), error


async def _rows_of(cur: psycopg.AsyncCursor[Any]) -> AsyncIterator[Any]:
    async with cur:
        async for row in cur:
            yield row


async def _counted(conn: psycopg.AsyncConnection[Any], cur: psycopg.AsyncCursor[Row], query: Query,
                   version_num: int, errors: dict[str, int], params: Mapping[str, Any] | None,
                   passed_on: tuple[type[psycopg.Error], ...],
                   fetch: bool = True) -> tuple[list[Row] | None, str | None]:
    """The rows (``fetch``; else an empty list, the result left in ``cur`` to iterate), or None and the error."""
    sql = query.required_sql(version_num)
    try:
        await cur.execute(sql.encode(), params)
        if not fetch:
            return [], None
        async with cur:
            return await cur.fetchall(), None
    except psycopg.Error as exc:
        await cur.close()
        if conn.broken or conn.closed or isinstance(exc, passed_on):
            raise
        errors[query.name] = errors.get(query.name, 0) + 1
        return None, error_line(exc)
