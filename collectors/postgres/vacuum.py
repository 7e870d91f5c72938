"""Vacuum and transaction-ID wraparound as one PostgreSQL poll read them.

Row types are named like the columns of ``FROZEN_AGES``, ``VACUUM_PROGRESS`` and
``OLDEST_TABLES`` in ``queries.py``; the per-table autovacuum thresholds are
columns of ``TABLES`` (``snapshot.TableRow``). ``add_samples`` names the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.base.samples import SampleList

WRAPAROUND_LIMIT = 2.0**31  # XIDs and multixacts are compared modulo 2^32: half the space is the past
KINDS = ("xid", "multixact")


@dataclass(frozen=True)
class FrozenAgeRow:
    datname: str
    xid_age: float = 0.0
    mxid_age: float = 0.0


@dataclass(frozen=True)
class OldestTableRow:
    """A table with its TOAST relation folded in (by the query): the greater age of the two, per kind."""

    schema: str
    table: str
    toast: bool = False  # the table's TOAST relation is the older one
    xid_age: float = 0.0
    mxid_age: float = 0.0


@dataclass(frozen=True)
class VacuumRow:
    datname: str
    relation: str
    phase: str = "unknown"
    heap_blks_total: float | None = None
    heap_blks_scanned: float | None = None
    autovacuum: bool = False
    running_seconds: float | None = None

    @property
    def mode(self) -> str:
        return "auto" if self.autovacuum else "manual"

    @property
    def progress_ratio(self) -> float | None:
        if not self.heap_blks_total or self.heap_blks_scanned is None:
            return None
        return min(self.heap_blks_scanned / self.heap_blks_total, 1.0)


@dataclass
class Vacuum:
    freeze_max_age: float
    multixact_freeze_max_age: float
    workers: int
    max_workers: int
    naptime_seconds: float | None = None  # autovacuum_naptime: each database is visited once per naptime
    databases: list[FrozenAgeRow] = field(default_factory=list)
    running: list[VacuumRow] = field(default_factory=list)
    # tables of the target database past autovacuum's own thresholds, and with autovacuum off
    vacuum_due: int = 0
    analyze_due: int = 0
    autovacuum_disabled: int = 0
    oldest_tables: list[OldestTableRow] | None = None  # maintenance read; None before the first

    def ages(self, row: FrozenAgeRow | OldestTableRow) -> dict[str, float]:
        return {"xid": row.xid_age, "multixact": row.mxid_age}

    def add_samples(self, out: SampleList, datname: str) -> None:
        limits = {"xid": self.freeze_max_age, "multixact": self.multixact_freeze_max_age}
        for kind in KINDS:
            out.add("dbpulse_pg_freeze_max_age", limits[kind], kind=kind)
        for d in self.databases:
            for kind, age in self.ages(d).items():
                out.add("dbpulse_pg_database_frozen_age", age, datname=d.datname, kind=kind)
                out.add("dbpulse_pg_database_wraparound_ratio", min(age / WRAPAROUND_LIMIT, 1.0),
                        datname=d.datname, kind=kind)
        add_oldest_tables(out, self.oldest_tables or [], datname)
        out.add("dbpulse_pg_autovacuum_workers", self.workers)
        out.add("dbpulse_pg_autovacuum_max_workers", self.max_workers)
        out.add("dbpulse_pg_autovacuum_naptime_seconds", self.naptime_seconds)
        for v in self.running:
            labels = {"datname": v.datname, "relation": v.relation, "mode": v.mode}
            out.add("dbpulse_pg_vacuum_progress_ratio", v.progress_ratio, **labels)
            out.add("dbpulse_pg_vacuum_running_seconds", v.running_seconds, **labels)
        db = {"datname": datname}
        out.add("dbpulse_pg_tables_autovacuum_due", self.vacuum_due, **db, operation="vacuum")
        out.add("dbpulse_pg_tables_autovacuum_due", self.analyze_due, **db, operation="analyze")
        out.add("dbpulse_pg_tables_autovacuum_disabled", self.autovacuum_disabled, **db)


def add_oldest_tables(out: SampleList, rows: list[OldestTableRow], datname: str) -> None:
    """``dbpulse_pg_table_frozen_age`` of one database's oldest tables (the DSN's, or another in its turn)."""
    for t in rows:
        for kind, age in (("xid", t.xid_age), ("multixact", t.mxid_age)):
            out.add("dbpulse_pg_table_frozen_age", age, datname=datname, schema=t.schema, table=t.table, kind=kind)

