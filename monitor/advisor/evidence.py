"""Evidence per created index: the statements it serves, their plans, time saved, size, write overhead.

Every figure comes from the monitored database (``pg_stat_statements``,
``pg_stat_user_tables``, ``pg_stats``, HypoPG's what-if plans); the time saved
is an estimate: calls per hour x mean time x the fraction of the generic-plan
cost the index removes. The write overhead follows pganalyze's published
definition: index entry size (an 8-byte header plus the average widths of the
key columns) over the row size, times the table's inserts and updates per hour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from collectors.postgres.statements import StatementStat

from . import plans
from .actions import NewIndex, ServedStatement
from .catalog import Table
from .plans import Plan
from .selection import Chosen, Selection

QUERY_CHARS = 300


@dataclass
class Rates:
    """Time bases for per-hour figures (None: unknown, the figure is left out)."""

    statements_seconds: float | None = None  # the window the statements' counters cover
    table_writes_per_hour: dict[int, float] = field(default_factory=dict)  # table oid -> inserts + updates

    def calls_per_hour(self, stat: StatementStat) -> float | None:
        if not self.statements_seconds or self.statements_seconds <= 0:
            return None
        return stat.calls * 3600 / self.statements_seconds


def new_index(chosen: Chosen, selection: Selection, stats: Mapping[int, StatementStat], rates: Rates,
              final: Mapping[int, Plan], labels: Mapping[int, str]) -> NewIndex:
    """The evidence of one chosen candidate; ``final`` holds the plans with the whole plan applied."""
    cand = chosen.candidate
    table: Table = cand.table
    out = NewIndex(table=table.qualified, columns=cand.columns, ddl=cand.ddl(), why_this_order=cand.order_reason(),
                   index_size_bytes=chosen.size_bytes or None, verified=chosen.finding.verified)
    entry = table.entry_width([k for k, _ in cand.keys])
    row = table.row_width
    if entry is not None and row > 0:
        out.write_overhead_ratio = entry / row
    out.table_writes_per_hour = rates.table_writes_per_hour.get(table.oid)
    saved: list[float] = []
    for q in chosen.affected:
        stat = stats.get(q)
        if stat is None:
            continue
        initial = selection.initial.get(q)
        after_plan = final.get(q)
        served = ServedStatement(
            queryid=q, query=stat.query[:QUERY_CHARS], calls=stat.calls, mean_exec_seconds=stat.mean_exec_seconds,
            cost_before=initial.cost if initial else 0.0,
            cost_after=float(after_plan["Total Cost"]) if after_plan else chosen.after_costs.get(q),
        )
        if initial is not None:
            served.plan_before = plans.summary(initial.plan, labels)
            served.plan_before_text = plans.text(initial.plan, labels)
        if after_plan is not None:
            served.plan_after = plans.summary(after_plan, labels)
            served.plan_after_text = plans.text(after_plan, labels)
        removed = served.cost_removed_ratio
        per_hour = rates.calls_per_hour(stat)
        if removed is not None and per_hour is not None:
            served.saved_seconds_per_hour = per_hour * stat.mean_exec_seconds * removed
            saved.append(served.saved_seconds_per_hour)
        out.statements.append(served)
    if saved:
        out.saved_seconds_per_hour = sum(saved)
    return out
