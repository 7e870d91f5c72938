"""A real primary and a streaming standby (pg_basebackup -R) with a slot nobody consumes: pause
replay to make real lag, stop the standby, promote it, lose a slot; after each step the metrics
say what happened, and promtool fixtures built from those very values fire the matching alerts.

PostgreSQL 15 (Debian's, whose pg_basebackup this is); the version tests run the same queries on
a standby of every major.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from collectors.base.samples import Sample
from collectors.postgres.poller import PostgresPoller
from collectors.postgres.snapshot import PostgresSnapshot
from harness.servers import LocalPostgres
from tests.integration.postgres.alert_fixtures import expect, run_fixture
from tests.integration.postgres.health_scenario import one, wait_for
from tests.support import pg_poller

LAG = 64 * 1024**2  # the PostgresReplicationLag threshold
REPLICATION = {
    "dbpulse_pg_up", "dbpulse_pg_in_recovery", "dbpulse_pg_replication_lag_bytes", "dbpulse_pg_replication_lag_seconds",
    "dbpulse_pg_replication_standby_state", "dbpulse_pg_replay_paused", "dbpulse_pg_replay_lag_seconds",
    "dbpulse_pg_replay_backlog_bytes", "dbpulse_pg_wal_receiver_streaming", "dbpulse_pg_replication_slot_active",
    "dbpulse_pg_replication_slot_retained_bytes", "dbpulse_pg_replication_slot_wal_status",
    "dbpulse_pg_feature_enabled", "dbpulse_pg_replication_connected_standbys",
    "dbpulse_pg_replication_expected_standbys",
}
WATCHED = ["PostgresReplicationLag", "PostgresStandbyReplayLag", "PostgresStandbyReplayPaused",
           "PostgresStandbyNotStreaming", "PostgresWalSenderNotStreaming", "PostgresReplicationSlotInactive",
           "PostgresReplicationSlotLost", "PostgresDown", "PostgresStandbyGone", "PostgresStandbysMissing"]


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[LocalPostgres, LocalPostgres]]:
    primary = LocalPostgres(settings={"max_wal_size": "'1GB'", "wal_keep_size": "0"})
    primary.start()
    standby = None
    try:
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            conn.execute("SELECT pg_create_physical_replication_slot('abandoned', true)")
            conn.execute("CREATE TABLE filler (id bigint, pad text)")
        standby = primary.standby(slot="standby", name="standby")
        standby.start()
        write_wal(primary, 1)  # a transaction for the standby to replay: its replay lag is dated by it
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            # The insert position: with synchronous_commit off the commit may not be written yet.
            target = one(conn, "SELECT pg_current_wal_insert_lsn()")
            wait_for("the standby to stream and replay it", lambda: one(
                conn, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND replay_lsn >= %s",
                (target,)))
        yield primary, standby
    finally:
        if standby is not None:
            standby.cleanup()
        primary.cleanup()


def write_wal(server: LocalPostgres, megabytes: int) -> None:
    """About ``megabytes`` MB of WAL (rows of 1 kB, full_page_writes off)."""
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("INSERT INTO filler SELECT g, repeat('x', 1000) FROM generate_series(1, %s) g",
                     (megabytes * 1000,))


def poll(*pollers: PostgresPoller) -> list[PostgresSnapshot]:
    async def all_of() -> list[PostgresSnapshot]:
        return list(await asyncio.gather(*(p.poll() for p in pollers)))
    return asyncio.run(all_of())


def close(*pollers: PostgresPoller) -> None:
    async def all_of() -> None:
        await asyncio.gather(*(p.close() for p in pollers))
    asyncio.run(all_of())


def values(snap: PostgresSnapshot, name: str) -> dict[tuple[str, ...], float]:
    return {s.labels: s.value for s in snap.samples() if s.name == name}


def down(target: str) -> list[Sample]:
    return [Sample("dbpulse_pg_up", (target,), 0.0)]


def test_paused_replay_and_an_abandoned_slot(servers: tuple[LocalPostgres, LocalPostgres], tmp_path: Path) -> None:
    primary, standby = servers
    pp, ps = pg_poller(primary.dsn(), name="primary", expected_standbys=1), pg_poller(standby.dsn(), name="standby")
    try:
        healthy_p, healthy_s = poll(pp, ps)
        assert values(healthy_p, "dbpulse_pg_replication_standby_state") == {("primary", "standby", "streaming"): 1}
        assert values(healthy_s, "dbpulse_pg_wal_receiver_streaming") == {("standby",): 1}
        assert values(healthy_s, "dbpulse_pg_replay_paused") == {("standby",): 0}
        with psycopg.connect(standby.dsn(), autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
        write_wal(primary, 100)
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            wait_for("the standby to flush what it cannot replay", lambda: one(
                conn, "SELECT pg_wal_lsn_diff(flush_lsn, replay_lsn) > %s FROM pg_stat_replication", (LAG,)))
        lagging_p, lagging_s = poll(pp, ps)
    finally:
        close(pp, ps)
        with psycopg.connect(standby.dsn(), autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")

    lag = values(lagging_p, "dbpulse_pg_replication_lag_bytes")
    assert lag[("primary", "standby", "replay")] > LAG > lag[("primary", "standby", "flush")]
    assert values(lagging_s, "dbpulse_pg_replay_paused") == {("standby",): 1}
    assert values(lagging_s, "dbpulse_pg_replay_backlog_bytes")[("standby",)] > LAG
    assert values(lagging_s, "dbpulse_pg_replay_lag_seconds")[("standby",)] > 0
    slots = values(lagging_p, "dbpulse_pg_replication_slot_active")
    assert slots == {("primary", "abandoned", "physical"): 0, ("primary", "standby", "physical"): 1}
    assert values(lagging_p, "dbpulse_pg_replication_slot_retained_bytes")[("primary", "abandoned", "physical")] > LAG
    assert any(a.problem == "replay is paused" for a in lagging_s.attention)

    # Ten minutes healthy, then the lag as it was measured, for forty.
    phases = [(healthy_p.samples() + healthy_s.samples(), 10), (lagging_p.samples() + lagging_s.samples(), 40)]
    run_fixture(tmp_path, "paused replay", phases, REPLICATION, eval_minutes=45, firing=[
        expect("PostgresReplicationLag", target="primary", standby="standby", stage="replay"),
        expect("PostgresStandbyReplayPaused", target="standby"),
        expect("PostgresReplicationSlotInactive", target="primary", slot="abandoned", slot_type="physical"),
    ], silent=[a for a in WATCHED if a not in {"PostgresReplicationLag", "PostgresStandbyReplayPaused",
                                                "PostgresReplicationSlotInactive"}])
    # Healthy values alone fire nothing but the abandoned slot, which was there from the start.
    healthy = (healthy_p.samples() + healthy_s.samples(), 50)
    run_fixture(tmp_path, "healthy pair", [healthy], REPLICATION, eval_minutes=45, firing=[
        expect("PostgresReplicationSlotInactive", target="primary", slot="abandoned", slot_type="physical"),
    ], silent=[a for a in WATCHED if a != "PostgresReplicationSlotInactive"])


def test_a_stopped_standby(servers: tuple[LocalPostgres, LocalPostgres], tmp_path: Path) -> None:
    """Stopped, it is seen from the primary too: gone from pg_stat_replication (PostgresStandbyGone, with or
    without a slot) and one fewer than postgres.expected_standbys (PostgresStandbysMissing, set on the section:
    the standby's own target is not held to it)."""
    primary, standby = servers
    pp, ps = pg_poller(primary.dsn(), name="primary", expected_standbys=1), \
        pg_poller(standby.dsn(), name="standby", expected_standbys=1)
    try:
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            target = one(conn, "SELECT pg_current_wal_insert_lsn()")
            wait_for("the standby to catch up", lambda: one(
                conn, "SELECT replay_lsn >= %s FROM pg_stat_replication", (target,)))
        before_p, before_s = poll(pp, ps)
        standby.stop()
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            wait_for("the sender to go", lambda: one(conn, "SELECT count(*) FROM pg_stat_replication") == 0)
        write_wal(primary, 2)  # the standby's slot now holds WAL nobody reads
        (after_p,) = poll(pp)
        with pytest.raises(psycopg.OperationalError):  # the scheduler sets it down; the primary's poll goes on
            poll(ps)
    finally:
        close(pp, ps)
        standby.start()

    assert not values(after_p, "dbpulse_pg_replication_standby_state")
    assert values(before_p, "dbpulse_pg_replication_connected_standbys") == {("primary",): 1}
    assert values(after_p, "dbpulse_pg_replication_connected_standbys") == {("primary",): 0}
    assert values(after_p, "dbpulse_pg_replication_expected_standbys") == {("primary",): 1}
    assert after_p.health is not None and after_p.health.replication is not None
    assert after_p.health.replication.gone == ["standby"]  # what the UI lists, from the poller's memory
    assert {a.subject for a in after_p.attention} >= {"standby standby", "standbys"}
    assert values(after_p, "dbpulse_pg_replication_slot_active")[("primary", "standby", "physical")] == 0
    assert values(after_p, "dbpulse_pg_replication_slot_retained_bytes")[("primary", "standby", "physical")] > 0
    assert {q: n for q, n in after_p.query_errors.items() if n} == {}
    phases = [(before_p.samples() + before_s.samples(), 10), (after_p.samples() + down("standby"), 40)]
    run_fixture(tmp_path, "stopped standby", phases, REPLICATION, eval_minutes=45, firing=[
        expect("PostgresDown", severity="critical", target="standby"),
        expect("PostgresStandbyGone", target="primary", standby="standby"),
        expect("PostgresStandbysMissing", target="primary"),
        expect("PostgresReplicationSlotInactive", target="primary", slot="standby", slot_type="physical"),
        expect("PostgresReplicationSlotInactive", target="primary", slot="abandoned", slot_type="physical"),
    ], silent=["PostgresReplicationLag", "PostgresStandbyNotStreaming", "PostgresReplicationSlotLost"])
    # Watched from the primary alone, with no slot to leave behind, the stopped standby still pages there.
    no_slots = {n for n in REPLICATION if not n.startswith("dbpulse_pg_replication_slot")}
    run_fixture(tmp_path, "stopped standby seen from the primary", [(before_p.samples(), 10), (after_p.samples(), 40)],
                no_slots, eval_minutes=45, firing=[
                    expect("PostgresStandbyGone", target="primary", standby="standby"),
                    expect("PostgresStandbysMissing", target="primary")],
                silent=["PostgresDown", "PostgresReplicationSlotInactive", "PostgresWalSenderNotStreaming"])


def test_promotion_and_a_lost_slot(servers: tuple[LocalPostgres, LocalPostgres], tmp_path: Path,
                                   caplog: pytest.LogCaptureFixture) -> None:
    """The standby is promoted under a poller that keeps its connection: no error, it reports a primary.
    Then the slots nobody uses lose their WAL past max_slot_wal_keep_size."""
    primary, standby = servers
    with psycopg.connect(primary.dsn(), autocommit=True) as conn:
        wait_for("the standby to stream again",
                 lambda: one(conn, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"))
    pp, ps = pg_poller(primary.dsn(), name="primary"), pg_poller(standby.dsn(), name="standby")
    try:
        (standing,) = poll(ps)
        with psycopg.connect(standby.dsn(), autocommit=True) as conn:
            assert one(conn, "SELECT pg_promote(true, 30)")
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="dbpulse"):
            (promoted,) = poll(ps)
            (again,) = poll(ps)
        said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("standby:")]
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
            conn.execute("SELECT pg_reload_conf()")
            for _ in range(3):
                write_wal(primary, 20)
                conn.execute("SELECT pg_switch_wal()")
            conn.execute("CHECKPOINT")
            wait_for("the slots to be lost", lambda: one(
                conn, "SELECT count(*) FROM pg_replication_slots WHERE wal_status = 'lost'") == 2)
        (lost,) = poll(pp)
    finally:
        close(pp, ps)
    assert values(standing, "dbpulse_pg_in_recovery") == {("standby",): 1}
    for snap in (promoted, again):
        assert values(snap, "dbpulse_pg_in_recovery") == {("standby",): 0}
        assert not values(snap, "dbpulse_pg_replay_paused") and not values(snap, "dbpulse_pg_wal_receiver_streaming")
        assert {q: n for q, n in snap.query_errors.items() if n} == {}
        assert {f for f, on in snap.features.items() if not on} <= {"io", "track_planning"}  # 15, defaults
    assert said == ["standby: left recovery (promoted): it is a primary now"]  # once, and nothing else
    status = values(lost, "dbpulse_pg_replication_slot_wal_status")
    assert status == {("primary", "abandoned", "physical", "lost"): 1, ("primary", "standby", "physical", "lost"): 1}
    assert not any(k[1] in ("abandoned", "standby") for k in values(lost, "dbpulse_pg_replication_slot_retained_bytes"))
    run_fixture(tmp_path, "lost slots", [(lost.samples(), 10)], REPLICATION, eval_minutes=5, firing=[
        expect("PostgresReplicationSlotLost", target="primary", slot=slot, slot_type="physical", wal_status="lost")
        for slot in ("abandoned", "standby")
    ], silent=["PostgresReplicationLag", "PostgresReplicationSlotInactive"])


def test_polls_survive_slots_dropped_while_they_read(servers: tuple[LocalPostgres, LocalPostgres]) -> None:
    """Slots created and dropped as fast as possible while a poller reads: every poll succeeds and never
    counts a query error (a slot that vanishes between two polls just vanishes from the metrics)."""
    primary, _ = servers
    p = pg_poller(primary.dsn(), name="primary", maintenance_interval=0)

    async def churn(stop: asyncio.Event) -> int:
        rounds = 0
        async with await psycopg.AsyncConnection.connect(primary.dsn(), autocommit=True) as conn:
            while not stop.is_set():
                await conn.execute("SELECT pg_create_physical_replication_slot('churn', true)")
                await conn.execute("SELECT pg_drop_replication_slot('churn')")
                rounds += 1
        return rounds

    async def run() -> tuple[int, list[PostgresSnapshot]]:
        stop = asyncio.Event()
        task = asyncio.create_task(churn(stop))
        snaps = []
        try:
            for _ in range(15):
                snaps.append(await p.poll())
        finally:
            stop.set()
            rounds = await task
            await p.close()
        return rounds, snaps

    rounds, snaps = asyncio.run(run())
    assert rounds > 15
    assert {q: n for q, n in snaps[-1].query_errors.items() if n} == {}
    assert all(s.features["replication_slots"] for s in snaps)


