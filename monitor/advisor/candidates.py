"""Index candidates from predicate usage, and the workload-level choice among them.

A candidate is built per table reference: equality keys first (``=``, ``IN``,
``= ANY``, join keys; low-cardinality columns last so candidates of several
statements share prefixes), then one range key, or the ORDER BY keys when the
query has a LIMIT, or the GROUP BY keys. Candidates an existing valid index
already serves are dropped, and so are small tables.

The choice is made across the workload, per table, greedily: every candidate
is costed alone against every statement touching its table; the best is kept
(as a hypothetical index), and the others are costed again on top of what is
kept, so a wide index that serves several statements beats narrow ones, and a
candidate whose marginal benefit is small against its size and the table's
write rate is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from collectors.postgres.statements import StatementStat

from .catalog import Catalog, Index, Table, key_signature
from .ddl import create_index
from .findings import Finding
from .query_analysis import Key, StatementAnalysis, TableUsage
from .settings import Thresholds
from .whatif import PlanError, WhatIf


@dataclass
class Candidate:
    table: Table
    keys: tuple[tuple[Key, bool], ...]  # (key, descending)
    n_equality: int
    queryids: set[int] = field(default_factory=set)

    @property
    def signature(self) -> tuple[int, tuple[tuple[str, bool], ...]]:
        return self.table.oid, tuple((key_signature(k), d) for k, d in self.keys)

    @property
    def columns(self) -> list[str]:
        return [k.text + (" DESC" if d else "") for k, d in self.keys]

    def ddl(self) -> str:
        return create_index(self.table.schema, self.table.name, list(self.keys))

    def hypothetical_sql(self) -> str:
        return self.ddl().replace("CREATE INDEX CONCURRENTLY", "CREATE INDEX").rstrip(";")


@dataclass
class Workload:
    """Statements that can be analyzed, with the per-table statements they touch."""

    items: list[tuple[StatementStat, StatementAnalysis]]

    def on_table(self, table: Table, cat: Catalog) -> list[tuple[StatementStat, StatementAnalysis]]:
        out = []
        for stat, analysis in self.items:
            if analysis.kind == "insert":
                continue
            if any(cat.table(u.table) is table for u in analysis.usages):
                out.append((stat, analysis))
        return out


def _equality_keys(usage: TableUsage, table: Table, settings: Thresholds) -> list[Key]:
    keys: list[Key] = []
    for key in (*usage.equality, *usage.in_list, *usage.joins):
        if key not in keys:
            keys.append(key)

    def low(key: Key) -> bool:
        distinct = None if key.is_expression else table.distinct_values(key.text)
        return distinct is not None and distinct <= settings.low_selectivity_max_distinct

    return sorted(keys, key=low)  # stable: appearance order, low-cardinality keys last


def candidates_for_usage(usage: TableUsage, table: Table, settings: Thresholds) -> list[Candidate]:
    eq = _equality_keys(usage, table, settings)
    tail: list[tuple[Key, bool]] = []
    if usage.ranges:
        tail = [(usage.ranges[0], False)]
    elif usage.order_by and usage.limited:
        # All-descending order is served by a backward scan of an ascending index.
        all_desc = all(d for _, d in usage.order_by)
        tail = [(k, d and not all_desc) for k, d in usage.order_by]
    elif usage.group_by:
        tail = [(k, False) for k in usage.group_by]
    tail = [(k, d) for k, d in tail if k not in eq]
    out = []
    for keys in ([(k, False) for k in eq] + tail, [(k, False) for k in eq]):
        keys = keys[: settings.max_index_columns]
        if keys:
            out.append(Candidate(table, tuple(keys), min(len(eq), len(keys))))
    if not eq and not tail:
        return []
    return out


def served_by(candidate: Candidate, indexes: Sequence[Index]) -> Index | None:
    """An existing valid, non-partial index whose leading keys already give this access path."""
    n_eq = candidate.n_equality
    eq = {key_signature(k) for k, _ in candidate.keys[:n_eq]}
    tail = [key_signature(k) for k, _ in candidate.keys[n_eq:]]
    for index in indexes:
        if not index.is_valid or index.predicate is not None or index.method != "btree":
            continue
        sig = index.key_signature()
        if len(sig) >= len(eq) + len(tail) and set(sig[:n_eq]) == eq and list(sig[n_eq:n_eq + len(tail)]) == tail:
            return index
    return None


def build_candidates(workload: Workload, cat: Catalog, settings: Thresholds) -> list[Candidate]:
    found: dict[object, Candidate] = {}
    for stat, analysis in workload.items:
        for usage in analysis.usages:
            table = cat.table(usage.table)
            if table is None or table.rows < settings.min_table_rows:
                continue
            indexes = cat.indexes_of(table)
            for cand in candidates_for_usage(usage, table, settings):
                if served_by(cand, indexes) is not None:
                    continue
                known = found.setdefault(cand.signature, cand)
                known.queryids.add(stat.queryid)
    return list(found.values())


def select_verified(
    candidates: list[Candidate], workload: Workload, cat: Catalog, whatif: WhatIf,
    settings: Thresholds, unplannable: dict[int, str],
) -> list[Finding]:
    """Greedy per-table selection with HypoPG; returns missing_index findings."""
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
                    try:
                        base[stat.queryid] = whatif.cost(stat.query, analysis.n_params)
                    except PlanError as exc:
                        unplannable[stat.queryid] = f"cannot be planned: {exc}"
                        continue
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
                        after[stat.queryid] = whatif.cost(stat.query, analysis.n_params)
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
            findings.append(Finding(
                kind="missing_index", table=table.qualified,
                evidence=(f"{len(affected)} statement(s) on {table.qualified} "
                          f"({sum(calls[q] for q in affected)} calls) would go from a weighted generic-plan "
                          f"cost of {before_w:.0f} to {after_w:.0f} ({100 * (1 - after_w / before_w):.0f}% "
                          f"less) with this index (estimated size {size} bytes), checked with HypoPG."),
                index=None, columns=best.columns, ddl=best.ddl(), queryids=affected, verified="hypopg",
                cost_before=round(before_w, 2), cost_after=round(after_w, 2), index_size_bytes=size,
                benefit=before_w - after_w,
            ))
            for q in affected:
                base[q] = after[q]
            # Later rounds re-score only the runners-up that helped on their own.
            remaining = [c for g, c, _, _ in scored[1: 1 + settings.rescored_candidates] if g > 0]
        for oid in kept:
            whatif.drop(oid)
    return findings


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
    candidates: list[Candidate], workload: Workload, settings: Thresholds
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
        findings.append(Finding(
            kind="missing_index", table=cand.table.qualified,
            evidence=(f"{len(cand.queryids)} statement(s) filter {cand.table.qualified} on "
                      f"{', '.join(cand.columns)} ({sum(calls_of.get(q, 0) for q in cand.queryids)} calls, "
                      f"{ms / 1000:.1f} s in total) and no index serves them. Not verified: HypoPG is "
                      f"not available, so this is a heuristic."),
            columns=cand.columns, ddl=cand.ddl(), queryids=sorted(cand.queryids), verified="heuristic",
            benefit=ms,
        ))
    return findings
