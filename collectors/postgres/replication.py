"""Replication as one PostgreSQL poll read it: the server's role, its standbys, its slots.

Row types are named like the columns of their SQL in ``queries.py``
(``REPLICATION_SENDERS``, ``WAL_RECEIVER``, ``REPLICATION_SLOTS``,
``DATABASE_CONFLICTS``); ``add_samples`` is the only place their metrics are named.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.base.samples import SampleList

UNNAMED = "unnamed"  # a WAL sender without application_name (a label value may not be empty)
BASE_BACKUP = "pg_basebackup"  # the application_name pg_basebackup gives its connections
CONFLICT_REASONS = ("tablespace", "lock", "snapshot", "bufferpin", "deadlock", "active_logicalslot")


@dataclass(frozen=True)
class SenderRow:
    """One WAL sender of this server (a standby, pg_basebackup, pg_receivewal)."""

    application_name: str
    state: str = "unknown"
    sync_state: str = "unknown"
    sent_lag_bytes: float | None = None
    write_lag_bytes: float | None = None
    flush_lag_bytes: float | None = None
    replay_lag_bytes: float | None = None
    write_lag_seconds: float | None = None
    flush_lag_seconds: float | None = None
    replay_lag_seconds: float | None = None
    reply_age_seconds: float | None = None

    @property
    def standby(self) -> str:
        return self.application_name or UNNAMED

    @property
    def is_backup(self) -> bool:
        """A base backup (and the WAL stream it opens with -X stream): it ends by design, not a standby."""
        return self.state == "backup" or self.application_name == BASE_BACKUP

    def lag_seconds(self, stage: str) -> float | None:
        """The lag, or 0 when it is NULL because the standby caught up and nothing is written."""
        seconds: float | None = getattr(self, f"{stage}_lag_seconds")
        if seconds is None and getattr(self, f"{stage}_lag_bytes") == 0:
            return 0.0
        return seconds


@dataclass(frozen=True)
class ReceiverRow:
    status: str | None = None  # None: hidden from a role without pg_read_all_stats
    last_msg_age_seconds: float | None = None


@dataclass(frozen=True)
class SlotRow:
    slot_name: str
    slot_type: str
    temporary: bool = False
    active: bool = False
    wal_status: str | None = None
    safe_wal_size_bytes: float | None = None
    retained_bytes: float | None = None
    confirmed_lag_bytes: float | None = None
    xmin_age: float | None = None


@dataclass(frozen=True)
class ConflictRow:
    datname: str
    confl_tablespace: float = 0.0
    confl_lock: float = 0.0
    confl_snapshot: float = 0.0
    confl_bufferpin: float = 0.0
    confl_deadlock: float = 0.0
    confl_active_logicalslot: float | None = None  # 16+


@dataclass
class Replication:
    in_recovery: bool
    replay_paused: bool | None = None  # standby only
    replay_backlog_bytes: float | None = None  # received, not replayed
    replay_lag_seconds: float | None = None  # 0 when everything received is replayed
    receiver: ReceiverRow | None = None  # standby only; None: no WAL receiver runs
    senders: list[SenderRow] = field(default_factory=list)
    slots: list[SlotRow] = field(default_factory=list)
    conflicts: list[ConflictRow] = field(default_factory=list)  # standby only
    expected_standbys: int | None = None  # postgres.expected_standbys (of the target), when set
    gone: list[str] = field(default_factory=list)  # standbys connected in the last hour, not now

    @property
    def receiver_streaming(self) -> int | None:
        """1 streaming, 0 not (or no receiver at all), None unknown (status hidden from this role)."""
        if self.receiver is None:
            return 0
        return None if self.receiver.status is None else int(self.receiver.status == "streaming")

    def worst_senders(self) -> list[SenderRow]:
        """One sender per standby name, the one furthest behind (names need not be unique)."""
        by_name: dict[str, SenderRow] = {}
        for sender in self.senders:
            kept = by_name.get(sender.standby)
            if kept is None or (sender.replay_lag_bytes or 0) > (kept.replay_lag_bytes or 0):
                by_name[sender.standby] = sender
        return [by_name[name] for name in sorted(by_name)]

    @property
    def connected_standbys(self) -> int:
        """WAL senders that are not base backups: standbys, pg_receivewal, logical subscribers."""
        return sum(not s.is_backup for s in self.senders)

    def add_samples(self, out: SampleList) -> None:
        out.add("dbpulse_pg_in_recovery", 1 if self.in_recovery else 0)
        out.add("dbpulse_pg_replication_connected_standbys", self.connected_standbys)
        out.add("dbpulse_pg_replication_expected_standbys", self.expected_standbys)
        if self.in_recovery:
            out.add("dbpulse_pg_replay_paused", None if self.replay_paused is None else int(self.replay_paused))
            out.add("dbpulse_pg_replay_lag_seconds", self.replay_lag_seconds)
            out.add("dbpulse_pg_replay_backlog_bytes", self.replay_backlog_bytes)
            out.add("dbpulse_pg_wal_receiver_streaming", self.receiver_streaming)
            out.add("dbpulse_pg_wal_receiver_last_message_age_seconds",
                    self.receiver.last_msg_age_seconds if self.receiver else None)
            for c in self.conflicts:
                for reason in CONFLICT_REASONS:
                    out.add("dbpulse_pg_database_conflicts_total", getattr(c, f"confl_{reason}"),
                            datname=c.datname, reason=reason)
        for s in self.worst_senders():
            standby = {"standby": s.standby}
            out.add("dbpulse_pg_replication_standby_state", 1, **standby, state=s.state)
            for stage in ("sent", "write", "flush", "replay"):
                out.add("dbpulse_pg_replication_lag_bytes", getattr(s, f"{stage}_lag_bytes"), **standby, stage=stage)
            for stage in ("write", "flush", "replay"):
                out.add("dbpulse_pg_replication_lag_seconds", s.lag_seconds(stage), **standby, stage=stage)
            out.add("dbpulse_pg_replication_reply_age_seconds", s.reply_age_seconds, **standby)
        for slot in self.slots:
            labels = {"slot": slot.slot_name, "slot_type": slot.slot_type}
            out.add("dbpulse_pg_replication_slot_active", int(slot.active), **labels)
            if slot.wal_status:
                out.add("dbpulse_pg_replication_slot_wal_status", 1, **labels, wal_status=slot.wal_status)
            out.add("dbpulse_pg_replication_slot_retained_bytes", slot.retained_bytes, **labels)
            out.add("dbpulse_pg_replication_slot_safe_wal_size_bytes", slot.safe_wal_size_bytes, **labels)
            out.add("dbpulse_pg_replication_slot_lag_bytes", slot.confirmed_lag_bytes, **labels)
            out.add("dbpulse_pg_replication_slot_xmin_age", slot.xmin_age, **labels)
