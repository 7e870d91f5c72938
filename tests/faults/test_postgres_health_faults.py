"""PostgreSQL health areas that cannot be read: each sets its feature to 0 and says once what to do,
the rest of the poll goes on, and nothing raises or logs per poll."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import psycopg
import pytest

from collectors.postgres.snapshot import PostgresSnapshot
from harness.servers import LocalPostgres
from tests.support import pg_poller


async def polls(dsn: str, n: int, name: str) -> list[PostgresSnapshot]:
    p = pg_poller(dsn, name=name, maintenance_interval=0)
    try:
        return [await p.poll() for _ in range(n)]
    finally:
        await p.close()


def lines(caplog: pytest.LogCaptureFixture, target: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"{target}: ")]


def off(snap: PostgresSnapshot) -> set[str]:
    return {f for f, on in snap.features.items() if not on}


def test_a_role_without_grants_gets_what_it_can_and_is_told_what_to_grant(
        fresh_db: str, pg_server: LocalPostgres, caplog: pytest.LogCaptureFixture) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS nobody_in_particular")
        conn.execute("CREATE ROLE nobody_in_particular LOGIN PASSWORD 'np-pw'")
        conn.execute("CREATE SEQUENCE order_numbers")
        conn.execute("CREATE TABLE big AS SELECT g AS id, md5(g::text) AS t FROM generate_series(1, 30000) g")
        conn.execute("ANALYZE big")
    dsn = pg_server.dsn(fresh_db.rsplit("/", 1)[1], "nobody_in_particular", "np-pw")
    with caplog.at_level(logging.INFO, logger="dbpulse"):
        snaps = asyncio.run(polls(dsn, 3, "plain"))
    for snap in snaps:
        assert {"replication", "autovacuum", "locks", "sequences", "bloat"} <= off(snap)
        assert {"replication_slots", "wraparound", "wal", "archiver"}.isdisjoint(off(snap))
        assert {q: n for q, n in snap.query_errors.items() if n} == {}
    said = lines(caplog, "plain")
    grants = [s for s in said if "unavailable" in s]
    # One line per distinct hint, on the first poll only: not one per poll, not one per feature.
    assert len(grants) == len(set(grants)) == 3, said
    assert any("replication, autovacuum, locks unavailable: GRANT pg_monitor" in s for s in grants), said
    assert any("sequences, bloat unavailable: GRANT pg_read_all_data" in s for s in grants), said
    assert any("io unavailable: pg_stat_io needs PostgreSQL 16" in s for s in grants), said

    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("GRANT pg_monitor, pg_read_all_data TO nobody_in_particular")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="dbpulse"):
        (granted,) = asyncio.run(polls(dsn, 1, "granted"))
    assert off(granted) <= {"io", "track_planning"}


@pytest.fixture
def own_server() -> Iterator[LocalPostgres]:
    server = LocalPostgres(settings={"max_connections": "10"})
    server.start()
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("CREATE ROLE watcher LOGIN PASSWORD 'watcher-pw' IN ROLE pg_monitor")
        conn.execute("SELECT pg_create_physical_replication_slot('kept', true)")
    yield server
    server.cleanup()


def test_a_failing_query_disables_its_feature_only(own_server: LocalPostgres,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """pg_replication_slots made unreadable: the slots feature goes to 0, its query errors are counted,
    one line says why, and every other area still reads; readable again, it comes back."""
    with psycopg.connect(own_server.dsn(), autocommit=True) as conn:
        conn.execute("REVOKE SELECT ON pg_replication_slots FROM PUBLIC")
    dsn = own_server.dsn("postgres", "watcher", "watcher-pw")
    with caplog.at_level(logging.INFO, logger="dbpulse"):
        snaps = asyncio.run(polls(dsn, 3, "db"))
    for i, snap in enumerate(snaps, 1):
        # pg_stat_statements is not created in this database, so no per-statement waits either
        assert off(snap) - {"io", "track_planning", "pg_stat_statements", "wait_statements"} == {"replication_slots"}
        assert snap.query_errors["replication_slots"] == i
        assert {q for q, n in snap.query_errors.items() if n} == {"replication_slots"}
        assert snap.health is not None and snap.health.replication is not None
        assert snap.health.replication.slots == [] and snap.health.wal is not None
    said = [s for s in lines(caplog, "db") if "replication_slots" in s]
    assert len(said) == 1 and "permission denied" in said[0], said

    with psycopg.connect(own_server.dsn(), autocommit=True) as conn:
        conn.execute("GRANT SELECT ON pg_replication_slots TO PUBLIC")
    (back,) = asyncio.run(polls(dsn, 1, "db"))
    assert "replication_slots" not in off(back)
    assert [s.slot_name for s in back.health.replication.slots] == ["kept"]  # type: ignore[union-attr]
