"""The large PostgreSQL the benchmarks run against.

A throwaway PostgreSQL 15 (``harness.servers.LocalPostgres``) with a
database ``bench`` of ``tables`` tables, each with a primary key and one
secondary index (2 indexes per table), a few rows each, and ``statements``
distinct statements recorded in ``pg_stat_statements`` (literals are
normalized away, so the statements differ by table and shape, not by value).

Each exporter logs in with its own ``pg_monitor`` role, so the database time
of each can be read per ``userid`` from ``pg_stat_statements``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg

from harness.servers import LocalPostgres

DBNAME = "bench"
PASSWORD = "bench-only"  # throwaway cluster on 127.0.0.1, gone when the benchmark ends
ROLES = ("dbpulse_bench", "pgexp_bench")
ROWS_PER_TABLE = 20
BATCH = 250  # tables per transaction: keeps the lock table small

# Distinct statement shapes; {t} is a table. Literals are normalized by
# pg_stat_statements, so each (table, shape) pair is one entry.
SHAPES = (
    "SELECT id, a FROM {t} WHERE a = 1",
    "SELECT count(*) FROM {t} WHERE b > 3",
    "SELECT id, a, b, c, d FROM {t} WHERE a = 2 AND c = 5",
    "UPDATE {t} SET c = c + 1 WHERE id = 7",
    "SELECT d FROM {t} ORDER BY created_at DESC LIMIT 10",
    "SELECT a, count(*) FROM {t} GROUP BY a",
    "SELECT id FROM {t} WHERE b = 4 AND created_at > now() - interval '1 day'",
    "SELECT max(c), min(b) FROM {t} WHERE a IN (1, 2, 3)",
    "DELETE FROM {t} WHERE id = -1",
    "SELECT x.id FROM {t} x WHERE x.d LIKE 'k%' ORDER BY x.id LIMIT 5",
)


def table_name(i: int) -> str:
    return f"t{i:05d}"


def schema_block(first: int, last: int) -> str:
    """One DO block creating tables first..last-1 with 2 indexes and a few rows each."""
    return f"""
DO $$
DECLARE t text;
BEGIN
  FOR i IN {first}..{last - 1} LOOP
    t := 't' || lpad(i::text, 5, '0');
    EXECUTE format('CREATE TABLE %I (id bigint PRIMARY KEY, a int NOT NULL, b int, c int, d text,
                    created_at timestamptz NOT NULL DEFAULT now())', t);
    EXECUTE format('CREATE INDEX %I ON %I (a, b)', t || '_a_b', t);
    EXECUTE format('INSERT INTO %I (id, a, b, c, d) SELECT g, g %% 7, g %% 11, g %% 13, ''k'' || g
                    FROM generate_series(1, {ROWS_PER_TABLE}) g', t);
  END LOOP;
END $$;
"""


def statement_texts(tables: int, statements: int) -> list[str]:
    """``statements`` distinct statements spread over the tables, shape by shape."""
    if statements > tables * len(SHAPES):
        raise ValueError(f"at most {tables * len(SHAPES)} distinct statements with {tables} tables")
    return [SHAPES[i // tables].format(t=table_name(i % tables)) for i in range(statements)]


@dataclass
class BigDatabase:
    server: LocalPostgres
    tables: int
    statements: int
    build_seconds: dict[str, float] = field(default_factory=dict)

    def dsn(self, role: str = "postgres") -> str:
        if role == "postgres":
            return self.server.dsn(DBNAME)
        return self.server.dsn(DBNAME, user=role, password=PASSWORD)

    def superuser(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.dsn(), autocommit=True)

    def version(self) -> str:
        with self.superuser() as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "unknown"

    def reset_statements(self) -> None:
        with self.superuser() as conn:
            conn.execute("SELECT pg_stat_statements_reset()")

    def run_workload(self) -> None:
        """Run every generated statement once, so each is one pg_stat_statements entry."""
        with self.superuser() as conn:
            conn.execute("SET application_name = 'bench_workload'")
            for sql in statement_texts(self.tables, self.statements):
                conn.execute(sql.encode())

    def counts(self) -> dict[str, int]:
        with self.superuser() as conn:
            row = conn.execute("""
                SELECT (SELECT count(*) FROM pg_stat_user_tables),
                       (SELECT count(*) FROM pg_stat_user_indexes),
                       (SELECT count(*) FROM pg_stat_statements
                        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()))
            """).fetchone()
        assert row is not None
        return {"tables": int(row[0]), "indexes": int(row[1]), "statements": int(row[2])}

    def statement_stats(self) -> dict[tuple[str, int], tuple[float, float, str]]:
        """Cumulative (ms, calls, text) of every top-level statement of the exporter roles.

        The benchmarks take the difference of two readings rather than resetting
        pg_stat_statements: a reset would also drop the 5,000 statements under test.
        """
        with self.superuser() as conn:
            rows = conn.execute("""
                SELECT r.rolname, s.queryid, (s.total_exec_time + s.total_plan_time)::float8, s.calls::float8,
                       left(regexp_replace(s.query, '\\s+', ' ', 'g'), 90)
                FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
                WHERE s.toplevel AND r.rolname = ANY(%s)
            """, (list(ROLES),)).fetchall()
        return {(str(r[0]), int(r[1])): (float(r[2]), float(r[3]), str(r[4])) for r in rows}


def stats_delta(before: dict[tuple[str, int], tuple[float, float, str]],
                after: dict[tuple[str, int], tuple[float, float, str]]) -> dict[str, list[dict[str, object]]]:
    """Per role, the statements that ran between two readings: ms and calls each, costliest first."""
    out: dict[str, list[dict[str, object]]] = {role: [] for role in ROLES}
    for (role, queryid), (ms, calls, text) in after.items():
        ms0, calls0, _ = before.get((role, queryid), (0.0, 0.0, ""))
        if calls > calls0:
            out[role].append({"query": text, "calls": int(calls - calls0), "total_ms": ms - ms0})
    for rows in out.values():
        rows.sort(key=lambda q: -float(q["total_ms"]))
    return out


def _build(db: BigDatabase) -> None:
    server = db.server
    started = time.perf_counter()
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {DBNAME}")
        for role in ROLES:
            conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
            conn.execute(f"GRANT pg_monitor TO {role}")
    with db.superuser() as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
        for first in range(0, db.tables, BATCH):
            conn.execute(schema_block(first, min(first + BATCH, db.tables)).encode())
        conn.execute("VACUUM ANALYZE")
        # The advisor EXPLAINs the application's statements: that needs SELECT on its tables
        # (pg_monitor alone gives "permission denied", and the statement is skipped as unplannable).
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO dbpulse_bench")
    db.build_seconds["schema"] = time.perf_counter() - started
    started = time.perf_counter()
    db.reset_statements()  # forget the DDL: only the workload's statements stay
    db.run_workload()
    db.build_seconds["workload"] = time.perf_counter() - started


@contextmanager
def big_database(tables: int = 2000, statements: int = 5000, pgss_max: int | None = None) -> Iterator[BigDatabase]:
    """A started, populated throwaway PostgreSQL; removed on exit. ``pgss_max``: pg_stat_statements.max (default
    twice the statements, at least 10,000)."""
    settings = {
        "pg_stat_statements.max": str(pgss_max or max(10000, statements * 2)),
        "shared_buffers": "'256MB'",
        "max_connections": "50",
    }
    server = LocalPostgres(settings=settings)
    server.start()
    try:
        db = BigDatabase(server, tables, statements)
        _build(db)
        yield db
    finally:
        server.cleanup()
