"""What in one PostgreSQL snapshot needs attention, worst first: the web UI's Health section.

The thresholds are the alerts' (``thresholds.py``, which the rules are held
to), so the page and Alertmanager agree; a few conditions the alerts leave to
dashboards (bloat, a missing privilege) are listed as ``info``. Values stay
numbers with a unit: the page formats them.
"""

from __future__ import annotations

import time

from collectors.base.attention import SEVERITY_RANK, Attention
from collectors.postgres import thresholds as alerts
from collectors.postgres.snapshot import PostgresSnapshot

# Shown, never alerted on.
ACTIVE_QUERY_SECONDS = 300.0
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
        if (s.replay_lag_bytes or 0) > alerts.REPLICATION_LAG.value:
            items.append(Attention("warning", "replication", f"standby {s.standby}", "replay lag",
                                   s.replay_lag_bytes, "bytes", alerts.REPLICATION_LAG.value,
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
        if (r.replay_lag_seconds or 0) > alerts.REPLAY_LAG.value:
            items.append(Attention("warning", "replication", "this standby", "replay lag", r.replay_lag_seconds,
                                   "seconds", alerts.REPLAY_LAG.value))
    for slot in r.slots:
        subject = f"{slot.slot_type} slot {slot.slot_name}"
        if slot.wal_status in ("lost", "unreserved"):
            items.append(Attention("warning", "replication", subject, f"slot WAL is {slot.wal_status}",
                                   advice="its consumer can no longer resume: rebuild it, then drop the slot"
                                   if slot.wal_status == "lost" else "it is about to be lost"))
        elif not slot.active and (slot.retained_bytes or 0) > alerts.SLOT_RETAINED.value:
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
            warning, overdue = alerts.WRAPAROUND_WARNING.value, alerts.FREEZE_OVERDUE.value * limits[kind]
            if ratio > warning:
                severity = "critical" if ratio > alerts.WRAPAROUND_CRITICAL.value else "warning"
                items.append(Attention(severity, "vacuum", f"database {d.datname}", f"{kind} wraparound approaching",
                                       ratio, "ratio", warning, "VACUUM (FREEZE) its oldest tables"))
            elif age > overdue:
                items.append(Attention("warning", "vacuum", f"database {d.datname}",
                                       f"{kind} age past autovacuum's freeze limit", age, "count",
                                       overdue, "what holds autovacuum back? (runbook)"))
    if v.vacuum_due and v.workers >= v.max_workers:
        items.append(Attention("warning", "vacuum", snap.datname, "every autovacuum worker is busy and tables wait",
                               v.vacuum_due, "count", None, "raise autovacuum_max_workers or the cost limit"))
    # The alert's first case as one poll sees it: past the threshold, no VACUUM for AUTOVACUUM_NAPTIMES
    # naptimes. A hot table past it that autovacuum vacuums every naptime is not listed.
    naptimes = alerts.AUTOVACUUM_NAPTIMES.value
    wait = naptimes * v.naptime_seconds if v.naptime_seconds else None
    waiting = [t for t in snap.tables if wait and t.autovacuum_enabled and t.vacuum_threshold is not None
               and t.dead_rows > t.vacuum_threshold and now - max(t.last_vacuum or 0, t.last_autovacuum or 0) > wait]
    for t in sorted(waiting, key=lambda t: -t.dead_rows / (t.vacuum_threshold or 1))[:SHOWN_PER_KIND]:
        items.append(Attention("warning", "vacuum", f"table {t.schema}.{t.table}",
                               f"dead rows past its autovacuum threshold, no VACUUM in {naptimes:g} naptimes",
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
        severe = b.blocked_total >= alerts.BLOCKED_SESSIONS.value or wait > alerts.LOCK_WAIT.value
        who = "prepared transaction" if b.pid == 0 else f"pid {b.pid} ({b.application_name or 'no application_name'})"
        items.append(Attention("warning" if severe else "info", "locks", who,
                               f"{b.state} session blocks {b.blocked_total} (longest wait)", wait, "seconds",
                               alerts.LOCK_WAIT.value, "end it if it is stuck: SELECT pg_terminate_backend(pid)"
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
    if total >= 10 and w.row.checkpoints_requested / total > alerts.CHECKPOINTS_REQUESTED.value:
        items.append(Attention("info", "wal", "checkpoints", "most checkpoints are requested, not timed (since reset)",
                               w.row.checkpoints_requested / total, "ratio", alerts.CHECKPOINTS_REQUESTED.value,
                               "raise max_wal_size"))
    return items


def _objects(snap: PostgresSnapshot) -> list[Attention]:
    health = snap.health
    if health is None:
        return []
    items = []
    for s in (health.sequences or [])[:SHOWN_PER_KIND]:
        if (s.used_ratio or 0) > alerts.SEQUENCE_USED.value:
            items.append(Attention("warning", "sequences", f"sequence {s.schema}.{s.sequence}", "range nearly used",
                                   s.used_ratio, "ratio", alerts.SEQUENCE_USED.value,
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
