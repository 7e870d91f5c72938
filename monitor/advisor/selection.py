"""The workload-level choice among index candidates: greedy per table, costed with HypoPG.

Every candidate is costed alone against every statement touching its table;
the best is kept (as a hypothetical index), and the others are costed again on
top of what is kept, so a wide index that serves several statements beats
narrow ones, and a candidate whose marginal benefit is small against its size
and the table's write rate is dropped. Without HypoPG the choice is a
heuristic (``select_heuristic``).

What was measured is kept with each choice (``Chosen``): the statements it
serves and their plans before any hypothetical index, which the plan and its
evidence build on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.postgres.statements import StatementStat

from .candidates import Candidate, Workload
from .catalog import Catalog, Table
from .findings import Finding
from .plans import Plan
from .query_analysis import Key, StatementAnalysis
from .settings import Thresholds
from .whatif import PlanError, WhatIf


@dataclass
class Measured:
    """A statement's generic plan with the real indexes only (no hypothetical one)."""

    cost: float
    plan: Plan


@dataclass
class Chosen:
    """A kept candidate: its finding, the statements it serves and what was measured for them."""

    candidate: Candidate
    finding: Finding
    affected: list[int]
    size_bytes: int = 0
    after_costs: dict[int, float] = field(default_factory=dict)  # per statement, with this index (and the
    # ones kept before it on the table)


@dataclass
class Selection:
    chosen: list[Chosen] = field(default_factory=list)
    initial: dict[int, Measured] = field(default_factory=dict)  # queryid -> plan with the real indexes


def select_verified(
    candidates: list[Candidate], workload: Workload, cat: Catalog, whatif: WhatIf,
    settings: Thresholds, unplannable: dict[int, str], selection: Selection | None = None,
) -> list[Finding]:
    """Greedy per-table selection with HypoPG; returns missing_index findings (``selection`` gets the detail)."""
    selection = selection if selection is not None else Selection()
    findings: list[Finding] = []
    by_table: dict[int, list[Candidate]] = {}
    for cand in candidates:
        by_table.setdefault(cand.table.oid, []).append(cand)
    stmts_of = {oid: workload.on_table(cat.tables[oid], cat) for oid in by_table}
    # Under a budget, the tables where the workload spends most time go first.
    order = sorted(by_table, key=lambda oid: (-sum(s.exec_seconds * 1000 for s, _ in stmts_of[oid]), oid))
    for table_oid in order:
        cands = by_table[table_oid]
        table = cat.tables[table_oid]
        stmts = [(s, a) for s, a in stmts_of[table_oid] if s.queryid not in unplannable]
        base: dict[int, float] = {}
        calls = {s.queryid: s.calls for s, _ in stmts}
        time_of = {s.queryid: s.exec_seconds * 1000 / max(s.calls, 1) for s, _ in stmts}

        def relevant(cand: Candidate, table: Table = table,
                     stmts: list[tuple[StatementStat, StatementAnalysis]] = stmts,
                     base: dict[int, float] = base) -> list[tuple[StatementStat, StatementAnalysis]]:
            """Statements a btree led by the candidate's first key can help, with a base cost."""
            lead = cand.keys[0][0]
            out = []
            mentioning = [(s, a) for s, a in stmts if _mentions(a, table, lead, cat)]
            mentioning.sort(key=lambda sa: (-sa[0].exec_seconds * 1000, sa[0].queryid))
            for stat, analysis in mentioning[: settings.max_statements_per_candidate]:
                if stat.queryid in unplannable:
                    continue
                if stat.queryid not in base:
                    if whatif.budget.exhausted():
                        continue
                    known = selection.initial.get(stat.queryid)
                    if known is not None and not whatif.hypothetical:
                        base[stat.queryid] = known.cost
                    else:
                        try:
                            plan = whatif.explain(*workload.planned(stat, analysis))
                        except PlanError as exc:
                            unplannable[stat.queryid] = unplannable_reason(exc)
                            continue
                        base[stat.queryid] = float(plan["Total Cost"])
                        if not whatif.hypothetical:
                            selection.initial.setdefault(stat.queryid, Measured(base[stat.queryid], plan))
                out.append((stat, analysis))
            return out

        kept: list[int] = []
        # Most promising first (calls x time of the statements that asked for it), a bounded number.
        prior = {id(c): sum(calls.get(q, 0) * t for q, t in time_of.items() if q in c.queryids) for c in cands}
        remaining = sorted(cands, key=lambda c: (-prior[id(c)], c.columns))[: settings.max_candidates_per_table]
        while remaining and not whatif.budget.exhausted():
            scored: list[tuple[float, Candidate, dict[int, float], int]] = []
            for cand in remaining:
                rel = relevant(cand)
                if whatif.budget.exhausted() or not rel:
                    continue
                oid, size = whatif.create(cand.hypothetical_sql())
                after: dict[int, float] = {}
                for stat, analysis in rel:
                    if whatif.budget.exhausted():
                        break
                    try:
                        after[stat.queryid] = whatif.cost(*workload.planned(stat, analysis))
                    except PlanError:
                        after[stat.queryid] = base[stat.queryid]
                whatif.drop(oid)
                gain = sum(calls[q] * (base[q] - c) for q, c in after.items() if c < base[q])
                scored.append((gain, cand, after, size))
            if not scored:
                break
            scored.sort(key=lambda x: (-x[0], len(x[1].keys), x[1].columns))
            gain, best, after, size = scored[0]
            affected = sorted(q for q, c in after.items() if c < base[q] * 0.999)
            before_w = sum(calls[q] * base[q] for q in affected)
            after_w = sum(calls[q] * after[q] for q in affected)
            penalty = table.writes * settings.write_penalty_per_row + (size / 8192) * settings.size_penalty_per_page
            if not affected or before_w <= 0 or gain < penalty or \
                    (before_w - after_w) / before_w < settings.min_improvement_ratio:
                break  # the best remaining one is not worth it; the others are worth less
            kept_oid, _ = whatif.create(best.hypothetical_sql())
            kept.append(kept_oid)
            finding = Finding(
                kind="missing_index", table=table.qualified,
                evidence=(f"{len(affected)} statement(s) on {table.qualified} "
                          f"({sum(calls[q] for q in affected)} calls) would go from a weighted generic-plan "
                          f"cost of {before_w:.0f} to {after_w:.0f} ({100 * (1 - after_w / before_w):.0f}% "
                          f"less) with this index (estimated size {size} bytes), checked with HypoPG."),
                index=None, columns=best.columns, ddl=best.ddl(), queryids=affected, verified="hypopg",
                cost_before=round(before_w, 2), cost_after=round(after_w, 2), index_size_bytes=size,
                benefit=before_w - after_w,
            )
            findings.append(finding)
            selection.chosen.append(Chosen(best, finding, affected, size, {q: after[q] for q in affected}))
            for q in affected:
                base[q] = after[q]
            # Later rounds re-score only the runners-up that helped on their own.
            remaining = [c for g, c, _, _ in scored[1: 1 + settings.rescored_candidates] if g > 0]
        for oid in kept:
            whatif.drop(oid)
    return findings


def unplannable_reason(exc: PlanError) -> str:
    if exc.sqlstate == "42501":  # insufficient_privilege: EXPLAIN needs SELECT on the tables
        return f"no privilege to plan it: {exc}"
    return f"cannot be planned: {exc}"


def _mentions(analysis: StatementAnalysis, table: Table, key: Key, cat: Catalog) -> bool:
    for usage in analysis.usages:
        if cat.table(usage.table) is not table:
            continue
        keys = [*usage.equality, *usage.in_list, *usage.joins, *usage.ranges, *usage.group_by,
                *(k for k, _ in usage.order_by)]
        if key in keys:
            return True
    return False


def select_heuristic(
    candidates: list[Candidate], workload: Workload, settings: Thresholds, selection: Selection | None = None,
) -> list[Finding]:
    """Without HypoPG: the widest candidate per leading key, ranked by the time its statements take."""
    time_of = {s.queryid: s.exec_seconds * 1000 for s, _ in workload.items}
    calls_of = {s.queryid: s.calls for s, _ in workload.items}
    findings: list[Finding] = []
    chosen: list[Candidate] = []
    for cand in sorted(candidates, key=lambda c: (-len(c.keys), c.columns)):
        lead = cand.keys[0][0]
        distinct = None if lead.is_expression else cand.table.distinct_values(lead.text)
        if distinct is not None and distinct <= settings.low_selectivity_max_distinct:
            continue
        wider = next((c for c in chosen if c.table is cand.table
                      and c.signature[1][: len(cand.keys)] == cand.signature[1]), None)
        if wider is not None:
            wider.queryids |= cand.queryids
            continue
        chosen.append(cand)
    for cand in chosen:
        ms = sum(time_of.get(q, 0.0) for q in cand.queryids)
        finding = Finding(
            kind="missing_index", table=cand.table.qualified,
            evidence=(f"{len(cand.queryids)} statement(s) filter {cand.table.qualified} on "
                      f"{', '.join(cand.columns)} ({sum(calls_of.get(q, 0) for q in cand.queryids)} calls, "
                      f"{ms / 1000:.1f} s in total) and no index serves them. Not verified: HypoPG is "
                      f"not available, so this is a heuristic."),
            columns=cand.columns, ddl=cand.ddl(), queryids=sorted(cand.queryids), verified="heuristic",
            benefit=ms,
        )
        findings.append(finding)
        if selection is not None:
            selection.chosen.append(Chosen(cand, finding, sorted(cand.queryids)))
    return findings
