"""PostgreSQL server health: replication, vacuum and wraparound, locks, WAL and checkpoints,
archiving, I/O, sequences and bloat, read by the PostgreSQL poller on the same connection.

Cheap views are read every poll; the lock queries only while someone waits on
a lock; sequences every ``postgres.sequence_interval`` (a minute: cheap, and
their alert should not wait); the expensive ones (autovacuum's per-table
thresholds, oldest tables by frozen XID age, bloat) every
``postgres.maintenance_interval``. Both are kept in between (``maintain``,
before the poll builds its table rows).

Every area is a feature (``dbpulse_pg_feature_enabled{feature}``): a view the
server's version lacks, a query that fails (counted in
``dbpulse_pg_query_errors_total``), or a role that cannot see what the area
needs sets it to 0, with one log line saying what to do when that changes:
never an error per poll, and the other areas go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from collectors.base.samples import SampleList
from collectors.base.topk import from_row
from collectors.postgres import bloat as bloat_estimates
from collectors.postgres import queries
from collectors.postgres import sequences as sequence_usage
from collectors.postgres.bloat import Bloat, BloatRow, top_bloat
from collectors.postgres.locks import BlockerRow, Locks, LockWaitRow
from collectors.postgres.query import Query, fetch_counted
from collectors.postgres.replication import ConflictRow, ReceiverRow, Replication, SenderRow, SlotRow
from collectors.postgres.sequences import SequenceRow, top_sequences
from collectors.postgres.settings import PostgresSettings
from collectors.postgres.vacuum import FrozenAgeRow, OldestTableRow, Vacuum, VacuumRow
from collectors.postgres.wal import IoRow, Wal, WalRow

log = logging.getLogger("dbpulse.postgres")

THRESHOLD_FIELDS = ("autovacuum_enabled", "vacuum_threshold", "insert_threshold", "analyze_threshold")
FEATURES = ("replication", "replication_slots", "wraparound", "autovacuum", "locks", "wal", "archiver",
            "archive_pending", "io", "sequences", "bloat")
# Areas read from a view that only newer servers have: the first major version with it.
SINCE = {"io": 16}  # pg_stat_io
GRANT_MONITOR = "GRANT pg_monitor TO the dbpulse role (other sessions' states are hidden from it)"
STANDBY_MEMORY_SECONDS = 3600.0  # a standby seen this recently and gone is listed (PostgresStandbyGone's hour)
GRANT_READ = ("GRANT pg_read_all_data (PostgreSQL 14+) or SELECT on the tables and sequences to the dbpulse role "
              "(pg_monitor does not let it read sequences or the statistics of tables)")


@dataclass
class Maintenance:
    """The expensive reads, kept between maintenance reads."""

    thresholds: dict[int, dict[str, Any]] = field(default_factory=dict)  # relid -> TableRow's threshold fields
    oldest_tables: list[OldestTableRow] | None = None
    bloat: Bloat | None = None
    problems: dict[str, str | None] = field(default_factory=dict)


@dataclass
class Sequences:
    """The last sequence read, kept until the next (postgres.sequence_interval)."""

    rows: list[SequenceRow] | None = None
    problem: str | None = None


@dataclass
class ServerHealth:
    replication: Replication | None
    vacuum: Vacuum | None
    locks: Locks
    wal: Wal | None
    sequences: list[SequenceRow] | None
    bloat: Bloat | None
    problems: dict[str, str | None]  # feature -> what to do, None when it works
    top_applications: int = 20
    # feature -> the first major version that has it, for those this server's version lacks (not a problem)
    absent: dict[str, int] = field(default_factory=dict)

    @property
    def features(self) -> dict[str, bool]:
        return {name: self.problems.get(name) is None for name in FEATURES}

    def add_samples(self, out: SampleList, datname: str) -> None:
        if self.replication is not None:
            self.replication.add_samples(out)
        if self.vacuum is not None:
            self.vacuum.add_samples(out, datname)
        self.locks.add_samples(out, self.top_applications)
        if self.wal is not None:
            self.wal.add_samples(out)
        if self.sequences is not None:
            sequence_usage.add_samples(out, self.sequences, datname)
        if self.bloat is not None:
            bloat_estimates.add_samples(out, self.bloat, datname)


@dataclass(frozen=True)
class TableCounts:
    """What TABLES (every table of the database, before the top-K) says about autovacuum."""

    vacuum_due: int = 0
    analyze_due: int = 0
    autovacuum_disabled: int = 0


class HealthReader:
    """Reads the health areas of one target; remembers the maintenance reads and the features' state."""

    def __init__(self, target: str, settings: PostgresSettings, query_errors: dict[str, int],
                 expected_standbys: int | None = None) -> None:
        self.target = target
        self.settings = settings
        self.expected_standbys = expected_standbys
        self._errors = query_errors  # the poller's, every query's counter in it from the start
        self._maintenance = Maintenance()
        self._maintenance_at: float | None = None  # monotonic
        self._sequences = Sequences()
        self._sequences_at: float | None = None  # monotonic
        self._reported: dict[str, str | None] = {}
        self._in_recovery: bool | None = None  # the role at the last poll
        self._standbys_seen: dict[str, float] = {}  # standby name -> when last connected (monotonic)

    async def _rows(self, conn: psycopg.AsyncConnection[dict[str, Any]], query: Query, version: int,
                    problems: dict[str, str | None],
                    params: Mapping[str, Any] | None = None) -> list[dict[str, Any]] | None:
        """Run one query; a failure that leaves the connection usable is counted and disables its feature."""
        rows, error = await fetch_counted(conn, query, version, self._errors, params)
        if error is not None:
            assert query.feature is not None, f"{query.name} serves no health feature"
            problems[query.feature] = f"{query.name} failed ({error})"
        return rows

    async def read(self, conn: psycopg.AsyncConnection[dict[str, Any]], version: int, read_all_stats: bool,
                   lock_waiting: int, tables: TableCounts) -> ServerHealth:
        problems: dict[str, str | None] = dict.fromkeys(FEATURES)
        state_rows = await self._rows(conn, queries.SERVER_STATE, version, problems)
        state = state_rows[0] if state_rows else None
        if state is None:
            for feature in ("wraparound", "autovacuum", "archiver"):
                problems[feature] = problems["replication"]
        replication = await self._replication(conn, version, state, read_all_stats, problems)
        vacuum = await self._vacuum(conn, version, state, read_all_stats, tables, problems)
        locks = await self._locks(conn, version, read_all_stats, lock_waiting, problems)
        wal = await self._wal(conn, version, state, problems)
        if vacuum is not None:
            vacuum.oldest_tables = self._maintenance.oldest_tables
        for feature, problem in (*self._maintenance.problems.items(), ("sequences", self._sequences.problem)):
            problems[feature] = problems[feature] or problem
        absent = {f: major for f, major in SINCE.items() if version < major * 10000}
        self._report(problems, absent)
        return ServerHealth(replication, vacuum, locks, wal, self._sequences.rows, self._maintenance.bloat,
                            problems, self.settings.top_applications, absent)

    async def _replication(self, conn: psycopg.AsyncConnection[dict[str, Any]], version: int,
                           state: dict[str, Any] | None, read_all_stats: bool,
                           problems: dict[str, str | None]) -> Replication | None:
        slots = await self._rows(conn, queries.REPLICATION_SLOTS, version, problems)
        if state is None:
            return None
        in_recovery = bool(state["in_recovery"])
        if self._in_recovery is not None and in_recovery != self._in_recovery:
            log.info("%s: %s", self.target, "entered recovery: it is a standby now" if in_recovery
                     else "left recovery (promoted): it is a primary now")
            self._standbys_seen.clear()  # after a failover the standbys follow the new primary
        self._in_recovery = in_recovery
        senders = await self._rows(conn, queries.REPLICATION_SENDERS, version, problems)
        sender_rows = [from_row(SenderRow, r) for r in senders or []]
        gone = self._gone_standbys(sender_rows) if senders is not None else []
        receiver: ReceiverRow | None = None
        conflicts: list[dict[str, Any]] | None = []
        if in_recovery:
            found = await self._rows(conn, queries.WAL_RECEIVER, version, problems)
            receiver = from_row(ReceiverRow, found[0]) if found else None
            conflicts = await self._rows(conn, queries.DATABASE_CONFLICTS, version, problems)
        if not read_all_stats:
            problems["replication"] = problems["replication"] or GRANT_MONITOR
        return Replication(
            in_recovery=in_recovery,
            replay_paused=state["replay_paused"],
            replay_backlog_bytes=state["replay_backlog_bytes"],
            replay_lag_seconds=state["replay_lag_seconds"],
            receiver=receiver,
            senders=sender_rows,
            slots=[from_row(SlotRow, r) for r in slots or []],
            conflicts=[from_row(ConflictRow, r) for r in conflicts or []],
            expected_standbys=self.expected_standbys,
            gone=gone,
        )

    def _gone_standbys(self, senders: list[SenderRow]) -> list[str]:
        """Standbys connected in the last hour and not now (base backups end by design)."""
        now = time.monotonic()
        connected = {s.standby for s in senders if not s.is_backup}
        self._standbys_seen = {name: seen for name, seen in self._standbys_seen.items()
                               if now - seen <= STANDBY_MEMORY_SECONDS} | dict.fromkeys(connected, now)
        return sorted(set(self._standbys_seen) - connected)

    async def _vacuum(self, conn: psycopg.AsyncConnection[dict[str, Any]], version: int,
                      state: dict[str, Any] | None, read_all_stats: bool, tables: TableCounts,
                      problems: dict[str, str | None]) -> Vacuum | None:
        ages = await self._rows(conn, queries.FROZEN_AGES, version, problems)
        running = await self._rows(conn, queries.VACUUM_PROGRESS, version, problems)
        if not read_all_stats:
            problems["autovacuum"] = problems["autovacuum"] or GRANT_MONITOR
        if state is None:
            return None
        return Vacuum(
            freeze_max_age=float(state["freeze_max_age"]),
            multixact_freeze_max_age=float(state["multixact_freeze_max_age"]),
            workers=int(state["autovacuum_workers"]),
            max_workers=int(state["autovacuum_max_workers"]),
            naptime_seconds=float(state["autovacuum_naptime"]),
            databases=[from_row(FrozenAgeRow, r) for r in ages or []],
            running=[from_row(VacuumRow, r) for r in running or []],
            vacuum_due=tables.vacuum_due, analyze_due=tables.analyze_due,
            autovacuum_disabled=tables.autovacuum_disabled,
        )

    async def _locks(self, conn: psycopg.AsyncConnection[dict[str, Any]], version: int, read_all_stats: bool,
                     lock_waiting: int, problems: dict[str, str | None]) -> Locks:
        if not read_all_stats:
            problems["locks"] = GRANT_MONITOR  # other roles' waits are invisible: "nobody waits" would be a guess
        if not lock_waiting:
            return Locks()
        waits = await self._rows(conn, queries.LOCK_WAITS, version, problems)
        roots = await self._rows(conn, queries.LOCK_BLOCKERS, version, problems)
        return Locks([from_row(LockWaitRow, r) for r in waits or []], [from_row(BlockerRow, r) for r in roots or []])

    async def _wal(self, conn: psycopg.AsyncConnection[dict[str, Any]], version: int,
                   state: dict[str, Any] | None, problems: dict[str, str | None]) -> Wal | None:
        rows = await self._rows(conn, queries.WAL, version, problems)
        if rows is None:
            problems["archiver"] = problems["archiver"] or problems["wal"]
        io: list[dict[str, Any]] | None = []
        if not queries.IO.available(version):
            problems["io"] = f"pg_stat_io needs PostgreSQL {SINCE['io']} or later"
        else:
            io = await self._rows(conn, queries.IO, version, problems)
        if rows is None or state is None:
            return None
        wal = Wal(from_row(WalRow, rows[0]), archive_mode=str(state["archive_mode"]),
                  io=[from_row(IoRow, r) for r in io or []])
        if not wal.archiving:
            pass  # nothing is archived: nothing to read
        elif not state["archive_status_readable"]:
            problems["archive_pending"] = ("GRANT pg_monitor (or EXECUTE ON FUNCTION pg_ls_archive_statusdir()) "
                                           "TO the dbpulse role")
        else:
            pending = await self._rows(conn, queries.ARCHIVE_PENDING, version, problems)
            wal.pending_segments = int(pending[0]["pending_segments"]) if pending else None
        return wal

    @property
    def thresholds(self) -> dict[int, dict[str, Any]]:
        """Autovacuum's thresholds of each table (relid), as of the last maintenance read."""
        return self._maintenance.thresholds

    async def maintain(self, conn: psycopg.AsyncConnection[dict[str, Any]], version: int) -> None:
        """The reads kept between polls, each when older than its interval (a failed one waits for the
        next); before the poll's tables are built, which take their autovacuum thresholds from here."""
        now = time.monotonic()
        if _due(self._sequences_at, self.settings.sequence_interval, now):
            await self._read_sequences(conn, version)
            self._sequences_at = now
        if _due(self._maintenance_at, self.settings.maintenance_interval, now):
            await self._read_maintenance(conn, version)
            self._maintenance_at = now

    async def _read_sequences(self, conn: psycopg.AsyncConnection[dict[str, Any]], version: int) -> None:
        problems: dict[str, str | None] = {"sequences": None}
        seqs = await self._rows(conn, queries.SEQUENCES, version, problems)
        rows = [from_row(SequenceRow, r) for r in seqs or []]
        if any(not s.readable for s in rows):
            problems["sequences"] = problems["sequences"] or GRANT_READ
        self._sequences = Sequences(top_sequences(rows, self.settings.top_maintenance) if seqs is not None else None,
                                    problems["sequences"])

    async def _read_maintenance(self, conn: psycopg.AsyncConnection[dict[str, Any]], version: int) -> None:
        k = self.settings.top_maintenance
        problems: dict[str, str | None] = {"autovacuum": None, "wraparound": None, "bloat": None}
        thresholds = await self._rows(conn, queries.AUTOVACUUM_THRESHOLDS, version, problems)
        oldest = await self._rows(conn, queries.OLDEST_TABLES, version, problems, {"limit": k})
        bloat = await self._rows(conn, queries.BLOAT, version, problems)
        bloat_rows = [from_row(BloatRow, r) for r in bloat or []]
        if any(not b.readable for b in bloat_rows):
            problems["bloat"] = problems["bloat"] or GRANT_READ
        self._maintenance = Maintenance(
            thresholds={int(r["relid"]): {f: r[f] for f in THRESHOLD_FIELDS} for r in thresholds or []},
            oldest_tables=[from_row(OldestTableRow, r) for r in oldest] if oldest is not None else None,
            bloat=top_bloat(bloat_rows, k) if bloat is not None else None,
            problems=problems,
        )

    def _report(self, problems: dict[str, str | None], absent: Mapping[str, int]) -> None:
        """One log line per distinct hint when features change state, not one per poll; a feature the server's
        version lacks is no problem to fix: said once, at INFO."""
        changed = {f: p for f, p in problems.items() if self._reported.get(f, None) != p or f not in self._reported}
        by_hint: dict[str, list[str]] = {}
        recovered = []
        for feature, problem in changed.items():
            if problem is not None:
                by_hint.setdefault(problem, []).append(feature)
            elif feature in self._reported:
                recovered.append(feature)
        for hint, features in by_hint.items():
            level = logging.INFO if all(f in absent for f in features) else logging.WARNING
            log.log(level, "%s: %s unavailable: %s", self.target, ", ".join(features), hint)
        if recovered:
            log.info("%s: %s available again", self.target, ", ".join(recovered))
        self._reported = dict(problems)


def _due(last: float | None, interval: float, now: float) -> bool:
    """A read kept between polls is due on the first poll and once ``interval`` seconds have passed."""
    return last is None or now - last >= interval
