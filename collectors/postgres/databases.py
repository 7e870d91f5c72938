"""A target's other databases (``postgres.targets[].databases``): discovered, read in turn, within a fixed cost.

The main poller reads the cluster-wide views and the DSN's database on its own connection, as without
discovery. ``DatabaseSet.read`` adds, on that same poll:

- discovery, every ``discovery_interval``: new databases are watched, dropped ones retired (their
  series go with them: a snapshot holds only the databases watched now);
- per-database reads, in turn through the databases (oldest read first, each at most every
  ``refresh_interval``) within ``budget`` seconds per poll on average (``_rotate``): a database's
  statements, from the main connection (``pg_stat_statements`` is cluster-wide; ``dbid`` picks it), then
  its tables, indexes and their sizes, and its maintenance reads (autovacuum's thresholds of its tables,
  its sequences, its bloat estimates, its tables oldest by frozen XID age: the DSN's database reads them
  every ``maintenance_interval``, the others in their turn), which need a session in it: a connection
  opened for the read and closed after it, at most ``concurrency`` at once, none held between polls.

Reading every database's statements on every poll was measured first (``bench/pg_databases.py``): with
10 databases of 1,000 statements, grouping and ranking 10,000 entries cost more than the whole poll of
one database, against the goal of 1.5x; so they rotate with the rest.

Each database's top-K is the section's (``top_tables``, ``top_indexes``, ``top_statements``,
``top_maintenance``), shrunk so that the databases together export at most ``top_total`` rows of each kind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from collectors.base.kept import close_now
from collectors.base.samples import OTHER, SampleList
from collectors.base.topk import fold, from_row, top_k_interleaved
from collectors.postgres import bloat as bloat_estimates
from collectors.postgres import queries
from collectors.postgres import sequences as sequence_usage
from collectors.postgres.access import (
    PasswordSource,
    current_password,
    error_line,
    session_kwargs,
)
from collectors.postgres.bloat import Bloat, BloatRow, top_bloat
from collectors.postgres.discovery import DISCOVERY, DatabaseSelection, Discovered, select
from collectors.postgres.health import THRESHOLD_FIELDS
from collectors.postgres.query import fetch_counted
from collectors.postgres.sequences import SequenceRow, top_sequences
from collectors.postgres.snapshot import IndexRow, TableRow, add_statement_series, add_table_series
from collectors.postgres.statements import (
    OwnStatements,
    StatementStat,
    application_rows,
    own_statements,
    to_stats,
)
from collectors.postgres.vacuum import OldestTableRow, add_oldest_tables

log = logging.getLogger("dbpulse.postgres")

QUERIES = (DISCOVERY, queries.DATABASE_STATEMENTS)
# Read in a session of each other database, in its turn.
PER_DATABASE = (queries.TABLES, queries.INDEXES, queries.SIZES, queries.AUTOVACUUM_THRESHOLDS, queries.SEQUENCES,
                queries.BLOAT, queries.OLDEST_TABLES)
BURST = 10  # polls' worth of budget that can be saved up for a read that costs more than one poll's
CONNECT = "database_connect"  # the query label counting failed connections to another database


@dataclass
class DatabaseStats:
    """One other database: its last per-database read, and its statements of the last poll."""

    datname: str
    oid: int
    tables: list[TableRow] = field(default_factory=list)
    tables_other: TableRow | None = None
    table_count: int | None = None  # None until its first read
    indexes: list[IndexRow] = field(default_factory=list)
    indexes_other: IndexRow | None = None
    index_count: int | None = None
    read_at: float | None = None  # wall clock of the last per-database read
    read_mono: float | None = None  # the same, the set's clock: when it is due again
    read_seconds: float | None = None  # how long that read took (connection included)
    statements: list[StatementStat] = field(default_factory=list)
    statements_other: StatementStat | None = None
    statement_count: int | None = None
    own: list[OwnStatements] = field(default_factory=list)
    sequences: list[SequenceRow] | None = None  # None until read (or when the read failed)
    bloat: Bloat | None = None
    oldest_tables: list[OldestTableRow] | None = None  # by frozen XID age (wraparound), top_maintenance of them


@dataclass(frozen=True)
class DatabasesPart:
    """What the other databases add to one poll's snapshot (copies: later polls never change it)."""

    databases: tuple[DatabaseStats, ...]
    watched: int  # the DSN's database included
    left_out: dict[str, int]
    refresh_interval: float = 0.0  # databases.refresh_interval: how often each one's tables are read
    track_planning: bool = False
    statement_text_info: bool = False

    def names(self) -> list[str]:
        return [d.datname for d in self.databases]

    def add_samples(self, out: SampleList) -> None:
        out.add("dbpulse_pg_databases_watched", self.watched)
        for reason in ("max", "not_found"):
            out.add("dbpulse_pg_databases_left_out", self.left_out.get(reason, 0), reason=reason)
        for d in self.databases:
            db = {"datname": d.datname}
            out.add("dbpulse_pg_database_read_timestamp_seconds", d.read_at, **db)
            out.add("dbpulse_pg_database_read_duration_seconds", d.read_seconds, **db)
            if d.table_count is not None:
                add_table_series(out, d.datname, d.table_count, d.index_count, (d.tables, d.tables_other),
                                 (d.indexes, d.indexes_other))
            if d.sequences is not None:
                sequence_usage.add_samples(out, d.sequences, d.datname)
            if d.bloat is not None:
                bloat_estimates.add_samples(out, d.bloat, d.datname)
            if d.oldest_tables is not None:
                add_oldest_tables(out, d.oldest_tables, d.datname)
            if d.statement_count is not None:
                add_statement_series(out, d.datname, d.statement_count, (d.statements, d.statements_other), d.own,
                                     self.track_planning, self.statement_text_info)



@dataclass(frozen=True)
class TopK:
    tables: int
    indexes: int
    statements: int
    total: int  # over every other database, of each kind
    maintenance: int = 20  # sequences, and tables and indexes by bloat (postgres.top_maintenance)

    def share(self, k: int, databases: int) -> int:
        """One database's K when ``databases`` share ``total``."""
        return max(1, min(k, self.total // max(1, databases)))


class DatabaseSet:
    """The other databases of one target (see the module's docstring)."""

    def __init__(self, target: str, dsn: str, selection: DatabaseSelection, top: TopK, timeout: float,
                 errors: dict[str, int], password: PasswordSource = None, text_length: int = 80,
                 text_info: bool = False) -> None:
        self.target = target
        self.selection = selection
        self.top = top
        self.clock: Callable[[], float] = time.monotonic  # tests drive cadences through it
        self._dsn = dsn
        self._password = password
        self._timeout = timeout
        self._text_length = text_length
        self._text_info = text_info
        self._errors = errors
        for name in (*(q.name for q in QUERIES), CONNECT, *(q.name for q in PER_DATABASE)):
            errors.setdefault(name, 0)
        self._dbs: dict[str, DatabaseStats] = {}
        self._left_out: dict[str, list[str]] = {}
        self._discovered_at: float | None = None
        self.credit = 0.0  # seconds of per-database reads the budget allows now (see _rotate)

    def discover_soon(self) -> None:
        """Look for new and dropped databases on the next poll (a connection to one failed)."""
        self._discovered_at = None

    async def read(self, conn: psycopg.AsyncConnection[dict[str, Any]], server: dict[str, Any],
                   version: int, deadline: float = float("inf")) -> DatabasesPart:
        """Discovery when due, then the due databases' reads until ``deadline`` (``time.monotonic()``): a read
        still going then is cut, and that database is read again in a later turn."""
        await self._discover(conn, version, str(server["datname"]))
        band = queries.pgss_band(version, server["pgss_version"]) if server["pgss_installed"] else None
        await self._rotate(conn, version, band, deadline)
        return DatabasesPart(
            databases=tuple(_copy(d) for d in sorted(self._dbs.values(), key=lambda d: d.datname)),
            watched=len(self._dbs) + 1, left_out={r: len(names) for r, names in self._left_out.items()},
            refresh_interval=self.selection.refresh_interval,
            track_planning=str(server["track_planning"]) == "on", statement_text_info=self._text_info)

    async def _discover(self, conn: psycopg.AsyncConnection[dict[str, Any]], version: int, own: str) -> None:
        now = self.clock()
        if self._discovered_at is not None and now - self._discovered_at < self.selection.discovery_interval:
            return
        rows, error = await fetch_counted(conn, DISCOVERY, version, self._errors)
        if rows is None:
            log.warning("%s: database discovery failed: %s", self.target, error)
            return
        self._discovered_at = now
        self._apply(select(rows, self.selection, own))

    def _apply(self, found: Discovered) -> None:
        gone = [n for n, d in self._dbs.items() if found.watched.get(n) != d.oid]  # dropped, or dropped and made anew
        new = [n for n in found.watched if n not in self._dbs or n in gone]
        for name in gone:
            del self._dbs[name]
        for name in new:
            self._dbs[name] = DatabaseStats(name, found.watched[name])
        if gone or new:
            log.info("%s: databases: %s", self.target, "; ".join(
                part for part in (f"watching {', '.join(sorted(new))}" if new else "",
                                  f"retired {', '.join(sorted(set(gone) - set(new)))}" if set(gone) - set(new) else "")
                if part))
        if found.left_out != self._left_out:
            for reason, names in found.left_out.items():
                log.warning("%s: databases left out (%s): %s", self.target,
                            f"over databases.max = {self.selection.max}" if reason == "max" else "no such database",
                            ", ".join(names))
        self._left_out = found.left_out

    async def _statements(self, conn: psycopg.AsyncConnection[dict[str, Any]], d: DatabaseStats, band: int) -> None:
        """One other database's statements, from the main connection: its top-K, the rest added up."""
        rows, error = await fetch_counted(conn, queries.DATABASE_STATEMENTS, band, self._errors,
                                          {"dbid": d.oid, "text_length": self._text_length})
        if rows is None:
            log.warning("%s: statements of database %s not read: %s", self.target, d.datname, error)
            return
        k = self.top.share(self.top.statements, len(self._dbs))
        application = sorted(to_stats(application_rows(rows)), key=lambda s: (-s.exec_seconds, s.queryid))
        d.statements = application[:k]
        d.statements_other = fold(application[k:], StatementStat, queryid=0, query=OTHER)
        d.statement_count, d.own = len(rows), own_statements(rows)

    def _due(self) -> list[DatabaseStats]:
        now = self.clock()
        due = [d for d in self._dbs.values()
               if d.read_mono is None or now - d.read_mono >= self.selection.refresh_interval]
        return sorted(due, key=lambda d: (d.read_mono is not None, d.read_mono or 0.0, d.datname))

    async def _rotate(self, conn: psycopg.AsyncConnection[dict[str, Any]], version: int, band: int | None,
                      deadline: float) -> None:
        """Read due databases, oldest first, ``concurrency`` at a time, within the budget: each poll adds
        ``budget`` seconds of credit (up to ``BURST`` polls' worth), a read starts while there is some and
        takes its time off, so over many polls the reads take ``budget`` per poll at most on average (one read
        more than the credit is paid back by the next polls). A read cut at the deadline is paid for too."""
        budget = self.selection.budget
        self.credit = min(self.credit + budget, budget * BURST)
        due = self._due()
        while due and self.credit > 0 and time.monotonic() < deadline:
            batch, due = due[:self.selection.concurrency], due[self.selection.concurrency:]
            started = time.monotonic()
            try:
                await asyncio.gather(*(self._read_one(conn, d, version, band, deadline) for d in batch))
            finally:
                self.credit -= time.monotonic() - started

    async def _read_one(self, main: psycopg.AsyncConnection[dict[str, Any]], d: DatabaseStats, version: int,
                        band: int | None, deadline: float) -> None:
        """One database's turn: its statements on the main connection, then its tables, indexes, sizes and
        maintenance reads on a connection to it, closed after the read. The second part stops at ``deadline``:
        the database is then due again (oldest read first) rather than at its next refresh."""
        started = time.monotonic()
        if band is not None:
            await self._statements(main, d, band)
        previous, d.read_mono = d.read_mono, self.clock()  # a failed read is tried again at the next refresh
        kwargs = session_kwargs(self._timeout, password=current_password(self._password))
        conn: psycopg.AsyncConnection[dict[str, Any]] | None = None
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                conn = await psycopg.AsyncConnection.connect(make_conninfo(self._dsn, dbname=d.datname),
                                                             row_factory=dict_row, **kwargs)
                k = self.top.share(self.top.maintenance, len(self._dbs))
                read = {q.name: (await fetch_counted(conn, q, version, self._errors,
                                                     {"limit": k} if q is queries.OLDEST_TABLES else None))[0]
                        for q in PER_DATABASE}
        except psycopg.OperationalError as exc:
            self._errors[CONNECT] += 1
            log.warning("%s: cannot connect to database %s: %s", self.target, d.datname, error_line(exc, self._dsn))
            self.discover_soon()  # dropped, perhaps
            return
        except TimeoutError:
            d.read_mono = previous
            log.warning("%s: the read of database %s did not end before the poll's deadline (%.1f s in): cut, "
                        "and read again in a later turn", self.target, d.datname, time.monotonic() - started)
            return
        finally:
            if conn is not None:
                close_now(conn)  # cut or done: nothing to wait for from the server
        tables, indexes, sizes = read["tables"], read["indexes"], read["sizes"]
        rel_sizes = {int(r["relid"]): float(r["size_bytes"] or 0) for r in sizes or []}
        thresholds = {int(r["relid"]): {f: r[f] for f in THRESHOLD_FIELDS} for r in read["autovacuum_thresholds"] or []}
        n = len(self._dbs)
        k = self.top.share(self.top.maintenance, n)
        if read["sequences"] is not None:
            d.sequences = top_sequences([from_row(SequenceRow, r) for r in read["sequences"]], k)
        if read["bloat"] is not None:
            d.bloat = top_bloat([from_row(BloatRow, r) for r in read["bloat"]], k)
        if read["oldest_tables"] is not None:
            d.oldest_tables = [from_row(OldestTableRow, r) for r in read["oldest_tables"]]
        if tables is not None:
            rows = [from_row(TableRow, r, size_bytes=rel_sizes.get(int(r["relid"])),
                             **thresholds.get(int(r["relid"]), {})) for r in tables]
            kept, rest = top_k_interleaved(rows, self.top.share(self.top.tables, n), lambda t: t.size_bytes or 0,
                                           lambda t: t.seq_scans + t.index_scans)
            d.tables, d.tables_other, d.table_count = kept, fold(rest, TableRow, schema=OTHER, table=OTHER), len(rows)
        if indexes is not None:
            rows_i = [from_row(IndexRow, r, size_bytes=rel_sizes.get(int(r["indexrelid"]))) for r in indexes]
            kept_i, rest_i = top_k_interleaved(rows_i, self.top.share(self.top.indexes, n),
                                               lambda i: i.size_bytes or 0, lambda i: i.scans)
            d.indexes, d.indexes_other = kept_i, fold(rest_i, IndexRow, schema=OTHER, table=OTHER, index=OTHER)
            d.index_count = len(rows_i)
        d.read_at, d.read_seconds = time.time(), time.monotonic() - started


def _copy(d: DatabaseStats) -> DatabaseStats:
    return DatabaseStats(**{name: getattr(d, name) for name in d.__dataclass_fields__})
