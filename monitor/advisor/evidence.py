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

from collectors.postgres.statements import StatementStat

from . import plans
from .actions import NewIndex, ServedStatement
from .candidates import Candidate
from .catalog import Table
from .plans import Plan
from .rates import Rates
from .selection import Chosen, Selection

QUERY_CHARS = 300


def new_indexes(chosen: Chosen, selection: Selection, stats: Mapping[int, StatementStat], rates: Rates,
                final: Mapping[int, Plan], labels: Mapping[int, str]) -> list[NewIndex]:
    """The evidence of a chosen candidate (and of the other indexes of its OR bundle, which serve the
    same statements); ``final`` holds the plans with the whole plan applied."""
    first = new_index(chosen, selection, stats, rates, final, labels)
    out = [first]
    for member, size in zip(chosen.candidate.companions, chosen.companion_sizes, strict=True):
        companion = _bare(member, rates, size or None, chosen.finding.verified)
        companion.why_this_order += f" Serves the same statements as {first.label}, together with it."
        out.append(companion)
    return out


def _bare(cand: Candidate, rates: Rates, size: int | None, verified: str | None) -> NewIndex:
    table: Table = cand.table
    out = NewIndex(table=table.qualified, columns=cand.columns, ddl=cand.ddl(), why_this_order=cand.order_reason(),
                   index_size_bytes=size, verified=verified, predicate=cand.predicate)
    entry = table.entry_width([k for k, _ in cand.keys])
    row = table.row_width
    if entry is not None and row > 0:
        out.write_overhead_ratio = entry / row * (cand.predicate_fraction if cand.predicate else 1.0)
    out.table_writes_per_hour = rates.writes_per_hour(table.oid)
    return out


def new_index(chosen: Chosen, selection: Selection, stats: Mapping[int, StatementStat], rates: Rates,
              final: Mapping[int, Plan], labels: Mapping[int, str]) -> NewIndex:
    """The evidence of one chosen candidate; ``final`` holds the plans with the whole plan applied."""
    out = _bare(chosen.candidate, rates, chosen.size_bytes or None, chosen.finding.verified)
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
            cost_after=plans.cost(after_plan) if after_plan else chosen.after_costs.get(q),
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
