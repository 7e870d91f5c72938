"""PostgreSQL poller: one connection per target, read-only, time-bounded, self-healing."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from collectors.base.kept import KeptConnectionPoller
from collectors.base.poller import Poller
from collectors.base.samples import OTHER
from collectors.base.topk import from_row
from collectors.postgres import health, queries, waits
from collectors.postgres.access import PasswordSource, current_password, session_kwargs
from collectors.postgres.databases import DatabaseSet, TopK
from collectors.postgres.query import MIN_SUPPORTED, Query, fetch_counted
from collectors.postgres.relations import RelationReader, Relations
from collectors.postgres.settings import PostgresSettings, PostgresTarget
from collectors.postgres.snapshot import DatabaseRow, PostgresSnapshot
from collectors.postgres.statements import (
    CollectorRead,
    CollectorStatements,
    OwnStatements,
    StatementStat,
    variant_key,
)
from collectors.postgres.triage import triage

log = logging.getLogger("dbpulse.postgres")


class _AbandonedQueryNoise(logging.Filter):
    """Drops psycopg's warnings about cancelling a query: dbpulse cancels one only when the scheduler has
    abandoned its poll at the timeout, which it has reported already ("timed out after ...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(("query cancellation", "query not terminated after cancellation"))


logging.getLogger("psycopg").addFilter(_AbandonedQueryNoise())

OTHERS_DEADLINE = 0.8  # the share of the poll timeout after which no other database's read goes on

PGSS_HINTS = {
    "not_installed": "run CREATE EXTENSION pg_stat_statements in the database",
    "not_preloaded": "add pg_stat_statements to shared_preload_libraries and restart PostgreSQL",
    "no_privilege": "GRANT pg_read_all_stats (or pg_monitor) to the dbpulse role",
}


def pollers(settings: PostgresSettings) -> list[Poller]:
    """One statistics poller per target. A password_file is read at start (so that an unreadable one is
    refused then) and again at each new connection (a rotated token is used once it is written)."""
    return [PostgresPoller(target, settings, target.password_source()) for target in settings.targets]


class PostgresPoller(KeptConnectionPoller[PostgresSnapshot]):
    source = "postgres"
    up_metric = "dbpulse_pg_up"

    def __init__(self, target: PostgresTarget, settings: PostgresSettings, password: PasswordSource = None) -> None:
        super().__init__(target, settings)
        self.settings = settings
        self._dsn = target.dsn
        self._password = password
        self._previous_db: dict[str, DatabaseRow] = {}
        # Every query's counter (health's too) exists from the start (at 0), so rate() works from the first error.
        self._query_errors: dict[str, int] = dict.fromkeys((q.name for q in queries.ALL), 0)
        self._pgss_state: str | None = None  # last reported pg_stat_statements problem
        self._rel_sizes: dict[int, float] = {}  # relid/indexrelid -> bytes
        self._db_sizes: dict[str, float] = {}
        self._sizes_read_at: float | None = None  # monotonic
        self._sizes_read_wall: float | None = None  # the same, wall clock: the table page says when
        self._health = health.HealthReader(self.target, settings, self._query_errors,
                                           settings.expected_standbys_of(target))
        self._track_planning: bool | None = None  # last reported pg_stat_statements.track_planning
        self._variant_keys: dict[int, int | None] = {}  # queryid -> variant_key, of the exported statements
        self._waits = waits.WaitReader(self.target, self._dsn, password, settings.wait_sample_interval,
                                       settings.wait_sampling, self._query_errors)
        self.databases = None if target.databases is None else DatabaseSet(
            self.target, target.dsn, target.databases,
            TopK(settings.top_tables, settings.top_indexes, settings.top_statements, target.databases.top_total,
                 settings.top_maintenance),
            self.timeout * 0.9, self._query_errors, password, settings.statement_text_length,
            settings.statement_text_info)
        self._relations = RelationReader(settings.top_tables, settings.top_indexes)
        self._statements = CollectorStatements(settings.statement_text_length, settings.top_statements)
        self._relations_read_at: float | None = None  # monotonic: every relation read (the size cadence)

    async def _connect(self) -> psycopg.AsyncConnection[dict[str, Any]]:
        # statement_timeout a bit below the poll timeout so the server cancels first.
        kwargs = session_kwargs(self.timeout * 0.9, password=current_password(self._password))
        return await psycopg.AsyncConnection.connect(self._dsn, row_factory=dict_row, **kwargs)

    def _reusable_after(self, conn: psycopg.AsyncConnection[dict[str, Any]], exc: BaseException) -> bool:
        """A query that failed leaves the session usable; a broken connection, or one in an unknown state, not."""
        if isinstance(exc, asyncio.CancelledError):
            # Abandoned at the timeout. A server that is merely slow has cancelled the query when psycopg asked
            # it to, and the session is idle again: kept, so the next poll need not reconnect. Otherwise (a
            # second cancel made psycopg close it, or it is mid-query) it is closed.
            return not conn.closed and not conn.broken and conn.pgconn.transaction_status == TransactionStatus.IDLE
        return isinstance(exc, Exception) and not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)

    async def close(self) -> None:
        await self._waits.close()
        await super().close()

    async def _fetch(self, conn: psycopg.AsyncConnection[dict[str, Any]], query: Query, version: int,
                     params: dict[str, Any] | None = None) -> list[dict[str, Any]] | None:
        """Run one statistics query; a non-fatal error is counted and the poll goes on."""
        rows, error = await fetch_counted(conn, query, version, self._query_errors, params)
        if error is not None:
            log.warning("%s: statistics query %s failed: %s", self.target, query.name, error)
        return rows

    async def _read(self, conn: psycopg.AsyncConnection[dict[str, Any]]) -> PostgresSnapshot:
        server_rows = await self._fetch(conn, queries.SERVER, MIN_SUPPORTED)
        if not server_rows:
            raise RuntimeError("could not read server settings")
        server = server_rows[0]
        version = int(server["version_num"])
        activity = await self._fetch(conn, queries.ACTIVITY, version) or []
        ages_rows = await self._fetch(conn, queries.ACTIVITY_AGES, version) or [{}]
        ages = ages_rows[0]
        databases = await self._fetch(conn, queries.DATABASES, version) or []
        now = time.monotonic()
        await self._refresh_sizes(conn, version, now)
        statements, own, pgss_ok = await self._read_statements(conn, server, version)
        top = statements.top or [] if statements else []
        reset = queries.STATEMENTS_RESET
        reset_rows = await self._fetch(conn, reset, version) if reset.available(version) and pgss_ok else None

        features = {
            "pg_stat_statements": pgss_ok,
            "read_all_stats": bool(server["read_all_stats"]),
            "hypopg": bool(server["hypopg_available"]),
        }
        await self._health.maintain(conn, version)
        relations = await self._read_relations(conn, version, now)
        server_health = await self._health.read(conn, version, features["read_all_stats"],
                                                int(ages.get("lock_waiting") or 0), relations.table_counts)
        features.update(server_health.features)
        features["track_planning"] = self._report_track_planning(server)
        variant_keys = await self._variant_keys_of(conn, version, top)
        wait_profile = await self._waits.read(conn, version, statements is not None, (s.queryid for s in top))
        features.update(waits.features(wait_profile))
        # other databases' turns stop short of the poll's deadline (the scheduler's timeout would lose the whole poll)
        deadline = self._poll_started + self.timeout * OTHERS_DEADLINE
        others = (await self.databases.read(conn, server, version, deadline) if self.databases is not None
                  else None)
        snapshot = PostgresSnapshot(
            target=self.target,
            datname=server["datname"],
            server_version=str(server["version"]).split()[0],
            max_connections=int(server["max_connections"]),
            reserved_connections=int(server.get("reserved_connections") or 0),
            features=features,
            connections=self._connections(activity),
            oldest_transaction_seconds=float(ages.get("oldest_xact") or 0),
            idle_in_transaction_oldest_seconds=float(ages.get("oldest_idle_in_xact") or 0),
            lock_waiting_sessions=int(ages.get("lock_waiting") or 0),
            databases=self._databases(databases),
            tables=relations.tables,
            tables_other=relations.tables_other,
            table_count=relations.table_count,
            indexes=relations.indexes,
            indexes_other=relations.indexes_other,
            index_count=relations.index_count,
            statements=top,
            statements_other=statements.other if statements else None,
            variant_keys=variant_keys,
            statement_count=statements.count + sum(o.statements for o in own) if statements else None,
            own_statements=own,
            statements_reset=(reset_rows[0]["stats_reset"] if reset_rows else None),
            sizes_read_at=self._sizes_read_wall,
            size_interval=self.settings.size_interval,
            query_errors=dict(self._query_errors),
            statement_text_info=self.settings.statement_text_info,
            app_pools=self._app_pools(activity),
            longest_active=self._longest_active(activity),
            track_planning=features["track_planning"],
            health=server_health,
            host=conn.info.host,
            port=conn.info.port,
            waits=wait_profile,
            others=others,
        )
        snapshot.attention = triage(snapshot)
        return snapshot

    async def _read_statements(
        self, conn: psycopg.AsyncConnection[dict[str, Any]], server: dict[str, Any], version: int
    ) -> tuple[CollectorRead | None, list[OwnStatements], bool]:
        """The application's statements (top-K and the rest added up) and dbpulse's own (added up per component),
        and whether they are whole."""
        problem: str | None = None
        read: CollectorRead | None = None
        if not server["pgss_installed"]:
            problem = "not_installed"
        else:
            # Not preloaded, or no privilege: a state of the server (one log line when it changes), not an error.
            try:
                read = await self._statements.read(conn, queries.pgss_band(version, server["pgss_version"]),
                                                   self._query_errors)
            except psycopg.errors.ObjectNotInPrerequisiteState:
                problem = "not_preloaded"
            except psycopg.errors.InsufficientPrivilege:
                problem = "no_privilege"
            else:
                if read.error is not None:
                    log.warning("%s: pg_stat_statements query failed: %s", self.target, read.error)
                    return None, [], False
        if read is not None and not server["read_all_stats"]:
            problem = "no_privilege"  # works, but only our own role's statements are visible
        self._report_pgss(problem)
        if read is None:
            return None, [], False
        return read, read.own, problem is None

    async def _variant_keys_of(self, conn: psycopg.AsyncConnection[dict[str, Any]], version: int,
                               top: list[StatementStat]) -> dict[int, int]:
        """The variant key of each exported statement, so the UI shows variants as one. A text cut at
        statement_text_length is read whole, once: a queryid's text does not change."""
        known = self._variant_keys
        new = [s for s in top if s.queryid not in known]
        cut = [s.queryid for s in new if len(s.query) >= self.settings.statement_text_length]
        whole: dict[int, str] = {}
        if cut:
            rows = await self._fetch(conn, queries.STATEMENT_TEXTS, version, {"ids": cut})
            if rows is None:
                cut_off = set(cut)
                new = [s for s in new if s.queryid not in cut_off]  # tried again next poll
            whole = {int(r["queryid"]): r["query"] for r in rows or []}
        for s in new:
            known[s.queryid] = variant_key(whole.get(s.queryid, s.query))
        self._variant_keys = {s.queryid: known[s.queryid] for s in top if s.queryid in known}
        return {q: found for q, found in self._variant_keys.items() if found is not None}

    async def _read_relations(self, conn: psycopg.AsyncConnection[dict[str, Any]], version: int,
                              now: float) -> Relations:
        """The top-K tables and indexes; every one of them on the size cadence (``relations.py``)."""
        at = self._relations_read_at
        full = at is None or now - at >= self.settings.size_interval

        async def fetch(query: Query, v: int, params: dict[str, Any] | None) -> list[dict[str, Any]] | None:
            return await self._fetch(conn, query, v, params)

        read = await self._relations.read(fetch, version, self._rel_sizes, self._health.thresholds, full)
        if read.full:
            self._relations_read_at = now
        return read

    async def _refresh_sizes(self, conn: psycopg.AsyncConnection[dict[str, Any]], version: int,
                             now: float) -> None:
        """Read sizes when they are older than size_interval (they cost a stat() per file)."""
        if self._sizes_read_at is not None and now - self._sizes_read_at < self.settings.size_interval:
            return
        rels = await self._fetch(conn, queries.SIZES, version)
        dbs = await self._fetch(conn, queries.DATABASE_SIZES, version)
        if rels is not None:
            self._rel_sizes = {int(r["relid"]): float(r["size_bytes"] or 0) for r in rels}
        if dbs is not None:
            self._db_sizes = {r["datname"]: float(r["size_bytes"]) for r in dbs}
        if rels is not None and dbs is not None:
            self._sizes_read_at, self._sizes_read_wall = now, time.time()

    def _report_pgss(self, problem: str | None) -> None:
        """One log line when the pg_stat_statements situation changes, not one per poll."""
        if problem == self._pgss_state:
            return
        if problem:
            log.warning("%s: pg_stat_statements statistics limited (%s): %s", self.target,
                        problem.replace("_", " "), PGSS_HINTS[problem])
        elif self._pgss_state is not None:
            log.info("%s: pg_stat_statements is now available", self.target)
        self._pgss_state = problem

    def _connections(self, rows: list[dict[str, Any]]) -> list[tuple[str, str, str, int]]:
        per_app: dict[str, int] = {}
        for r in rows:
            per_app[r["application_name"]] = per_app.get(r["application_name"], 0) + int(r["n"])
        top = set(sorted(per_app, key=lambda a: -per_app[a])[: self.settings.top_applications])
        grouped: dict[tuple[str, str, str], int] = {}
        for r in rows:
            app = r["application_name"] if r["application_name"] in top else OTHER
            key = (r["datname"], r["state"], app)
            grouped[key] = grouped.get(key, 0) + int(r["n"])
        return [(d, s, a, n) for (d, s, a), n in sorted(grouped.items())]

    def _report_track_planning(self, server: dict[str, Any]) -> bool:
        """Whether planning time is measured; one log line when that changes."""
        on = str(server["track_planning"]) == "on"
        if on != self._track_planning and server["pgss_installed"]:
            if not on:
                log.info("%s: statements' planning time is not measured: set pg_stat_statements.track_planning = on",
                         self.target)
            elif self._track_planning is not None:
                log.info("%s: statements' planning time is measured now", self.target)
            self._track_planning = on
        return on

    def _longest_active(self, rows: list[dict[str, Any]]) -> list[tuple[str, float]]:
        """The longest-running active statement of each application (the top ones; the rest as __other__)."""
        longest: dict[str, float] = {}
        for r in rows:
            if r.get("longest_active_seconds") is not None:
                app = r["application_name"]
                longest[app] = max(longest.get(app, 0.0), float(r["longest_active_seconds"]))
        top = sorted(longest, key=lambda a: (-longest[a], a))
        kept = {a: longest[a] for a in top[: self.settings.top_applications]}
        rest = [longest[a] for a in top[self.settings.top_applications:]]
        if rest:
            kept[OTHER] = max(rest)
        return [(app or "(none)", seconds) for app, seconds in sorted(kept.items())]

    def _app_pools(self, rows: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
        """Server connections of each configured application against its pool capacity."""
        out = []
        for pool in self.settings.app_pools:
            used = sum(int(r["n"]) for r in rows if r["application_name"] == pool.application_name and r["datname"])
            out.append((pool.application_name, used, pool.capacity))
        return out

    def _databases(self, rows: list[dict[str, Any]]) -> list[DatabaseRow]:
        out = []
        current: dict[str, DatabaseRow] = {}
        for r in rows:
            row = from_row(DatabaseRow, r, size_bytes=self._db_sizes.get(r["datname"]))
            current[row.datname] = row
            out.append(_with_hit_ratio(row, self._previous_db.get(row.datname)))
        self._previous_db = current
        return out




def _with_hit_ratio(row: DatabaseRow, previous: DatabaseRow | None) -> DatabaseRow:
    """Hit ratio over the last interval; none on the first poll, after a reset, or with no accesses."""
    if previous is None:
        return row
    hit = row.blks_hit - previous.blks_hit
    read = row.blks_read - previous.blks_read
    if hit < 0 or read < 0 or hit + read <= 0:
        return row
    return replace(row, cache_hit_ratio=hit / (hit + read))
