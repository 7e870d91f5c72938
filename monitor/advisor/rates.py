"""Time bases for per-hour figures: calls per hour of a statement, inserts and updates per hour of a table."""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.postgres.statements import StatementStat


@dataclass
class Rates:
    """Time bases for per-hour figures (None: unknown, the figure is left out)."""

    statements_seconds: float | None = None  # the window the statements' counters cover
    table_writes_per_hour: dict[int, float] = field(default_factory=dict)  # table oid -> inserts + updates

    def calls_per_hour(self, stat: StatementStat) -> float | None:
        if not self.statements_seconds or self.statements_seconds <= 0:
            return None
        return stat.calls * 3600 / self.statements_seconds
