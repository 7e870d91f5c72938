"""What the health reads cost: the expensive ones on their own cadence, the lock queries only while
someone waits (pg_stat_statements counts what dbpulse ran)."""

from __future__ import annotations

import psycopg

from collectors.postgres.settings import PostgresSettings
from harness.prometheus import duration_seconds
from tests.rules.promql_check import load_rule_groups
from tests.support import pg_poller


def calls(conn: psycopg.Connection, like: str) -> int:
    # pg_stat_statements is server-wide: count only this test's database, not other tests' pollers.
    row = conn.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE %s"
                       " AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
                       (like,)).fetchone()
    return int(row[0]) if row else 0


async def test_kept_reads_wait_for_their_own_interval(fresh_db: str) -> None:
    """Sequences on postgres.sequence_interval, the expensive reads on maintenance_interval: each on its own."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE ids AS integer")
        slow = pg_poller(fresh_db, maintenance_interval=3600, sequence_interval=3600)
        every = pg_poller(fresh_db, maintenance_interval=3600, sequence_interval=0)
        try:
            first = await slow.poll()
            conn.execute("SELECT setval('ids', 2000000000)")
            cached = await slow.poll()
            fresh = await every.poll()
            await every.poll()
        finally:
            await slow.close()
            await every.close()
        assert [s.used_ratio for s in first.health.sequences or []] == [0.0]  # type: ignore[union-attr]
        assert [s.used_ratio for s in cached.health.sequences or []] == [0.0]  # type: ignore[union-attr]
        assert [round(s.used_ratio or 0, 3) for s in fresh.health.sequences or []] == [0.931]  # type: ignore[union-attr]
        # Two polls each: the slow poller read sequences once, the other twice; the thresholds (a
        # maintenance read) once each, whatever the sequence cadence.
        assert calls(conn, "%pg_sequences%") == 3
        assert calls(conn, "%AS vac_scale%") == 2


def test_the_default_sequence_cadence_keeps_its_alert_prompt() -> None:
    """The read adds at most a tenth of the alert's own `for:` to its delay (it was 300 s on a 10 m `for:`)."""
    (rule,) = [r for g in load_rule_groups() for r in g["rules"] if r.get("alert") == "PostgresSequenceNearExhaustion"]
    assert PostgresSettings().sequence_interval <= 0.1 * duration_seconds(rule["for"])
    assert PostgresSettings().sequence_interval < PostgresSettings().maintenance_interval


async def test_lock_queries_run_only_while_someone_waits(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        p = pg_poller(fresh_db)
        try:
            for _ in range(3):
                snap = await p.poll()
        finally:
            await p.close()
        assert snap.health is not None and snap.health.locks.blockers == []
        assert calls(conn, "%pg_blocking_pids%") == 0 and calls(conn, "%NOT l.granted%") == 0
