"""PostgreSQL faults with a running service: restarts, locks, resets, exhausted slots."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from harness.servers import LocalPostgres
from tests.support import DbpulseProcess

DBPULSE_SESSIONS = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbpulse'"


@pytest.fixture
def own_server() -> Iterator[LocalPostgres]:
    """A server this test may stop, restart or starve, without disturbing the shared one."""
    server = LocalPostgres(settings={"max_connections": "8", "superuser_reserved_connections": "2"})
    server.start()
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("CREATE ROLE watcher LOGIN PASSWORD 'watcher-pw' IN ROLE pg_monitor")
        conn.execute("CREATE ROLE app LOGIN PASSWORD 'app-pw'")
    yield server
    server.cleanup()


def count(server: LocalPostgres, sql: str = DBPULSE_SESSIONS) -> int:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
        assert row is not None
        return int(row[0])


def test_restart_mid_run_recovers_without_leaking_connections(own_server: LocalPostgres) -> None:
    dsn = own_server.dsn("postgres", "watcher", "watcher-pw")
    with DbpulseProcess("--postgres", f"db={dsn}", "--interval", "1") as svc:
        svc.wait_for("dbpulse_source_up", 1, target="db")
        own_server.stop()
        assert svc.get("/metrics")[0] == 200
        svc.wait_for("dbpulse_source_up", 0, timeout=20, target="db")
        assert svc.value("dbpulse_pg_up", target="db") == 0
        own_server.start()
        svc.wait_for("dbpulse_source_up", 1, timeout=30, target="db")  # reconnects by itself
        assert svc.get("/healthz")[0] == 200
        for _ in range(3):
            time.sleep(1)
            assert count(own_server) == 1


def test_application_table_locks_never_stall_polls(own_server: LocalPostgres) -> None:
    """The application holds ACCESS EXCLUSIVE on a table (ALTER TABLE, REINDEX...): polls go on."""
    with psycopg.connect(own_server.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE busy (id int PRIMARY KEY)")
        conn.execute("CREATE INDEX busy_idx ON busy (id)")
    with DbpulseProcess("--postgres", f"db={own_server.dsn()}", "--interval", "0.5") as svc:
        holder = psycopg.connect(own_server.dsn())
        holder.execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
        try:
            def totals() -> tuple[float, float, float]:
                metrics = svc.metrics()
                return (svc.value("dbpulse_source_polls_total", target="db") or 0,
                        svc.value("dbpulse_source_poll_errors_total", target="db") or 0,
                        sum((metrics.get("dbpulse_pg_query_errors_total") or {}).values()))
            polls, poll_errors, query_errors = totals()
            time.sleep(3)
            polls_after, poll_errors_after, query_errors_after = totals()
            # Nothing queued behind the lock: a statistics query that had would have hit lock_timeout.
            assert polls_after - polls >= 2
            assert (poll_errors_after, query_errors_after) == (poll_errors, query_errors)
            assert svc.value("dbpulse_source_up", target="db") == 1
            assert svc.value("dbpulse_pg_table_size_bytes", target="db", table="busy") is not None
        finally:
            holder.rollback()
            holder.close()


def test_blocked_statistics_queries_are_cut_counted_and_retried(own_server: LocalPostgres) -> None:
    """A lock on pg_database blocks pg_stat_activity and pg_stat_database: each statistics query
    gives up at lock_timeout (and the next one waits anew), the failure is counted, scrapes are
    answered while a poll waits, and the first poll after the release succeeds."""
    with DbpulseProcess("--postgres", f"db={own_server.dsn()}", "--interval", "2") as svc:
        svc.wait_for("dbpulse_source_up", 1, target="db")
        observer = psycopg.connect(own_server.dsn(), autocommit=True)
        # Lock waits (only dbpulse's sessions wait here), each told apart by its backend and the moment
        # it began to wait. pg_locks alone: pg_stat_activity reads pg_database, which is about to be locked.
        waits = "SELECT pid, waitstart FROM pg_locks WHERE NOT granted"
        observer.execute(waits).fetchall()  # warm the observer's caches before the catalog is locked
        holder = psycopg.connect(own_server.dsn())
        holder.execute("LOCK TABLE pg_catalog.pg_database IN ACCESS EXCLUSIVE MODE")
        seen: set[tuple[object, ...]] = set()
        answered_during_a_wait = 0
        try:
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline:
                before = set(map(tuple, observer.execute(waits).fetchall()))
                assert svc.get("/metrics")[0] == 200
                after = set(map(tuple, observer.execute(waits).fetchall()))
                answered_during_a_wait += bool(before & after)  # the same wait went on around the scrape
                seen |= before | after
                time.sleep(0.2)
        finally:
            holder.rollback()
            holder.close()
            observer.close()
        assert answered_during_a_wait >= 1  # a scrape never waits for the database
        assert len(seen) >= 2  # waits end (lock_timeout) and later queries wait anew: none waits for good
        errors = sum((svc.metrics().get("dbpulse_pg_query_errors_total") or {}).values())
        polls_failed = svc.value("dbpulse_source_poll_errors_total", target="db") or 0
        assert errors + polls_failed >= 1
        svc.wait_for("dbpulse_source_up", 1, timeout=20, target="db")
        assert count(own_server) == 1


def test_statistics_resets_between_polls_stay_sane(own_server: LocalPostgres) -> None:
    with psycopg.connect(own_server.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 5000) g")
    with DbpulseProcess("--postgres", f"db={own_server.dsn()}", "--interval", "1") as svc:
        with psycopg.connect(own_server.dsn(), autocommit=True) as conn:
            for _ in range(5):
                conn.execute("SELECT sum(id) FROM t").fetchone()
            conn.execute("SELECT pg_stat_force_next_flush()")
            time.sleep(2.2)
            reset_before = svc.value("dbpulse_pg_statements_reset_timestamp_seconds", target="db")
            conn.execute("SELECT pg_stat_statements_reset()")
            conn.execute("SELECT pg_stat_reset()")
            conn.execute("SELECT pg_stat_force_next_flush()")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            reset_after = svc.value("dbpulse_pg_statements_reset_timestamp_seconds", target="db")
            if reset_after and reset_before and reset_after > reset_before:
                break
            time.sleep(0.2)
        assert reset_before is not None and reset_after is not None and reset_after > reset_before
        reset_db = svc.value("dbpulse_pg_database_stats_reset_timestamp_seconds", target="db", datname="postgres")
        assert reset_db is not None and reset_db > time.time() - 30
        for _ in range(3):
            metrics = svc.metrics()
            for ratio in metrics.get("dbpulse_pg_database_cache_hit_ratio", {}).values():
                assert 0.0 <= ratio <= 1.0
            for name, series in metrics.items():
                if name.endswith("_total"):
                    assert all(v >= 0 for v in series.values()), name
            time.sleep(1)


def test_exhausted_max_connections_is_clear_and_recovers(own_server: LocalPostgres) -> None:
    dsn = own_server.dsn("postgres", "watcher", "watcher-pw")
    # 8 slots, 2 reserved for superusers: six ordinary sessions fill the server.
    hogs = [psycopg.connect(own_server.dsn("postgres", "app", "app-pw")) for _ in range(6)]
    try:
        with DbpulseProcess("--postgres", f"db={dsn}", "--interval", "1") as svc:
            assert svc.value("dbpulse_source_up", target="db") == 0
            assert "remaining connection slots are reserved" in svc.log or "too many clients" in svc.log
            hogs.pop().close()
            svc.wait_for("dbpulse_source_up", 1, timeout=20, target="db")
            assert "recovered" in svc.log
    finally:
        for hog in hogs:
            hog.close()


def test_sessions_take_only_access_share_locks(fresh_db: str, pg_server: LocalPostgres) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        for i in range(30):
            conn.execute(f"CREATE TABLE t{i} (id int PRIMARY KEY, v int)")
            conn.execute(f"CREATE INDEX ON t{i} (v)")
    seen: set[str] = set()
    stop = threading.Event()

    def sample_locks() -> None:
        with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
            while not stop.is_set():
                rows = conn.execute(
                    "SELECT l.mode FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                    "WHERE a.application_name LIKE 'dbpulse%' AND l.locktype = 'relation'").fetchall()
                seen.update(r[0] for r in rows)

    sampler = threading.Thread(target=sample_locks)
    sampler.start()
    try:
        with DbpulseProcess("--postgres", f"db={fresh_db}", "--interval", "0.2") as svc:
            time.sleep(3)
            assert (svc.value("dbpulse_source_polls_total", target="db") or 0) >= 10
    finally:
        stop.set()
        sampler.join()
    assert seen, "no lock of dbpulse's sessions was ever sampled"
    assert seen == {"AccessShareLock"}
