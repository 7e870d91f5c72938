"""One time base for a run: a statement's calls and a table's written rows over the same window, the window
pg_stat_statements' counters cover, so the service and ``dbpulse advise`` judge the same statistics the same
way, and gains (calls x cost removed) weigh against write costs measured alike. ``window`` names it in the
report.

Rows written come from pg_stat_statements itself (writes.py: the rows of the INSERT, UPDATE, COPY and MERGE
statements whose target is the table), so a bulk load before its reset is not charged to statements counted
after it. When the table statistics' own window is known (``pg_stat_database.stats_reset``), their rate over
the statements' window is taken when it is higher: writes from functions, triggers or statements
pg_stat_statements evicted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from collectors.postgres.statements import StatementStat
from monitor.core import units

from .catalog import Table
from .writes import Written


@dataclass
class Rates:
    """Time bases for per-hour figures (None: unknown, the figure is left out)."""

    statements_seconds: float | None = None  # the window the statements' counters cover
    table_writes: dict[int, Written] = field(default_factory=dict)  # table oid -> rows written in that window
    hot_fraction: dict[int, float] = field(default_factory=dict)  # table oid -> n_tup_hot_upd / n_tup_upd
    window: str = "unknown"  # the time base, for people

    @classmethod
    def over(cls, now: datetime | None, statements_since: datetime | None, stats_since: datetime | None,
             tables: Mapping[int, Table], written: Mapping[int, Written]) -> Rates:
        """Calls and written rows since ``statements_since`` (pg_stat_statements' reset); the table statistics
        since ``stats_since`` count when their window is known and their rate over it is higher."""
        seconds = (now - statements_since).total_seconds() if now and statements_since else None
        stats_age = (now - stats_since).total_seconds() if now and stats_since else None
        scale = seconds / stats_age if seconds and stats_age and stats_age > 0 else None
        writes: dict[int, Written] = {}
        hot: dict[int, float] = {}
        for oid, table in tables.items():
            own = written.get(oid)
            entry = Written(own.added, dict(own.updated)) if own else Written()
            if scale is not None:
                entry.added = max(entry.added, table.inserts * scale)
                unaccounted = table.updates * scale - entry.updates
                if unaccounted > 0:  # updates no statement accounts for: their SET columns are unknown
                    entry.updated[None] = entry.updated.get(None, 0.0) + unaccounted
            if entry.total:
                writes[oid] = entry
            if table.updates:
                hot[oid] = min(1.0, table.hot_updates / table.updates)
        what = "rows written by its INSERT, UPDATE, COPY and MERGE statements on each table"
        if seconds:
            tables_too = (f", or the table statistics' rate (reset at {_at(stats_since)}, "
                          f"{units.duration(stats_age or 0)} ago) over the same window when higher"
                          if scale is not None else
                          " (the table statistics were never reset: their window is unknown, so not used)")
            window = (f"per hour: calls and rows written since pg_stat_statements' counters began at "
                      f"{_at(statements_since)} ({units.duration(seconds)}): {what}{tables_too}")
        else:
            window = (f"counts: calls and rows written since pg_stat_statements' counters began (when is not known, "
                      f"so nothing is per hour): {what}")
        return cls(seconds, writes, hot, window)

    def calls_per_hour(self, stat: StatementStat) -> float | None:
        return self.per_hour(stat.calls)

    def per_hour(self, amount: float) -> float | None:
        if not self.statements_seconds or self.statements_seconds <= 0:
            return None
        return amount * 3600 / self.statements_seconds

    def writes_per_hour(self, table_oid: int) -> float | None:
        """Rows inserted and updated per hour on a table (None: no per-hour time base)."""
        written = self.table_writes.get(table_oid)
        return self.per_hour(written.total if written else 0.0)


def _at(when: datetime | None) -> str:
    return when.replace(microsecond=0).isoformat() if when else "?"
