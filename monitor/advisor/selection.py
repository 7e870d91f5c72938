"""The workload-level choice among index candidates: greedy per table, costed with HypoPG.

Every candidate is costed alone against every statement touching its table;
the best is kept (as a hypothetical index), and the others are costed again on
top of what is kept, so a wide index that serves several statements beats
narrow ones, and a candidate whose marginal benefit is small against its size
and the table's write rate is dropped. A candidate not worth it does not end
its table's round: the next ones are judged too. What is kept on one table
stays in place for the next tables, so a join's filter on its other table is
costed with the join key's index it needs. Without HypoPG the choice is a
heuristic (``select_heuristic``).

What was measured is kept with each choice (``Chosen``): the statements it
serves and their plans before any hypothetical index, which the plan and its
evidence build on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from collectors.postgres.statements import StatementStat
from monitor.core import units

from . import plans
from .candidates import Candidate, Workload
from .catalog import Catalog, Table
from .findings import Finding
from .normalize import Planned, fallback_form
from .plans import Plan
from .query_analysis import Key, StatementAnalysis
from .rates import Rates
from .settings import Thresholds
from .whatif import PlanError, WhatIf
from .writes import Written, referenced_columns


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
    companion_findings: list[Finding] = field(default_factory=list)  # the other indexes of an OR bundle
    companion_sizes: list[int] = field(default_factory=list)


@dataclass
class Judged:
    """The best candidate costed for one statement (the lowest cost it reached), and what became of it."""

    label: str  # the candidate, e.g. public.orders (customer_id)
    cost_before: float  # the statement's generic-plan cost with the real indexes
    cost_after: float  # with the candidate (on top of the indexes kept before it on the table)
    verdict: str = "not_judged"  # kept | below_threshold | write_cost | no_gain | over_budget | not_judged
    reason: str = ""  # for people, with the figures
    signature: object = None  # the candidate's (to find its verdict)


@dataclass
class Selection:
    chosen: list[Chosen] = field(default_factory=list)
    initial: dict[int, Measured] = field(default_factory=dict)  # queryid -> plan with the real indexes
    rejected: list[tuple[Candidate, str]] = field(default_factory=list)  # worth less than they cost
    judged: dict[int, Judged] = field(default_factory=dict)  # queryid -> its best candidate (coverage.py)


@dataclass
class Verifying:
    """What the verified selection works with, across its tables (``select_verified``)."""

    workload: Workload
    cat: Catalog
    whatif: WhatIf
    settings: Thresholds
    unplannable: dict[int, str] = field(default_factory=dict)  # queryid -> why it cannot be planned (grows)
    selection: Selection = field(default_factory=Selection)  # gets the detail of what is chosen
    rates: Rates = field(default_factory=Rates)
    findings: list[Finding] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)  # hypothetical indexes of the kept candidates, every table so far


@dataclass
class TableRound:
    """One table's greedy choice: its statements, their costs so far, and what was kept on it."""

    table: Table
    stmts: list[tuple[StatementStat, StatementAnalysis]]
    base: dict[int, float] = field(default_factory=dict)  # queryid -> cost with what is kept so far
    first: dict[int, float] = field(default_factory=dict)  # queryid -> cost with the real indexes only
    kept_here: list[Candidate] = field(default_factory=list)
    held_for: set[int] = field(default_factory=set)  # statements a candidate rejected on write cost was held for
    calls: dict[int, int] = field(init=False)

    def __post_init__(self) -> None:
        self.calls = {s.queryid: s.calls for s, _ in self.stmts}


@dataclass
class Scored:
    """A candidate costed on the statements it can help: their costs with it, and its indexes' sizes."""

    gain: float
    cand: Candidate
    after: dict[int, float]
    sizes: list[int]


@dataclass
class Picked:
    """The candidate kept in a round, with the weighted costs of the statements it serves."""

    scored: Scored
    affected: list[int]
    before_w: float
    after_w: float


def select_verified(candidates: list[Candidate], v: Verifying) -> list[Finding]:
    """Greedy per-table selection with HypoPG; returns missing_index findings (``v.selection`` gets the detail)."""
    by_table: dict[int, list[Candidate]] = {}
    for cand in candidates:
        by_table.setdefault(cand.table.oid, []).append(cand)
    stmts_of = {oid: v.workload.on_table(v.cat.tables[oid], v.cat) for oid in by_table}
    # Under a budget, the tables where the workload spends most time go first.
    order = sorted(by_table, key=lambda oid: (-sum(s.exec_seconds * 1000 for s, _ in stmts_of[oid]), oid))
    for table_oid in order:
        stmts = [(s, a) for s, a in stmts_of[table_oid] if s.queryid not in v.unplannable]
        _select_on_table(v, by_table[table_oid], TableRound(v.cat.tables[table_oid], stmts))
    for oid in v.kept:
        v.whatif.drop(oid)
    return v.findings


def _select_on_table(v: Verifying, cands: list[Candidate], t: TableRound) -> None:
    """Rounds on one table: score the remaining candidates, keep the best worth it, re-score the runners-up."""
    calls = t.calls
    time_of = {s.queryid: s.exec_seconds * 1000 / max(s.calls, 1) for s, _ in t.stmts}
    # Most promising first (calls x time of the statements that asked for it), a bounded number.
    prior = {id(c): sum(calls.get(q, 0) * ms for q, ms in time_of.items() if q in c.queryids) for c in cands}
    remaining = sorted(cands, key=lambda c: (-prior[id(c)], c.columns))[: v.settings.max_candidates_per_table]
    while remaining and not v.whatif.budget.exhausted():
        scored = [x for x in (_score(v, t, cand) for cand in remaining) if x is not None]
        if not scored:
            break
        _rank(scored, v.settings)
        _record_best(v, t, scored)
        # A candidate not worth it does not end the table's round: the next one may serve other
        # statements (an occasional heavy lookup, a sort the first index leaves) and pay on its own.
        fate: dict[object, tuple[str, str]] = {}  # candidate signature -> (verdict, reason)
        picked = None
        for x in scored:
            picked = _judge(v, t, x, fate)
            if picked is not None:
                break
        for judged in v.selection.judged.values():
            if judged.verdict == "not_judged" and judged.signature in fate:
                judged.verdict, judged.reason = fate[judged.signature]
        if picked is None:
            break  # none of the remaining ones is worth it
        _keep(v, t, picked)
        # Later rounds re-score only the runners-up that helped on their own and were not judged yet.
        runners = [x.cand for x in scored if x.gain > 0 and x.cand.signature not in fate]
        remaining = runners[: v.settings.rescored_candidates]


def _relevant(v: Verifying, t: TableRound, cand: Candidate) -> list[tuple[StatementStat, StatementAnalysis]]:
    """Statements a btree led by one of the candidate's first keys can help, with a base cost."""
    leads = [m.keys[0][0] for m in cand.members]
    out = []
    mentioning = [(s, a) for s, a in t.stmts if any(mentions(a, t.table, lead, v.cat) for lead in leads)]
    mentioning.sort(key=lambda sa: (-sa[0].exec_seconds * 1000, sa[0].queryid))
    for stat, analysis in mentioning[: v.settings.max_statements_per_candidate]:
        if stat.queryid in v.unplannable:
            continue
        if stat.queryid not in t.base:
            if v.whatif.budget.exhausted():
                continue
            known = v.selection.initial.get(stat.queryid)
            if known is not None and not v.whatif.hypothetical:
                t.base[stat.queryid] = known.cost
            else:
                try:
                    cost, plan = statement_cost(v.whatif, v.workload, stat, analysis)
                except PlanError as exc:
                    v.unplannable[stat.queryid] = unplannable_reason(exc)
                    continue
                t.base[stat.queryid] = cost
                if not v.whatif.hypothetical:
                    v.selection.initial.setdefault(stat.queryid, Measured(cost, plan))
            known = v.selection.initial.get(stat.queryid)
            t.first.setdefault(stat.queryid, known.cost if known is not None else t.base[stat.queryid])
        out.append((stat, analysis))
    return out


def _score(v: Verifying, t: TableRound, cand: Candidate) -> Scored | None:
    """The candidate costed (as hypothetical indexes) on the statements it can help; None when none can."""
    rel = _relevant(v, t, cand)
    whatif, workload = v.whatif, v.workload
    if whatif.budget.exhausted() or not rel:
        return None
    created = [whatif.create(m.hypothetical_sql()) for m in cand.members]
    after: dict[int, float] = {}
    memo: dict[str, float] = {}  # one text, several queryids (int2/int4/int8 parameters): plan it once
    for stat, analysis in rel:
        if whatif.budget.exhausted():
            break
        text = workload.planned(stat, analysis)[0]
        if text in memo and stat.queryid not in workload.variants:
            after[stat.queryid] = memo[text]
            continue
        try:
            after[stat.queryid] = memo[text] = statement_cost(whatif, workload, stat, analysis)[0]
        except PlanError:
            after[stat.queryid] = t.base[stat.queryid]
    for oid, _ in created:
        whatif.drop(oid)
    calls = t.calls
    gain = sum(calls[q] * (t.base[q] - c) for q, c in after.items() if c < t.base[q])
    return Scored(gain, cand, after, [size for _, size in created])


def _rank(scored: list[Scored], settings: Thresholds) -> None:
    """Best gain first; nearly as good and smaller wins: (customer_id) over (customer_id, created_at) when the
    sort the second saves is worth little; the runners-up are costed again on top of it."""
    scored.sort(key=lambda x: (-x.gain, len(x.cand.members), len(x.cand.keys), x.cand.columns))
    close = [x for x in scored if x.gain > 0 and x.gain >= (1 - settings.prefer_smaller_within) * scored[0].gain]
    if len(close) > 1:
        pick = min(close, key=lambda x: x.cand.estimated_bytes())
        scored.remove(pick)
        scored.insert(0, pick)


def _record_best(v: Verifying, t: TableRound, scored: list[Scored]) -> None:
    """Each statement's best candidate so far, the lowest cost it reached (coverage.py)."""
    for x in scored:
        for q, c in x.after.items():
            best_so_far = v.selection.judged.get(q)
            if best_so_far is None or c < best_so_far.cost_after:
                v.selection.judged[q] = Judged(x.cand.label, t.first.get(q, t.base[q]), c,
                                               signature=x.cand.signature)


def _judge(v: Verifying, t: TableRound, x: Scored, fate: dict[object, tuple[str, str]]) -> Picked | None:
    """The candidate if it is worth keeping; otherwise None, with its verdict and reason in ``fate``."""
    cand, after, base, settings = x.cand, x.after, t.base, v.settings
    calls = t.calls
    affected = sorted(q for q, c in after.items() if c < base[q] * 0.999)
    before_w = sum(calls[q] * base[q] for q in affected)
    after_w = sum(calls[q] * after[q] for q in affected)
    # Refining an index already kept (a sort the first one leaves) is judged against the statements'
    # cost before any advice: it must be worth as much as a first index. Another access path is
    # judged against what its statements cost now.
    refines = any(_prefix_of(k, cand) for k in t.kept_here)
    first_w = sum(calls[q] * t.first.get(q, base[q]) for q in affected) if refines else before_w
    if x.gain <= 0 or not affected or before_w <= 0:
        fate[cand.signature] = ("no_gain", f"{cand.label} does not lower its cost")
        return None
    removed = (before_w - after_w) / first_w
    if removed < settings.min_improvement_ratio:
        fate[cand.signature] = ("below_threshold", (
            f"{cand.label} would remove {units.percent_less(removed)} of the weighted cost of the "
            f"{len(affected)} statement(s) it serves ({first_w:,.0f} to "
            f"{first_w - (before_w - after_w):,.0f}), "
            f"under min_improvement_ratio {settings.min_improvement_ratio:.0%}"))
        return None
    rejected = write_cost_rejection(cand, x.gain, sum(x.sizes), settings, v.rates,
                                    existing=len(v.cat.indexes_of(t.table))
                                    + sum(len(k.members) for k in t.kept_here))
    if rejected is not None:
        if not set(affected) <= t.held_for:  # held back once for the same statements, not per variation
            v.selection.rejected.append((cand, rejected))
            t.held_for.update(affected)
        fate[cand.signature] = ("write_cost", f"{cand.label} {rejected}")
        return None
    fate[cand.signature] = ("kept", f"{cand.label} is advised")
    return Picked(x, affected, before_w, after_w)


def _keep(v: Verifying, t: TableRound, picked: Picked) -> None:
    """Keep the picked candidate as hypothetical indexes (for the next rounds and tables), with its findings."""
    best, after, sizes = picked.scored.cand, picked.scored.after, picked.scored.sizes
    affected, before_w, after_w, table = picked.affected, picked.before_w, picked.after_w, t.table
    for member in best.members:
        v.kept.append(v.whatif.create(member.hypothetical_sql())[0])
    t.kept_here.append(best)
    finding = missing_index_finding(best, affected, sum(t.calls[q] for q in affected), (before_w, after_w), sizes[0])
    extra = [Finding(
        kind="missing_index", table=table.qualified, table_id=table.id,
        evidence=(f"Advised together with {best.label} for the same {len(affected)} statement(s): "
                  f"{best.why}. Estimated size {units.size(member_size)}, checked with HypoPG."),
        columns=member.columns, ddl=member.ddl(), queryids=affected, verified="hypopg",
        index_size_bytes=member_size, benefit=(before_w - after_w) / 2,
    ) for member, member_size in zip(best.companions, sizes[1:], strict=True)]
    v.findings += [finding, *extra]
    v.selection.chosen.append(Chosen(best, finding, affected, sizes[0], {q: after[q] for q in affected},
                                     extra, sizes[1:]))
    for q in affected:
        t.base[q] = after[q]


def missing_index_finding(cand: Candidate, affected: list[int], calls: int, weighted: tuple[float, float],
                          size: int, extra: str = "") -> Finding:
    """The finding of a kept candidate: the weighted cost (before, after) of the statements it serves."""
    before_w, after_w = weighted
    table = cand.table
    return Finding(
        kind="missing_index", table=table.qualified, table_id=table.id,
        evidence=(f"{len(affected)} statement(s) on {table.qualified} "
                  f"({calls} calls) would go from a weighted generic-plan "
                  f"cost of {before_w:.0f} to {after_w:.0f} ({units.percent_less(1 - after_w / before_w)} "
                  f"less) with this index (estimated size {units.size(size)}), checked with HypoPG."
                  + (f" Why: {cand.why}." if cand.why else "") + extra),
        index=None, columns=cand.columns, ddl=cand.ddl(), queryids=affected, verified="hypopg",
        cost_before=round(before_w, 2), cost_after=round(after_w, 2), index_size_bytes=size,
        benefit=before_w - after_w,
    )


def _prefix_of(kept: Candidate, cand: Candidate) -> bool:
    """``cand`` extends ``kept``: the same table, and ``kept``'s keys lead ``cand``'s."""
    k, c = kept.key_signature, cand.key_signature
    return kept.table is cand.table and len(k) < len(c) and c[: len(k)] == k


def write_cost_rejection(cand: Candidate, gain: float, size: int, settings: Thresholds,
                         rates: Rates, existing: int = 0) -> str | None:
    """Why a candidate costs more on writes than it saves, or None when it is worth it.

    Gains and writes are counted over the same window (rates.py): the planner-cost units the statements save
    against ``write_penalty_per_row`` units per index entry the rows written would add, plus
    ``size_penalty_per_page`` per 8 kB page of the new indexes. HOT-aware: an UPDATE that sets a column of the
    index can no longer be HOT, so besides its entry in the new index, the share of those updates that was HOT
    (``n_tup_hot_upd``) now touches the ``existing`` indexes too; an UPDATE that sets none of its columns adds
    an entry only when it was not HOT already, and a HOT one stays HOT.
    """
    table = cand.table
    entries = len(cand.members)
    size_cost = (size / 8192) * settings.size_penalty_per_page
    written = rates.table_writes.get(table.oid, Written())
    hot = rates.hot_fraction.get(table.oid, 0.0)
    columns = index_columns(cand)
    ending_hot = sum(rows for cols, rows in written.updated.items() if cols is not None and cols & columns)
    others = written.updates - ending_hot
    added_entries = (written.added * entries + ending_hot * (entries + hot * existing)
                     + others * (1 - hot) * entries)
    cost = added_entries * settings.write_penalty_per_row
    if gain >= cost + size_cost:
        return None
    unit = " per hour" if rates.per_hour(1.0) is not None else " over their window"
    parts = [f"{_figure(rates, written.added)} rows inserted"] if written.added else []
    if ending_hot:
        parts.append(f"{_figure(rates, ending_hot)} updates that set "
                     f"{', '.join(sorted(columns & _set_columns(written)))} (no longer HOT: {hot:.0%} of the table's "
                     f"updates were, and these would now also touch its {existing} other index(es))")
    if others:
        parts.append(f"{_figure(rates, others)} other updates ({hot:.0%} HOT, which stay HOT)")
    return (f"rejected: its statements would save about {_figure(rates, gain)} planner-cost units{unit}, less than it "
            f"costs on writes: {'; '.join(parts) or 'no rows written'} on {table.qualified}, about "
            f"{_figure(rates, added_entries)} new index entries{unit} x {settings.write_penalty_per_row:g} "
            f"(write_penalty_per_row) = {_figure(rates, cost)}{unit}")


def _figure(rates: Rates, amount: float) -> str:
    """An amount over the statements' window, per hour when that window's length is known."""
    per_hour = rates.per_hour(amount)
    return f"{per_hour if per_hour is not None else amount:,.0f}"


def index_columns(cand: Candidate) -> frozenset[str]:
    """The table columns a candidate's indexes read: an UPDATE that sets one of them cannot be HOT."""
    out: set[str] = set()
    for member in cand.members:
        for key, _ in member.keys:
            out |= referenced_columns(key.text) if key.is_expression else {key.text}
        if member.predicate:
            out |= referenced_columns(member.predicate)
    return frozenset(out)


def _set_columns(written: Written) -> frozenset[str]:
    return frozenset(c for cols in written.updated if cols for c in cols)


def statement_cost(whatif: WhatIf, workload: Workload, stat: StatementStat,
                   analysis: StatementAnalysis) -> tuple[float, Plan]:
    """The statement's cost and a plan that shows it: the generic plan, or, for a statement whose
    parameter compares a skewed column, the cost weighted over the values it is called with (skew.py),
    with the plan of the most frequent value."""
    variants = workload.variants.get(stat.queryid)
    if not variants:
        plan = explain_statement(whatif, workload, stat, analysis)
        return float(plan["Total Cost"]), plan
    total, shown, heaviest = 0.0, None, -1.0
    for variant in variants:
        plan = _explain_text(whatif, variant.text, variant.n_params)
        total += variant.weight * float(plan["Total Cost"])
        if variant.weight > heaviest:
            shown, heaviest = plan, variant.weight
    assert shown is not None
    return total, {**shown, plans.WEIGHTED: total}


def _explain_text(whatif: WhatIf, text: str, n_params: int) -> Plan:
    try:
        return whatif.explain(text, n_params)
    except PlanError as exc:
        fallback = fallback_form(Planned(text), exc.sqlstate, str(exc))
        if fallback is None:
            raise
        return whatif.explain(fallback.text, n_params)


def explain_statement(whatif: WhatIf, workload: Workload, stat: StatementStat,
                      analysis: StatementAnalysis) -> Plan:
    """The generic plan of a statement; a text refused for a parameter-type reason is tried once more in
    its fallback form (normalize.py), which is kept for the statement's later plans."""
    text, n_params = workload.planned(stat, analysis)
    try:
        return whatif.explain(text, n_params)
    except PlanError as exc:
        fallback = fallback_form(Planned(text, workload.rewrites.get(stat.queryid, ())), exc.sqlstate, str(exc))
        if fallback is None or whatif.budget.exhausted():
            raise
        plan = whatif.explain(fallback.text, n_params)  # raises PlanError when this fails too
        workload.planned_texts[stat.queryid] = fallback.text
        workload.rewrites[stat.queryid] = fallback.rewrites
        return plan


def unplannable_reason(exc: PlanError) -> str:
    if exc.sqlstate == "42501":  # insufficient_privilege: what is planned is a read (writes.py), so it is a read grant
        return f"no privilege to plan it: {missing_privilege(str(exc))} ({exc})"
    return f"cannot be planned: {exc}"


_DENIED = re.compile(r"permission denied for (table|view|materialized view|sequence|schema|function|procedure|"
                     r"foreign table|type|large object|database|column) (\S+)")
_READ_PRIVILEGE = {"schema": "USAGE", "function": "EXECUTE", "procedure": "EXECUTE", "type": "USAGE",
                   "database": "CONNECT"}


def missing_privilege(message: str) -> str:
    """The privilege the server's message says the role lacks, for a read: ``SELECT on table orders``."""
    found = _DENIED.search(message)
    if found is None:
        return "a privilege the server did not name"
    what, name = found.groups()
    return f"{_READ_PRIVILEGE.get(what, 'SELECT')} on {what} {name}"


def mentions(analysis: StatementAnalysis, table: Table, key: Key, cat: Catalog) -> bool:
    """The statement uses ``key`` of ``table`` in a way an index led by it can serve."""
    for usage in analysis.usages:
        if cat.table(usage.table) is not table:
            continue
        keys = [*usage.equality, *usage.in_list, *usage.joins, *usage.ranges, *usage.group_by,
                *(k for k, _ in usage.order_by)]
        keys += [k for parts in usage.or_groups for p in parts for k in (*p.equality, *p.in_list, *p.ranges)]
        if key in keys:
            return True
    return False


def _gives_path_of(wide: Candidate, cand: Candidate) -> bool:
    """``wide`` serves ``cand``'s lookups: its first keys are ``cand``'s equality keys in any order (a
    permutation is the same index for them), then ``cand``'s tail."""
    n = cand.n_equality
    w = [sig for sig, _ in wide.key_signature]
    c = [sig for sig, _ in cand.key_signature]
    return len(w) >= len(c) and set(w[:n]) == set(c[:n]) and w[n:len(c)] == c[n:]


def select_heuristic(
    candidates: list[Candidate], workload: Workload, settings: Thresholds, selection: Selection | None = None,
) -> list[Finding]:
    """Without HypoPG: the widest candidate per leading key, ranked by the time its statements take."""
    time_of = {s.queryid: s.exec_seconds * 1000 for s, _ in workload.items}
    calls_of = {s.queryid: s.calls for s, _ in workload.items}
    findings: list[Finding] = []
    chosen: list[Candidate] = []
    for cand in sorted(candidates, key=lambda c: (-len(c.keys), c.columns)):
        if cand.companions or cand.predicate:
            continue  # OR bundles and partial indexes need HypoPG to be judged
        lead = cand.keys[0][0]
        distinct = None if lead.is_expression else cand.table.distinct_values(lead.text)
        if distinct is not None and distinct <= settings.low_selectivity_max_distinct:
            continue
        wider = next((c for c in chosen if c.table is cand.table and _gives_path_of(c, cand)), None)
        if wider is not None:
            wider.queryids |= cand.queryids
            continue
        chosen.append(cand)
    # The heaviest few per table: a guess is worth printing only where the time is.
    per_table: dict[int, int] = {}
    capped = []
    for cand in sorted(chosen, key=lambda c: -sum(time_of.get(q, 0.0) for q in c.queryids)):
        per_table[cand.table.oid] = per_table.get(cand.table.oid, 0) + 1
        if per_table[cand.table.oid] <= settings.heuristic_max_per_table:
            capped.append(cand)
    for cand in capped:
        ms = sum(time_of.get(q, 0.0) for q in cand.queryids)
        finding = Finding(
            kind="missing_index", table=cand.table.qualified, table_id=cand.table.id,
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
