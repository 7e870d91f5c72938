"""PostgreSQL poller: one connection per target, read-only, time-bounded, self-healing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from collectors.postgres import queries
from collectors.postgres.session import session_kwargs, unwrap_statement_text
from collectors.postgres.snapshot import DatabaseRow, IndexRow, PostgresSnapshot, StatementRow, TableRow
from collectors.postgres.topk import top_k_interleaved
from monitor.poller import Poller
from monitor.redact import redact
from monitor.samples import OTHER, Sample, SampleList

log = logging.getLogger("dbpulse.postgres")

PGSS_HINTS = {
    "not_installed": "run CREATE EXTENSION pg_stat_statements in the database",
    "not_preloaded": "add pg_stat_statements to shared_preload_libraries and restart PostgreSQL",
    "no_privilege": "GRANT pg_read_all_stats (or pg_monitor) to the dbpulse role",
}


QUERY_NAMES = ("server", "activity", "activity_ages", "databases", "tables", "indexes", "sizes",
               "database_sizes", "statements", "statements_reset")


@dataclass(frozen=True)
class PostgresOptions:
    top_statements: int = 100
    top_tables: int = 50
    top_indexes: int = 100
    top_applications: int = 20
    statement_text_info: bool = False
    statement_text_length: int = 80
    app_pools: tuple[tuple[str, int], ...] = ()  # (application_name, pool capacity)
    size_interval: float = 300.0  # seconds between reads of relation and database sizes


class PostgresPoller(Poller):
    source = "postgres"

    def __init__(
        self,
        target: str,
        dsn: str,
        interval: float,
        timeout: float,
        options: PostgresOptions | None = None,
        password: str | None = None,
    ) -> None:
        self.target = target
        self.interval = interval
        self.timeout = timeout
        self.options = options or PostgresOptions()
        self._dsn = dsn
        self._password = password
        self._conn: psycopg.AsyncConnection[dict[str, Any]] | None = None
        self._previous_db: dict[str, DatabaseRow] = {}
        # Every counter exists from the start (at 0), so rate() works from the first error.
        self._query_errors: dict[str, int] = dict.fromkeys(QUERY_NAMES, 0)
        self._pgss_state: str | None = None  # last reported pg_stat_statements problem
        self._rel_sizes: dict[int, float] = {}  # relid/indexrelid -> bytes
        self._db_sizes: dict[str, float] = {}
        self._sizes_read_at: float | None = None  # monotonic

    async def _connection(self) -> psycopg.AsyncConnection[dict[str, Any]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            await self._drop_connection()
            # statement_timeout a bit below the poll timeout so the server cancels first.
            kwargs = session_kwargs(self.timeout * 0.9, password=self._password)
            self._conn = await psycopg.AsyncConnection.connect(self._dsn, row_factory=dict_row, **kwargs)
        return self._conn

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            # Closing a broken connection may fail; it is gone either way.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 1.0)

    async def close(self) -> None:
        await self._drop_connection()

    def down_samples(self) -> list[Sample]:
        out = SampleList(target=self.target)
        out.add("dbpulse_pg_up", 0)
        return out.samples

    async def poll(self) -> PostgresSnapshot:
        try:
            conn = await self._connection()
            return await self._read(conn)
        except (asyncio.CancelledError, psycopg.OperationalError, psycopg.InterfaceError):
            # A cancelled or broken poll leaves the connection in an unknown state.
            await self._drop_connection()
            raise

    async def _fetch(self, conn: psycopg.AsyncConnection[dict[str, Any]], name: str, sql: str,
                     params: dict[str, Any] | None = None) -> list[dict[str, Any]] | None:
        """Run one statistics query; a non-fatal error is counted and the poll goes on."""
        try:
            cur = await conn.execute(sql.encode(), params)
            return await cur.fetchall()
        except psycopg.Error as exc:
            if conn.broken or conn.closed:
                raise
            self._query_errors[name] = self._query_errors.get(name, 0) + 1
            log.warning("%s: statistics query %s failed: %s", self.target, name,
                        redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__))
            return None

    async def _read(self, conn: psycopg.AsyncConnection[dict[str, Any]]) -> PostgresSnapshot:
        server_rows = await self._fetch(conn, "server", queries.SERVER[queries.MIN_SUPPORTED])
        if not server_rows:
            raise RuntimeError("could not read server settings")
        server = server_rows[0]
        version = int(server["version_num"])

        def sql(bands: Mapping[int, str | None]) -> str | None:
            return queries.pick(bands, version)

        activity = await self._fetch(conn, "activity", sql(queries.ACTIVITY) or "") or []
        ages_rows = await self._fetch(conn, "activity_ages", sql(queries.ACTIVITY_AGES) or "") or [{}]
        ages = ages_rows[0]
        databases = await self._fetch(conn, "databases", sql(queries.DATABASES) or "") or []
        tables = await self._fetch(conn, "tables", sql(queries.TABLES) or "") or []
        indexes = await self._fetch(conn, "indexes", sql(queries.INDEXES) or "") or []
        await self._refresh_sizes(conn, version)
        statements, pgss_ok = await self._read_statements(conn, server, version)
        reset_sql = sql(queries.STATEMENTS_RESET)
        reset_rows = await self._fetch(conn, "statements_reset", reset_sql) if reset_sql and pgss_ok else None

        features = {
            "pg_stat_statements": pgss_ok,
            "read_all_stats": bool(server["read_all_stats"]),
            "hypopg": bool(server["hypopg_available"]),
        }
        table_rows, table_count = self._top_tables(tables)
        index_rows, index_count = self._top_indexes(indexes)
        return PostgresSnapshot(
            target=self.target,
            datname=server["datname"],
            server_version=str(server["version"]).split()[0],
            max_connections=int(server["max_connections"]),
            features=features,
            connections=self._connections(activity),
            oldest_transaction_seconds=float(ages.get("oldest_xact") or 0),
            idle_in_transaction_oldest_seconds=float(ages.get("oldest_idle_in_xact") or 0),
            lock_waiting_sessions=int(ages.get("lock_waiting") or 0),
            databases=self._databases(databases),
            tables=table_rows,
            table_count=table_count,
            indexes=index_rows,
            index_count=index_count,
            statements=statements[0] if statements else [],
            statement_count=statements[1] if statements else None,
            statements_reset=(reset_rows[0]["stats_reset"] if reset_rows else None),
            query_errors=dict(self._query_errors),
            statement_text_info=self.options.statement_text_info,
            app_pools=self._app_pools(activity),
        )

    async def _read_statements(
        self, conn: psycopg.AsyncConnection[dict[str, Any]], server: dict[str, Any], version: int
    ) -> tuple[tuple[list[StatementRow], int] | None, bool]:
        problem: str | None = None
        rows: list[dict[str, Any]] | None = None
        if not server["pgss_installed"]:
            problem = "not_installed"
        else:
            try:
                cur = await conn.execute(
                    (queries.pick(queries.STATEMENTS, version) or "").encode(),
                    {"text_length": self.options.statement_text_length},
                )
                rows = await cur.fetchall()
            except psycopg.errors.ObjectNotInPrerequisiteState:
                problem = "not_preloaded"
            except psycopg.errors.InsufficientPrivilege:
                problem = "no_privilege"
            except psycopg.Error as exc:
                if conn.broken or conn.closed:
                    raise
                self._query_errors["statements"] = self._query_errors.get("statements", 0) + 1
                log.warning("%s: pg_stat_statements query failed: %s", self.target, redact(str(exc)))
                return None, False
        if rows is not None and not server["read_all_stats"]:
            problem = "no_privilege"  # works, but only our own role's statements are visible
        self._report_pgss(problem)
        if rows is None:
            return None, False
        return self._top_statements(rows), problem is None

    async def _refresh_sizes(self, conn: psycopg.AsyncConnection[dict[str, Any]], version: int) -> None:
        """Read sizes when they are older than size_interval (they cost a stat() per file)."""
        now = time.monotonic()
        if self._sizes_read_at is not None and now - self._sizes_read_at < self.options.size_interval:
            return
        rels = await self._fetch(conn, "sizes", queries.pick(queries.SIZES, version) or "")
        dbs = await self._fetch(conn, "database_sizes", queries.pick(queries.DATABASE_SIZES, version) or "")
        if rels is not None:
            self._rel_sizes = {int(r["relid"]): float(r["size_bytes"] or 0) for r in rels}
        if dbs is not None:
            self._db_sizes = {r["datname"]: float(r["size_bytes"]) for r in dbs}
        if rels is not None and dbs is not None:
            self._sizes_read_at = now

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
        top = set(sorted(per_app, key=lambda a: -per_app[a])[: self.options.top_applications])
        grouped: dict[tuple[str, str, str], int] = {}
        for r in rows:
            app = r["application_name"] if r["application_name"] in top else OTHER
            key = (r["datname"], r["state"], app)
            grouped[key] = grouped.get(key, 0) + int(r["n"])
        return [(d, s, a, n) for (d, s, a), n in sorted(grouped.items())]

    def _app_pools(self, rows: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
        """Server connections of each configured application against its pool capacity."""
        out = []
        for app, capacity in self.options.app_pools:
            used = sum(int(r["n"]) for r in rows if r["application_name"] == app and r["datname"])
            out.append((app, used, capacity))
        return out

    def _databases(self, rows: list[dict[str, Any]]) -> list[DatabaseRow]:
        out = []
        current: dict[str, DatabaseRow] = {}
        for r in rows:
            row = DatabaseRow(
                datname=r["datname"], xact_commit=float(r["xact_commit"]),
                xact_rollback=float(r["xact_rollback"]), blks_hit=float(r["blks_hit"]),
                blks_read=float(r["blks_read"]), deadlocks=float(r["deadlocks"]),
                temp_bytes=float(r["temp_bytes"]),
                size_bytes=self._db_sizes.get(r["datname"]),
                stats_reset=r["stats_reset"],
            )
            current[row.datname] = row
            out.append(_with_hit_ratio(row, self._previous_db.get(row.datname)))
        self._previous_db = current
        return out

    def _top_tables(self, rows: list[dict[str, Any]]) -> tuple[list[TableRow], int]:
        tables = [
            TableRow(
                schema=r["schemaname"], table=r["relname"], seq_scans=float(r["seq_scan"] or 0),
                index_scans=float(r["idx_scan"] or 0), live_rows=float(r["n_live_tup"] or 0),
                dead_rows=float(r["n_dead_tup"] or 0), size_bytes=self._rel_sizes.get(int(r["relid"])),
                last_vacuum=r["last_vacuum"], last_autovacuum=r["last_autovacuum"],
                last_analyze=r["last_analyze"], last_autoanalyze=r["last_autoanalyze"],
            )
            for r in rows
        ]
        kept, rest = top_k_interleaved(
            tables, self.options.top_tables, lambda t: t.size_bytes or 0, lambda t: t.seq_scans + t.index_scans
        )
        if rest:
            kept.append(TableRow(
                schema=OTHER, table=OTHER, seq_scans=sum(t.seq_scans for t in rest),
                index_scans=sum(t.index_scans for t in rest), live_rows=sum(t.live_rows for t in rest),
                dead_rows=sum(t.dead_rows for t in rest), size_bytes=sum(t.size_bytes or 0 for t in rest),
            ))
        return kept, len(tables)

    def _top_indexes(self, rows: list[dict[str, Any]]) -> tuple[list[IndexRow], int]:
        indexes = [
            IndexRow(schema=r["schemaname"], table=r["relname"], index=r["indexrelname"],
                     scans=float(r["idx_scan"] or 0), size_bytes=self._rel_sizes.get(int(r["indexrelid"])))
            for r in rows
        ]
        kept, rest = top_k_interleaved(
            indexes, self.options.top_indexes, lambda i: i.size_bytes or 0, lambda i: i.scans
        )
        if rest:
            kept.append(IndexRow(schema=OTHER, table=OTHER, index=OTHER, scans=sum(i.scans for i in rest),
                                 size_bytes=sum(i.size_bytes or 0 for i in rest)))
        return kept, len(indexes)

    def _top_statements(self, rows: list[dict[str, Any]]) -> tuple[list[StatementRow], int]:
        statements = [
            StatementRow(queryid=r["queryid"], calls=r["calls"] or 0, exec_seconds=r["exec_seconds"] or 0,
                         rows=r["rows"] or 0, blks_hit=r["blks_hit"] or 0, blks_read=r["blks_read"] or 0,
                         query=unwrap_statement_text(r["query"] or ""))
            for r in rows
        ]
        statements.sort(key=lambda s: s.exec_seconds, reverse=True)
        kept, rest = statements[: self.options.top_statements], statements[self.options.top_statements:]
        if rest:
            kept.append(StatementRow(
                queryid=OTHER, calls=sum(s.calls for s in rest),
                exec_seconds=sum(s.exec_seconds for s in rest),
                rows=sum(s.rows for s in rest), blks_hit=sum(s.blks_hit for s in rest),
                blks_read=sum(s.blks_read for s in rest),
            ))
        return kept, len(statements)


def _with_hit_ratio(row: DatabaseRow, previous: DatabaseRow | None) -> DatabaseRow:
    """Hit ratio over the last interval; none on the first poll, after a reset, or with no accesses."""
    if previous is None:
        return row
    hit = row.blks_hit - previous.blks_hit
    read = row.blks_read - previous.blks_read
    if hit < 0 or read < 0 or hit + read <= 0:
        return row
    return DatabaseRow(**{**row.__dict__, "cache_hit_ratio": hit / (hit + read)})
