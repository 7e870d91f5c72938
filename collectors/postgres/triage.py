"""What in one PostgreSQL snapshot needs attention, worst first: the web UI's Health section.

The thresholds are those of the alerts in ``rules/dbpulse-alerts.rules.yml``
(a test holds them together), so the page and Alertmanager agree; a few
conditions the alerts leave to dashboards (bloat, a missing privilege) are
listed as ``info``. Values stay numbers with a unit: the page formats them.
"""

from __future__ import annotations

import time

from collectors.base.attention import SEVERITY_RANK, Attention
from collectors.postgres.snapshot import PostgresSnapshot

# The alerts' thresholds (rules/dbpulse-alerts.rules.yml).
REPLICATION_LAG_BYTES = 64 * 1024**2  # PostgresReplicationLag
REPLAY_LAG_SECONDS = 300.0  # PostgresStandbyReplayLag
SLOT_RETAINED_BYTES = 0.0  # PostgresReplicationSlotInactive: any WAL held by an inactive slot
WRAPAROUND_WARNING = 0.5  # PostgresTransactionIdWraparound / PostgresMultixactIdWraparound
WRAPAROUND_CRITICAL = 0.75
FREEZE_OVERDUE = 1.2  # PostgresAutovacuumFreezeOverdue: age over autovacuum_freeze_max_age
AUTOVACUUM_NAPTIMES = 5  # PostgresAutovacuumNotKeepingUp: past its threshold, no VACUUM in that many naptimes
BLOCKED_SESSIONS = 5.0  # PostgresBlockingChain
LOCK_WAIT_SECONDS = 60.0  # PostgresLongLockWait
SEQUENCE_USED = 0.75  # PostgresSequenceNearExhaustion
CHECKPOINTS_REQUESTED_SHARE = 0.5  # PostgresCheckpointsTooFrequent
ACTIVE_QUERY_SECONDS = 300.0
# Shown, never alerted on.
BLOAT_BYTES = 1024**3
BLOAT_RATIO = 0.5
SHOWN_PER_KIND = 5  # rows of one kind (tables, sequences, ...) listed at most


def triage(snap: PostgresSnapshot, now: float | None = None) -> list[Attention]:
    """``now``: the time of the poll (epoch seconds), to date the tables' last VACUUM."""
    items: list[Attention] = []
    health = snap.health
    if health is not None:
        items += _replication(snap)
        items += _vacuum(snap, time.time() if now is None else now)
        items += _locks(snap)
        items += _wal(snap)
        items += _objects(snap)
        for feature, problem in sorted(health.problems.items()):
            if problem and feature not in health.absent:  # a view the version lacks is no problem to fix
                items.append(Attention("info", "access", feature, "not read", advice=problem))
    for app, seconds in snap.longest_active:
        if seconds > ACTIVE_QUERY_SECONDS:
            items.append(Attention("warning", "activity", app or "(no application_name)",
                                   "a statement has been running long", seconds, "seconds", ACTIVE_QUERY_SECONDS,
                                   "pg_cancel_backend() it if it is stuck; check its plan"))
    return sorted(items, key=lambda a: (SEVERITY_RANK[a.severity], -a.score, a.area, a.subject))


def _replication(snap: PostgresSnapshot) -> list[Attention]:
    r = snap.health.replication if snap.health else None
    if r is None:
        return []
    items = []
    for s in r.worst_senders():
        if s.state != "streaming":
            items.append(Attention("warning", "replication", f"standby {s.standby}", f"WAL sender is {s.state}",
                                   advice="see the standby's log; catchup that lasts means it cannot keep up"))
        if (s.replay_lag_bytes or 0) > REPLICATION_LAG_BYTES:
            items.append(Attention("warning", "replication", f"standby {s.standby}", "replay lag",
                                   s.replay_lag_bytes, "bytes", REPLICATION_LAG_BYTES,
                                   "is replay paused or the standby overloaded? (runbook: PostgresReplicationLag)"))
    for name in r.gone:
        items.append(Attention("warning", "replication", f"standby {name}", "no longer connected (it was this hour)",
                               advice="is it down or cut off? see its log (runbook: PostgresStandbyGone)"))
    if not r.in_recovery and r.expected_standbys is not None and r.connected_standbys < r.expected_standbys:
        items.append(Attention("warning", "replication", "standbys", "fewer connected than postgres.expected_standbys",
                               r.connected_standbys, "count", r.expected_standbys,
                               "which one is missing? (runbook: PostgresStandbysMissing)"))
    if r.in_recovery:
        if r.receiver_streaming == 0:
            items.append(Attention("warning", "replication", "this standby", "WAL receiver is not streaming",
                                   advice="is the primary reachable? see the standby's log"))
        if r.replay_paused:
            items.append(Attention("warning", "replication", "this standby", "replay is paused",
                                   r.replay_lag_seconds, "seconds", None, "SELECT pg_wal_replay_resume()"))
        if (r.replay_lag_seconds or 0) > REPLAY_LAG_SECONDS:
            items.append(Attention("warning", "replication", "this standby", "replay lag", r.replay_lag_seconds,
                                   "seconds", REPLAY_LAG_SECONDS))
    for slot in r.slots:
        subject = f"{slot.slot_type} slot {slot.slot_name}"
        if slot.wal_status in ("lost", "unreserved"):
            items.append(Attention("warning", "replication", subject, f"slot WAL is {slot.wal_status}",
                                   advice="its consumer can no longer resume: rebuild it, then drop the slot"
                                   if slot.wal_status == "lost" else "it is about to be lost"))
        elif not slot.active and (slot.retained_bytes or 0) > SLOT_RETAINED_BYTES:
            items.append(Attention("warning", "replication", subject, "inactive slot retains WAL",
                                   slot.retained_bytes, "bytes", None,
                                   "start its consumer, or pg_drop_replication_slot() it"))
    return items


def _vacuum(snap: PostgresSnapshot, now: float) -> list[Attention]:
    v = snap.health.vacuum if snap.health else None
    if v is None:
        return []
    items = []
    limits = {"xid": v.freeze_max_age, "multixact": v.multixact_freeze_max_age}
    for d in v.databases:
        for kind, age in v.ages(d).items():
            ratio = age / 2.0**31
            if ratio > WRAPAROUND_WARNING:
                severity = "critical" if ratio > WRAPAROUND_CRITICAL else "warning"
                items.append(Attention(severity, "vacuum", f"database {d.datname}", f"{kind} wraparound approaching",
                                       ratio, "ratio", WRAPAROUND_WARNING, "VACUUM (FREEZE) its oldest tables"))
            elif age > FREEZE_OVERDUE * limits[kind]:
                items.append(Attention("warning", "vacuum", f"database {d.datname}",
                                       f"{kind} age past autovacuum's freeze limit", age, "count",
                                       FREEZE_OVERDUE * limits[kind], "what holds autovacuum back? (runbook)"))
    if v.vacuum_due and v.workers >= v.max_workers:
        items.append(Attention("warning", "vacuum", snap.datname, "every autovacuum worker is busy and tables wait",
                               v.vacuum_due, "count", None, "raise autovacuum_max_workers or the cost limit"))
    # The alert's first case as one poll sees it: past the threshold, no VACUUM for AUTOVACUUM_NAPTIMES
    # naptimes. A hot table past it that autovacuum vacuums every naptime is not listed.
    wait = AUTOVACUUM_NAPTIMES * v.naptime_seconds if v.naptime_seconds else None
    waiting = [t for t in snap.tables if wait and t.autovacuum_enabled and t.vacuum_threshold is not None
               and t.dead_rows > t.vacuum_threshold and now - max(t.last_vacuum or 0, t.last_autovacuum or 0) > wait]
    for t in sorted(waiting, key=lambda t: -t.dead_rows / (t.vacuum_threshold or 1))[:SHOWN_PER_KIND]:
        items.append(Attention("warning", "vacuum", f"table {t.schema}.{t.table}",
                               f"dead rows past its autovacuum threshold, no VACUUM in {AUTOVACUUM_NAPTIMES} naptimes",
                               t.dead_rows, "count", t.vacuum_threshold,
                               "are the workers busy, or a lock held on it? (runbook: PostgresAutovacuumNotKeepingUp)"))
    return items


def _locks(snap: PostgresSnapshot) -> list[Attention]:
    locks = snap.health.locks if snap.health else None
    if locks is None:
        return []
    items = []
    for b in locks.blockers[:SHOWN_PER_KIND]:
        wait = b.longest_wait_seconds or 0.0
        severe = b.blocked_total >= BLOCKED_SESSIONS or wait > LOCK_WAIT_SECONDS
        who = "prepared transaction" if b.pid == 0 else f"pid {b.pid} ({b.application_name or 'no application_name'})"
        items.append(Attention("warning" if severe else "info", "locks", who,
                               f"{b.state} session blocks {b.blocked_total} (longest wait)", wait, "seconds",
                               LOCK_WAIT_SECONDS, "end it if it is stuck: SELECT pg_terminate_backend(pid)"
                               if b.pid else "COMMIT PREPARED or ROLLBACK PREPARED it (pg_prepared_xacts)",
                               query=b.query))
    return items


def _wal(snap: PostgresSnapshot) -> list[Attention]:
    w = snap.health.wal if snap.health else None
    if w is None:
        return []
    items = []
    if w.archiving and w.archiver_failing:
        items.append(Attention("warning", "wal", "archiver", "archive_command fails", w.row.failed_count, "count",
                               None, "see the server log for the archive_command error"))
    total = w.row.checkpoints_timed + w.row.checkpoints_requested
    if total >= 10 and w.row.checkpoints_requested / total > CHECKPOINTS_REQUESTED_SHARE:
        items.append(Attention("info", "wal", "checkpoints", "most checkpoints are requested, not timed (since reset)",
                               w.row.checkpoints_requested / total, "ratio", CHECKPOINTS_REQUESTED_SHARE,
                               "raise max_wal_size"))
    return items


def _objects(snap: PostgresSnapshot) -> list[Attention]:
    health = snap.health
    if health is None:
        return []
    items = []
    for s in (health.sequences or [])[:SHOWN_PER_KIND]:
        if (s.used_ratio or 0) > SEQUENCE_USED:
            items.append(Attention("warning", "sequences", f"sequence {s.schema}.{s.sequence}", "range nearly used",
                                   s.used_ratio, "ratio", SEQUENCE_USED,
                                   "ALTER the column (and the sequence) to bigint before it runs out"))
    if health.bloat is not None:
        bloated = [b for b in (*health.bloat.tables, *health.bloat.indexes)
                   if (b.bloat_bytes or 0) > BLOAT_BYTES or ((b.bloat_ratio or 0) > BLOAT_RATIO
                                                             and (b.bloat_bytes or 0) > 64 * 1024**2)]
        for b in bloated[:SHOWN_PER_KIND]:
            name = f"index {b.schema}.{b.index}" if b.index else f"table {b.schema}.{b.table}"
            items.append(Attention("info", "bloat", name, f"estimated bloat ({(b.bloat_ratio or 0) * 100:.0f} %)",
                                   b.bloat_bytes, "bytes", None,
                                   "REINDEX CONCURRENTLY" if b.index else "pg_repack, or VACUUM FULL in a quiet hour"))
    return items
