"""Every statement that takes a notable share of the database's time ends up in an action or a stated reason.

A statement (a group of variants counts as one) with at least ``reason_min_share`` of the execution time of
every statement read gets one ``StatementReason``, the first of these that holds:

1. ``action``: an action's new index serves it;
2. ``not_analyzed``: its text could not be parsed (a utility statement is not listed: the skipped
   statements count it by type, and no index speeds it up);
3. ``unplannable``: the server could not plan it (the error);
4. ``write_cost`` / ``below_threshold``: its best candidate was costed with HypoPG and rejected, with the
   figures (an index already in its plan makes it ``served``, with the same figures); ``over_budget``: it
   was chosen, then left out by ``index_budget_mb`` (``budget.py``);
5. ``served``: an existing index already gives the access path its candidates would (or its plan uses one
   and no candidate lowers its cost);
6. ``no_candidate``: why none: no predicate an index can use, keys that cannot be index keys, tables below
   ``min_table_rows``, a candidate the server refused, an INSERT, system catalogs only;
7. ``not_costed``: it has candidates, but the verification did not reach them (budget, caps, no HypoPG).
"""

from __future__ import annotations

from collectors.postgres.statements import StatementStat
from monitor.core import units

from . import plans
from .actions import StatementReason
from .candidates import candidates_for_usage, served_by
from .catalog import Catalog
from .context import RunContext
from .query_analysis import StatementAnalysis
from .selection import Judged
from .settings import Thresholds


def statement_reasons(run: RunContext) -> list[StatementReason]:
    """A reason for each statement at ``reason_min_share`` of the time or more, heaviest first."""
    report, current, workload, settings = run.report, run.current, run.workload, run.settings
    unplannable, variants = run.unplannable, run.variants
    total = sum(s.exec_seconds for s in current)
    if total <= 0:
        return []
    analyzed = {s.queryid: a for s, a in workload.items}
    skipped = {sk.queryid: sk.reason for sk in report.skipped}
    served = report.plan.served_by()
    out = []
    for stat in sorted(current, key=lambda s: -s.exec_seconds):
        share = stat.exec_seconds / total
        if share < settings.reason_min_share:
            break
        q = stat.queryid
        action = served.get(q)
        if action is not None:
            labels = ", ".join(n.label for n in action.creates)
            status, reason = "action", f"served by action {action.order} ({action.action} {labels})"
        elif q in skipped and q not in analyzed:
            if skipped[q].startswith("utility statement"):
                continue  # counted by type with the skipped statements: no index speeds it up
            status, reason = "not_analyzed", skipped[q]
        elif q in unplannable:
            status, reason = "unplannable", unplannable[q]
        elif q not in analyzed:
            status, reason = "no_candidate", "it reads only system catalogs and statistics views"
        else:
            status, reason = _why_not(stat, analyzed[q], run)
        out.append(StatementReason(q, stat.query[:1000], stat.calls, share, status, reason,
                                   action.order if action is not None else None, variants.others(q)))
    return out


def _why_not(stat: StatementStat, analysis: StatementAnalysis, run: RunContext) -> tuple[str, str]:
    selection, refused, cat, settings = run.selection, run.refused, run.cat, run.settings
    verified, budget_exhausted = run.stats.mode == "hypopg", run.stats.budget_exhausted
    q = stat.queryid
    measured = selection.initial.get(q)
    used = sorted(plans.index_names(measured.plan)) if measured is not None else []
    uses = f"its plan uses {', '.join(used)}" if used else ""
    judged = selection.judged.get(q)
    if judged is not None and judged.verdict != "not_judged":
        return _judged_reason(judged, uses)
    # No candidate of it was costed: say why.
    if analysis.kind == "insert" and not analysis.usages:
        return "no_candidate", "an INSERT of values: an index can only add to its cost"
    existing = _served_by_existing(analysis, cat, settings)
    if existing:
        return "served", f"already served by {', '.join(existing)}" + (f" ({uses})" if uses else "")
    small = _small_tables(analysis, cat, settings)
    if refused is not None and q in refused.of_statement:
        label, why = refused.of_statement[q]
        return "no_candidate", f"its candidate {label} was refused before costing: {why}"
    if not any(u.has_predicates for u in analysis.usages):
        why = "no predicate an index can use (no column compared with a value or a join key, no ORDER BY ... " \
              "LIMIT, no GROUP BY of one table's columns)"
        if analysis.not_keys:
            why += "; not index keys: " + "; ".join(analysis.not_keys[:3])
        return "no_candidate", why + (f"; {uses}" if uses else "")
    if small is not None:
        return "no_candidate", small
    unknown = [u.table for u in analysis.usages if u.has_predicates and cat.table(u.table) is None]
    if unknown and len(unknown) == sum(1 for u in analysis.usages if u.has_predicates):
        names = ", ".join(dict.fromkeys(".".join(p for p in ref if p) for ref in unknown))
        return "no_candidate", (f"it filters only relations that are not tables the catalog lists (views, CTEs, "
                                f"foreign or system tables): {names}")
    if judged is not None:  # costed, but its candidate's turn never came
        why = "the verification budget ran out" if budget_exhausted else \
            "it ranked after the rescored_candidates runners-up"
        return "not_costed", (f"its best candidate, {judged.label} (cost {judged.cost_before:,.0f} to "
                              f"{judged.cost_after:,.0f}), was not judged: {why}")
    if not verified:
        return "not_costed", "not costed: HypoPG is not available, and the heuristic advice does not cover it"
    if budget_exhausted:
        return "not_costed", "not costed: the verification budget ran out before its table"
    return "not_costed", (f"not costed: its candidates ranked below the max_candidates_per_table "
                          f"({settings.max_candidates_per_table}) most promising of their table, or it is not among "
                          f"the max_statements_per_candidate ({settings.max_statements_per_candidate}) heaviest "
                          "statements of one")


def _judged_reason(judged: Judged, uses: str) -> tuple[str, str]:
    """The status and reason of a statement whose best candidate was judged (selection.py, budget.py)."""
    if judged.verdict in ("below_threshold", "write_cost", "no_gain"):
        own = (f"its best candidate, {judged.label}, takes its cost from {judged.cost_before:,.0f} to "
               f"{judged.cost_after:,.0f} ({units.percent_less(1 - judged.cost_after / judged.cost_before)} less)"
               if judged.cost_before > 0 and judged.cost_after < judged.cost_before else
               f"no candidate lowers its cost (the best tried: {judged.label})")
        detail = f"; {judged.reason}" if judged.verdict != "no_gain" else ""
        if judged.verdict == "write_cost":
            return "write_cost", own + detail
        if uses:
            return "served", f"already served: {uses}; {own}{detail}"
        return ("below_threshold" if judged.verdict == "below_threshold" else "no_candidate"), own + detail
    if judged.verdict == "over_budget":  # budget.py: chosen, then left out by the storage budget
        return "over_budget", (f"its best candidate takes its cost from {judged.cost_before:,.0f} to "
                               f"{judged.cost_after:,.0f}, but {judged.reason}" + (f"; {uses}" if uses else ""))
    # kept: advised for other statements; not enough for this one
    return "below_threshold", (f"its best candidate, {judged.label}, is advised for other statements, but with "
                               f"the whole plan in place its cost does not drop (alone it took it from "
                               f"{judged.cost_before:,.0f} to {judged.cost_after:,.0f})"
                               + (f"; {uses}" if uses else ""))


def _served_by_existing(analysis: StatementAnalysis, cat: Catalog, settings: Thresholds) -> list[str]:
    """Existing indexes that give the access path of a candidate of the statement, when every candidate that
    a table big enough would get has one."""
    names: list[str] = []
    for usage in analysis.usages:
        table = cat.table(usage.table)
        if table is None or table.rows < settings.min_table_rows:
            continue
        cands = candidates_for_usage(usage, table, settings)
        found = [served_by(c, cat.indexes_of(table)) for c in cands]
        if any(i is None for i in found):
            return []  # a candidate no index serves: not served
        # one index often serves several candidates (the sort-less prefix and the full one): named once
        names += [name for name in dict.fromkeys(i.qualified for i in found if i is not None) if name not in names]
    return names


def _small_tables(analysis: StatementAnalysis, cat: Catalog, settings: Thresholds) -> str | None:
    """Why its tables get no candidate for their size, when every table it filters is below min_table_rows."""
    tables = [cat.table(u.table) for u in analysis.usages if u.has_predicates]
    known = [t for t in tables if t is not None]
    if known and len(known) == len(tables) and all(t.rows < settings.min_table_rows for t in known):
        sizes = ", ".join(f"{t.qualified} ({t.rows:,.0f} rows)" for t in {t.oid: t for t in known}.values())
        return (f"table(s) too small for an index to pay: {sizes}, under min_table_rows "
                f"({settings.min_table_rows:,})")
    return None
