"""The one ``pg_stat_statements`` reader, for the collector (every poll) and the advisor (every run).

One SQL text per server-version band (``queries.STATEMENTS``) and one row type.
Counters are summed per queryid across users; from PG 14 only top-level
statements are read (see ``queries.STATEMENTS``). The collector asks for short
texts and every row (it exports a top-K and sums the rest); the advisor asks
for whole texts of the heaviest statements.

dbpulse's own statements (every one carries its component's tag, see
``access.COLLECTOR_TAG``) are told apart by the SQL itself: they are never
among the application's statements, and are added up per component
(``OwnStatements``) so their cost stays visible.

Variants: up to PostgreSQL 17 every length of an ``IN ($1, ..., $n)`` list is
its own entry (its own queryid). Texts with one pglast fingerprint (libpg_query's:
constants, parameters and IN-list lengths do not count) and the same names are
one statement to a person: ``group_variants`` makes them one entry, counters
added up, each variant kept by its queryid.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pglast
import pglast.parser
import psycopg
from psycopg.rows import dict_row

from collectors.base.samples import OTHER
from collectors.base.topk import fold, summed
from collectors.postgres import queries
from collectors.postgres.access import ADVISOR_TAG, unwrap_statement_text
from collectors.postgres.query import fetch_counted, rows_counted

WHOLE_TEXT = 1_000_000  # characters: pg_stat_statements keeps at most track_activity_query_size of them


@dataclass(frozen=True, slots=True)
class StatementStat:
    queryid: int
    query: str = ""
    calls: int = summed(0)
    exec_seconds: float = summed()
    rows: int = summed(0)
    blks_hit: int = summed(0)
    blks_read: int = summed(0)
    plan_seconds: float = summed()  # 0 unless pg_stat_statements.track_planning is on
    temp_blks_read: int = summed(0)
    temp_blks_written: int = summed(0)
    wal_bytes: float = summed()

    @property
    def mean_exec_seconds(self) -> float:
        return self.exec_seconds / self.calls if self.calls else 0.0

    @property
    def rows_per_call(self) -> float:
        return self.rows / self.calls if self.calls else 0.0


@dataclass(frozen=True)
class OwnStatements:
    """dbpulse's own statements of one component, added up (kept out of the application's statements)."""

    component: str  # "collector" (statistics and health reads) or "advisor"
    statements: int = 0  # pg_stat_statements entries
    calls: int = 0
    exec_seconds: float = 0.0


OWN_COMPONENTS = ("advisor", "collector")


def own_statements(rows: Iterable[Mapping[str, Any]]) -> list[OwnStatements]:
    """The rows of ``queries.STATEMENTS`` that are dbpulse's own, added up per component (each one present)."""
    totals = {c: [0, 0, 0.0] for c in OWN_COMPONENTS}
    for r in rows:
        if r["own"] in totals:
            total = totals[r["own"]]
            total[0] += 1
            total[1] += int(r["calls"] or 0)
            total[2] += float(r["exec_seconds"] or 0)
    return [OwnStatements(c, int(n), int(calls), float(seconds)) for c, (n, calls, seconds) in totals.items()]


def application_rows(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rows of ``queries.STATEMENTS`` that are the application's (no dbpulse tag)."""
    return [r for r in rows if r["own"] is None]


def statements_params(text_length: int, limit: int | None) -> dict[str, Any]:
    """Parameters of ``queries.STATEMENTS``: text length, and how many rows (None: all)."""
    return {"text_length": text_length, "limit": limit}


def to_stats(rows: Iterable[Mapping[str, Any]]) -> list[StatementStat]:
    return [
        StatementStat(
            queryid=int(r["queryid"]), query=unwrap_statement_text(r["query"] or ""), calls=int(r["calls"] or 0),
            exec_seconds=float(r["exec_seconds"] or 0), rows=int(r["rows"] or 0),
            blks_hit=int(r["blks_hit"] or 0), blks_read=int(r["blks_read"] or 0),
            plan_seconds=float(r["plan_seconds"] or 0), temp_blks_read=int(r["temp_blks_read"] or 0),
            temp_blks_written=int(r["temp_blks_written"] or 0), wal_bytes=float(r["wal_bytes"] or 0),
        )
        for r in rows
    ]


# The errors of pg_stat_statements that are states of the server, not failures: not preloaded, no privilege.
PGSS_STATES: tuple[type[psycopg.Error], ...] = (psycopg.errors.ObjectNotInPrerequisiteState,
                                                psycopg.errors.InsufficientPrivilege)
EVERY_LABEL = 1000  # more unlabelled queryids than this: the labels of every entry are read, not by queryid
_COUNTERS = ("calls", "total_exec_time", "rows", "blks_hit", "blks_read", "total_plan_time", "temp_blks_read",
             "temp_blks_written", "wal_bytes")


@dataclass(frozen=True)
class CollectorRead:
    """One poll's statements: the application's top-K (with texts) and the rest summed, dbpulse's own, or the
    error."""

    top: list[StatementStat] | None  # heaviest (total execution time) first
    other: StatementStat | None  # the rest of the application's, added up
    count: int  # the application's statements (top-K and rest)
    own: list[OwnStatements]
    error: str | None = None


def _failed(error: str | None) -> CollectorRead:
    return CollectorRead(None, None, 0, [], error)


class CollectorStatements:
    """The collector's reads of ``pg_stat_statements``, every poll, at the cost of its counters alone.

    The counters of every entry are read without texts (``queries.STATEMENT_COUNTERS``; reading,
    grouping and sorting every text each poll cost the server 5x the view at 5,000 statements).
    Whose statement an entry is (the application's, or a dbpulse component's by the tag in its text)
    does not change: it is read once per entry (``queries.STATEMENT_LABELS``), when the entry is new.
    Texts are kept only for the exported top-K; one that enters the top-K is read then. The entries
    are summed per queryid as tuples, and only the top-K become ``StatementStat``s: at 10,000
    statements, a row object per statement per poll cost more CPU and memory than the read.
    """

    def __init__(self, text_length: int, top: int) -> None:
        self.text_length = text_length
        self.top = top
        self._own: dict[tuple[int, int], str | None] = {}  # (userid, queryid) -> component, None: the application
        self._texts: dict[int, str] = {}  # queryid -> short text, of the exported top-K

    async def read(self, conn: psycopg.AsyncConnection[dict[str, Any]], band: int,
                   errors: dict[str, int]) -> CollectorRead:
        """Raises the errors of ``PGSS_STATES`` (the caller reports the state: the view may be revoked while
        the function is not); any other is counted and returned."""
        texts: dict[int, str] = {}
        if not self._own:  # the first poll: every label first, so that the counters below need not wait for theirs
            error = await self._label(conn, band, errors, None, texts)
            if error is not None:
                return _failed(error)
        rows, error = await rows_counted(conn, queries.STATEMENT_COUNTERS, band, errors, passed_on=PGSS_STATES)
        if rows is None:
            return _failed(error)
        # Folded as they are read: no list of 10,000 rows. An entry new since the labels were read waits, with
        # its counters, for its label.
        sums = _Sums()
        seen: list[tuple[int, int]] = []
        waiting: list[tuple[tuple[int, int], Any]] = []
        async for r in rows:
            key = (r.userid, r.queryid)
            seen.append(key)
            if key in self._own:
                sums.add(self._own[key], key[1], r)
            else:
                waiting.append((key, r))
        if waiting:
            error = await self._label(conn, band, errors, sorted({key[1] for key, _ in waiting}), texts)
            if error is not None:
                return _failed(error)
            for key, r in waiting:
                sums.add(self._own.get(key, _UNLABELLED), key[1], r)
        self._own = {key: self._own[key] for key in seen if key in self._own}  # entries gone are forgotten
        app, own = sums.app, sums.own_statements()
        ranked = sorted(app, key=lambda q: (-app[q][1], q))
        top_ids = ranked[:self.top]
        missing = [q for q in top_ids if q not in texts and q not in self._texts]
        if missing:
            error = await self._label(conn, band, errors, missing, texts)
            if error is not None:
                return _failed(error)
        known = self._texts | texts
        self._texts = {q: known[q] for q in top_ids if q in known}
        top = [_stat(q, app[q], self._texts.get(q, "")) for q in top_ids]
        rest = [app[q] for q in ranked[self.top:]]
        other = _stat(0, tuple(sum(column) for column in zip(*rest, strict=True)), OTHER) if rest else None
        return CollectorRead(top, other, len(app), own)

    async def _label(self, conn: psycopg.AsyncConnection[dict[str, Any]], band: int, errors: dict[str, int],
                     ids: list[int] | None, texts: dict[int, str]) -> str | None:
        """Read whose statement each entry of ``ids`` (None: every entry) is, and the application's texts (into
        ``texts``)."""
        every = ids is None or len(ids) > EVERY_LABEL
        params = {"every": every, "ids": [] if ids is None or every else ids}
        rows, error = await fetch_counted(conn, queries.STATEMENT_LABELS, band, errors, params, passed_on=PGSS_STATES)
        for r in rows or []:
            queryid, own = int(r["queryid"]), r["own"]
            self._own[(int(r["userid"]), queryid)] = own
            if own is None:
                texts.setdefault(queryid, unwrap_statement_text((r["query"] or "")[:self.text_length]))
        return error

class _Sums:
    """The application's counters summed per queryid (``_COUNTERS`` order); dbpulse's per component. An entry
    not labelled (new since the labels were read) waits for the next poll."""

    def __init__(self) -> None:
        self.app: dict[int, tuple[float, ...]] = {}
        self.own: dict[str, tuple[set[int], list[float]]] = {c: (set(), [0, 0.0]) for c in OWN_COMPONENTS}

    def add(self, who: str | None, queryid: int, r: Any) -> None:
        """One row (a named tuple of ``queries.STATEMENT_COUNTERS``) of ``who``'s (None: the application)."""
        if who is None:
            values = _counters(r)
            before = self.app.get(queryid)
            self.app[queryid] = values if before is None else tuple(map(operator.add, before, values))
        elif who in self.own:
            ids, sums = self.own[who]
            ids.add(queryid)
            sums[0] += r.calls or 0
            sums[1] += float(r.total_exec_time or 0) / 1000

    def own_statements(self) -> list[OwnStatements]:
        return [OwnStatements(c, len(ids), int(sums[0]), float(sums[1])) for c, (ids, sums) in self.own.items()]


_counters = operator.attrgetter(*_COUNTERS)
_UNLABELLED = "?"  # not a component: an entry new since the labels were read


def _stat(queryid: int, t: tuple[float, ...], query: str) -> StatementStat:
    """A ``StatementStat`` from counters in ``_COUNTERS`` order (times in ms, as pg_stat_statements has them)."""
    return StatementStat(queryid=queryid, query=query, calls=int(t[0]), exec_seconds=float(t[1]) / 1000,
                         rows=int(t[2]), blks_hit=int(t[3]), blks_read=int(t[4]), plan_seconds=float(t[5]) / 1000,
                         temp_blks_read=int(t[6]), temp_blks_written=int(t[7]), wal_bytes=float(t[8] or 0))


def read_statements(conn: psycopg.Connection[Any], version_num: int, limit: int | None,
                    text_length: int = WHOLE_TEXT) -> list[StatementStat]:
    """The application's statements of the current database (never dbpulse's own), heaviest (total execution
    time) first; sent as the advisor's."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT /* {ADVISOR_TAG} */ extversion FROM pg_extension WHERE extname = 'pg_stat_statements'"
                    .encode())
        found = cur.fetchone()
        band = queries.pgss_band(version_num, found["extversion"] if found else None)
        cur.execute(queries.STATEMENTS.required_sql(band, ADVISOR_TAG).encode(),
                    statements_params(text_length, limit))
        return to_stats(application_rows(cur.fetchall()))


def read_statements_reset(conn: psycopg.Connection[Any], version_num: int) -> datetime | None:
    """When pg_stat_statements was last reset (PG 14+), else None; sent as the advisor's."""
    sql = queries.STATEMENTS_RESET.sql(version_num, ADVISOR_TAG)
    if sql is None:
        return None
    row = conn.execute(sql.encode()).fetchone()
    return datetime.fromtimestamp(float(row[0]), UTC) if row and row[0] is not None else None


def deltas(current: list[StatementStat], previous: Mapping[int, StatementStat] | None) -> list[StatementStat]:
    """Counters since ``previous``; a statement whose counters went back was reset and counts whole."""
    if previous is None:
        return current
    out = []
    for stat in current:
        before = previous.get(stat.queryid)
        if before is None or stat.calls < before.calls:
            out.append(stat)
            continue
        calls = stat.calls - before.calls
        if calls > 0:
            out.append(StatementStat(
                stat.queryid, stat.query, calls, stat.exec_seconds - before.exec_seconds, stat.rows - before.rows,
                stat.blks_hit - before.blks_hit, stat.blks_read - before.blks_read,
                stat.plan_seconds - before.plan_seconds, stat.temp_blks_read - before.temp_blks_read,
                stat.temp_blks_written - before.temp_blks_written, stat.wal_bytes - before.wal_bytes,
            ))
    return out


def fingerprint(text: str) -> int | None:
    """pglast's fingerprint of a statement text: equal for texts that differ only in constants, parameters or
    the length of IN lists, and also (libpg_query groups partitions and shards) in the digits that end a
    table's name; None for a text that does not parse (cut short, for one)."""
    try:
        return int(pglast.fingerprint(text), 16)
    except Exception:  # pglast.parser.ParseError, or anything odd in the input
        return None


_NAME_KINDS = frozenset({"UNRESERVED_KEYWORD", "COL_NAME_KEYWORD", "TYPE_FUNC_NAME_KEYWORD"})  # usable as names


def variant_key(text: str) -> int | None:
    """Equal for variants of one statement: the same fingerprint and the same names (tables, columns, aliases,
    in order), so ``orders_2023`` and ``orders_2024``, one fingerprint, stay two statements. None for a text
    that does not parse."""
    found = fingerprint(text)
    if found is None:
        return None
    try:
        tokens = pglast.parser.scan(text)
    except Exception:  # pglast.parser.ParseError
        return None
    names = tuple(text[t.start:t.end + 1].lower() for t in tokens if t.name == "IDENT" or t.kind in _NAME_KINDS)
    return hash((found, names))


@dataclass(frozen=True)
class Variants:
    """Statements with one fingerprint, as one entry."""

    total: StatementStat  # every variant's counters added up, with the heaviest variant's queryid and text
    members: tuple[StatementStat, ...]  # heaviest (total execution time) first

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def queryids(self) -> list[int]:
        return [m.queryid for m in self.members]


def group_variants(stats: Iterable[StatementStat],
                   key_of: Callable[[StatementStat], int | None]) -> list[Variants]:
    """``stats`` grouped by ``key_of`` (``variant_key``; a statement without one stands alone), heaviest group
    first."""
    groups: dict[tuple[str, int], list[StatementStat]] = {}
    for stat in stats:
        found = key_of(stat)
        groups.setdefault(("queryid", stat.queryid) if found is None else ("fingerprint", found), []).append(stat)
    out = []
    for members in groups.values():
        members.sort(key=lambda m: (-m.exec_seconds, m.queryid))
        head = members[0]
        total = fold(members, StatementStat, queryid=head.queryid, query=head.query)
        assert total is not None
        out.append(Variants(total, tuple(members)))
    out.sort(key=lambda g: (-g.total.exec_seconds, g.total.queryid))
    return out
