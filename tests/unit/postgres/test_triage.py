"""The Health section's list: past the alerts' thresholds (collectors/postgres/thresholds.py), worst first."""

from __future__ import annotations

from collectors.postgres import thresholds, triage
from collectors.postgres.health import ServerHealth
from collectors.postgres.locks import BlockerRow, Locks
from collectors.postgres.replication import ReceiverRow, Replication, SenderRow, SlotRow
from collectors.postgres.sequences import SequenceRow
from collectors.postgres.snapshot import PostgresSnapshot, TableRow
from collectors.postgres.vacuum import FrozenAgeRow, Vacuum


def snapshot(health: ServerHealth, tables: list[TableRow] | None = None) -> PostgresSnapshot:
    return PostgresSnapshot(target="t", datname="app", server_version="17.10", max_connections=100, features={},
                            connections=[], oldest_transaction_seconds=0, idle_in_transaction_oldest_seconds=0,
                            lock_waiting_sessions=0, databases=[], tables=tables or [], table_count=0, indexes=[],
                            index_count=0, statements=[], statement_count=0, statements_reset=None,
                            query_errors={}, health=health, longest_active=[("report", 900.0)])


def test_worst_first_and_only_what_needs_attention() -> None:
    health = ServerHealth(
        replication=Replication(in_recovery=False, slots=[
            SlotRow("gone", "physical", wal_status="lost"), SlotRow("ok", "physical", active=True, retained_bytes=1e6),
            SlotRow("idle", "logical", retained_bytes=5e9, wal_status="reserved")]),
        vacuum=Vacuum(200e6, 400e6, 1, 3, databases=[FrozenAgeRow("app", 0.8 * 2**31), FrozenAgeRow("calm", 1e6),
                                                      FrozenAgeRow("slow", 0.55 * 2**31)]),
        locks=Locks(blockers=[BlockerRow(4242, "billing", "idle in transaction", 30.0, 1, 7, 95.0, "UPDATE x")]),
        wal=None,
        sequences=[SequenceRow("public", "ids", used_ratio=0.9), SequenceRow("public", "fine", used_ratio=0.1)],
        bloat=None, problems={"sequences": None, "io": "pg_stat_io needs PostgreSQL 16 or later",
                              "locks": "GRANT pg_monitor TO the dbpulse role"},
        absent={"io": 16})  # the server's version has no pg_stat_io: nothing to fix
    items = triage.triage(snapshot(health))
    assert [(a.severity, a.subject) for a in items][:1] == [("critical", "database app")]
    subjects = [a.subject for a in items]
    for expected in ("database slow", "physical slot gone", "logical slot idle", "pid 4242 (billing)",
                     "sequence public.ids", "report", "locks"):
        assert expected in subjects, subjects
    for quiet in ("database calm", "physical slot ok", "sequence public.fine", "io"):
        assert quiet not in subjects
    severities = [triage.SEVERITY_RANK[a.severity] for a in items]
    assert severities == sorted(severities)
    warnings = [a for a in items if a.severity == "warning"]
    assert [a.score for a in warnings] == sorted((a.score for a in warnings), reverse=True)


NOW = 1_700_000_000.0


def test_a_table_waits_for_autovacuum_only_when_no_vacuum_came_for_five_naptimes() -> None:
    """The alert's first case: a hot table past its threshold but vacuumed every naptime is not listed."""
    def table(name: str, dead: float, vacuumed_ago: float | None, manual_ago: float | None = None) -> TableRow:
        return TableRow("public", name, dead_rows=dead, vacuum_threshold=51.0,
                        last_autovacuum=None if vacuumed_ago is None else NOW - vacuumed_ago,
                        last_vacuum=None if manual_ago is None else NOW - manual_ago)

    tables = [table("hot", 1500, 35), table("stuck", 900, 400), table("never", 800, None),
              table("cron", 900, 4000, manual_ago=60), table("clean", 10, 4000)]
    health = ServerHealth(replication=None, vacuum=Vacuum(200e6, 400e6, 1, 3, naptime_seconds=60.0), locks=Locks(),
                          wal=None, sequences=None, bloat=None, problems={})
    items = triage.triage(snapshot(health, tables), now=NOW)
    assert [a.subject for a in items if a.area == "vacuum"] == ["table public.stuck", "table public.never"]
    assert all("5 naptimes" in a.problem and a.limit == 51.0 for a in items if a.area == "vacuum")
    slow = ServerHealth(replication=None, vacuum=Vacuum(200e6, 400e6, 1, 3, naptime_seconds=600.0), locks=Locks(),
                        wal=None, sequences=None, bloat=None, problems={})
    assert [a.subject for a in triage.triage(snapshot(slow, tables), now=NOW) if a.area == "vacuum"] == \
        ["table public.never"]  # 400 s is not 5 naptimes of 10 minutes


def test_standbys_gone_or_fewer_than_expected() -> None:
    def health(in_recovery: bool, senders: list[str], expected: int | None, gone: list[str]) -> ServerHealth:
        return ServerHealth(replication=Replication(in_recovery=in_recovery, senders=[
            SenderRow(n, state="streaming") for n in senders], expected_standbys=expected, gone=gone),
            vacuum=None, locks=Locks(), wal=None, sequences=None, bloat=None, problems={})

    items = triage.triage(snapshot(health(False, ["replica2", "pg_basebackup"], 2, ["replica1"])))
    assert [(a.subject, a.value, a.limit) for a in items if a.area == "replication"] == [
        ("standbys", 1, 2), ("standby replica1", None, None)]
    assert not [a for a in triage.triage(snapshot(health(False, ["a", "b"], 2, []))) if a.area == "replication"]
    standby = [a.subject for a in triage.triage(snapshot(health(True, [], 2, []))) if a.area == "replication"]
    assert standby == ["this standby"]  # its receiver (no ReceiverRow here); a standby has no count to keep


def test_replication_lag_is_listed_past_the_alerts_threshold_not_at_it() -> None:
    """The page and the alert share one number (thresholds.py): at it, quiet; past it, listed with it."""
    lag, replay = thresholds.REPLICATION_LAG.value, thresholds.REPLAY_LAG.value

    def lagging(extra: float) -> list[tuple[str, float | None, float | None]]:
        primary = ServerHealth(replication=Replication(in_recovery=False, senders=[
            SenderRow("replica", state="streaming", replay_lag_bytes=lag + extra)]),
            vacuum=None, locks=Locks(), wal=None, sequences=None, bloat=None, problems={})
        standby = ServerHealth(replication=Replication(in_recovery=True, replay_lag_seconds=replay + extra,
                                                       receiver=ReceiverRow(status="streaming")),
                               vacuum=None, locks=Locks(), wal=None, sequences=None, bloat=None, problems={})
        return [(a.problem, a.value, a.limit) for h in (primary, standby) for a in triage.triage(snapshot(h))
                if a.problem == "replay lag"]

    assert lagging(0) == []
    assert lagging(1) == [("replay lag", lag + 1, lag), ("replay lag", replay + 1, replay)]
