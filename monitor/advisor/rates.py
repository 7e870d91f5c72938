"""One time base for the per-hour figures of a run: calls per hour of a statement, inserts and updates per
hour of a table, both from the counters since their own reset, so the service and ``dbpulse advise`` judge
the same statistics the same way. ``window`` names it in the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from collectors.postgres.statements import StatementStat
from monitor.core import units


@dataclass
class Rates:
    """Time bases for per-hour figures (None: unknown, the figure is left out)."""

    statements_seconds: float | None = None  # the window the statements' counters cover
    table_writes_per_hour: dict[int, float] = field(default_factory=dict)  # table oid -> inserts + updates
    window: str = "unknown"  # the time base, for people

    @classmethod
    def over(cls, now: datetime | None, statements_since: datetime | None, stats_since: datetime | None,
             table_writes_per_hour: dict[int, float]) -> Rates:
        """Calls per hour since ``statements_since``, writes per hour since ``stats_since`` (each counter's
        reset); when either is unknown, gains and write costs are compared as counts since the statistics
        began, and the window says so."""
        seconds = (now - statements_since).total_seconds() if now and statements_since else None
        if seconds and table_writes_per_hour and stats_since is not None and now is not None:
            window = (f"per hour: calls since pg_stat_statements' counters began at "
                      f"{_at(statements_since)} ({units.duration(seconds)}), inserts + updates since the statistics "
                      "reset at "
                      f"{_at(stats_since)} ({units.duration((now - stats_since).total_seconds())})")
        elif seconds:
            window = (f"counts: calls since pg_stat_statements' counters began at {_at(statements_since)} "
                      f"({units.duration(seconds)}), inserts + updates since the statistics began (never reset, so "
                      "over an "
                      "unknown and likely longer time: writes weigh more than they would per hour)")
            table_writes_per_hour = {}
        else:
            window = ("counts since the statistics began (no reset time is known, so nothing is per hour): calls "
                      "and inserts + updates alike")
            table_writes_per_hour = {}
        return cls(seconds, table_writes_per_hour, window)

    def calls_per_hour(self, stat: StatementStat) -> float | None:
        if not self.statements_seconds or self.statements_seconds <= 0:
            return None
        return stat.calls * 3600 / self.statements_seconds


def _at(when: datetime | None) -> str:
    return when.replace(microsecond=0).isoformat() if when else "?"
