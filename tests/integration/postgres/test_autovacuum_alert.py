"""Autovacuum that does not keep up, planted on a real server and polled for real: a table it cannot
lock (it skips it, never vacuumed) and a table whose dead rows it cannot remove (a REPEATABLE READ
snapshot holds the xmin horizon; it vacuums the table every naptime, in vain). The polls, stretched
60 times (autovacuum_naptime 1 s plays its default minute; a poll every 0.5 s plays one every 30 s),
put PostgresAutovacuumNotKeepingUp into pending on both, each by its own case. The healthy side (a hot
table autovacuum keeps cleaning) is the soak's (tests/e2e/test_soak.py), at the real sample density.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from collectors.base.samples import Sample
from collectors.postgres.snapshot import PostgresSnapshot
from harness.servers import LocalPostgres
from tests.integration.postgres.alert_fixtures import expect, run_fixture, stretched
from tests.integration.postgres.health_scenario import one, wait_for
from tests.support import pg_poller

STRETCH = 60
NAMES = {"dbpulse_pg_table_dead_rows", "dbpulse_pg_table_autovacuum_threshold_rows",
         "dbpulse_pg_table_last_vacuum_timestamp_seconds", "dbpulse_pg_table_vacuums_total",
         "dbpulse_pg_autovacuum_naptime_seconds"}


@pytest.fixture
def server() -> Iterator[LocalPostgres]:
    pg = LocalPostgres(settings={"autovacuum_naptime": "1"})
    pg.start()
    try:
        yield pg
    finally:
        pg.cleanup()


def poll_for(dsn: str, seconds: float) -> list[tuple[list[Sample], float]]:
    """A poll every 0.5 s (thresholds read every poll), with the wall time of each."""
    async def polls() -> list[tuple[PostgresSnapshot, float]]:
        p = pg_poller(dsn, name="db", maintenance_interval=0)
        out = []
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                started = time.monotonic()
                out.append((await p.poll(), time.time()))
                await asyncio.sleep(max(0.0, 0.5 - (time.monotonic() - started)))
        finally:
            await p.close()
        return out
    return [(snap.samples(), at) for snap, at in asyncio.run(polls())]


def test_a_table_autovacuum_cannot_lock_and_one_it_cannot_clean(server: LocalPostgres, tmp_path: Path) -> None:
    dsn = server.dsn()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in ("stuck", "held"):
            conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v int)".encode())
            conn.execute(f"INSERT INTO {table} SELECT g, 0 FROM generate_series(1, 1000) g".encode())
            conn.execute(f"VACUUM ANALYZE {table}".encode())  # thresholds 50 + 0.2 x 1000 = 250
    holder = psycopg.connect(dsn)  # autovacuum skips a table it cannot lock at once
    holder.execute("LOCK TABLE stuck IN SHARE UPDATE EXCLUSIVE MODE")
    snapshot = psycopg.connect(dsn)  # and removes no row version this snapshot might still see
    snapshot.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    snapshot.execute("SELECT 1")
    stop = threading.Event()

    def updates() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute("UPDATE held SET v = v + 1 WHERE id = (random() * 999)::int + 1")
                time.sleep(0.005)

    writer = threading.Thread(target=updates)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE stuck SET v = 1 WHERE id <= 600")
            writer.start()
            wait_for("autovacuum to have vacuumed held in vain", lambda: one(
                conn, "SELECT autovacuum_count >= 1 AND n_dead_tup > 250 FROM pg_stat_user_tables"
                      " WHERE relname = 'held'"))
        polls = poll_for(dsn, 24)  # 24 minutes: the second case needs 20 of history
        with psycopg.connect(dsn, autocommit=True) as conn:
            counts = dict(conn.execute("SELECT relname, autovacuum_count FROM pg_stat_user_tables").fetchall())
    finally:
        stop.set()
        if writer.is_alive():
            writer.join(10)
        holder.close()
        snapshot.close()
    assert counts["stuck"] == 0 and counts["held"] >= 10, counts  # skipped; vacuumed every naptime

    phases = stretched(polls, STRETCH)
    end = sum(minutes for _, minutes in phases) - 2  # the last poll's minute
    run_fixture(tmp_path, "autovacuum not keeping up", phases, NAMES, eval_minutes=end, firing=[],
                silent=["PostgresAutovacuumNotKeepingUp"],  # pending; firing is its hour later
                pending=[expect("PostgresAutovacuumNotKeepingUp", target="db", datname="postgres", schema="public",
                                table=table) for table in ("stuck", "held")])
