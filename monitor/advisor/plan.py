"""From findings to one plan: create, drop and replace actions, checked as a whole.

1. **Drops** come from the hygiene findings (invalid, duplicate, redundant,
   unused, low-selectivity); a duplicate relies on the index it duplicates, a
   redundant index on its cover.
2. **Creates** come from the missing-index choice. A new index whose leading
   columns are exactly an existing droppable btree's (``payments (user_id)``
   under ``(user_id, id)``) supersedes it: the action becomes a **replace**
   (create the new one, then drop the old one, in that order).
3. **Coherence**: no action may drop an index another action relies on. When
   a drop's cover is itself dropped, the drop relies on the new index that
   replaces the cover, or stands on its own (never scanned, low selectivity),
   or is held back with the reason.
4. **The final index set, checked together** (HypoPG): every create is added
   hypothetically, the statements on the tables concerned are planned once,
   and each drop is checked against the statements whose plans use the index:
   with ``hypopg_hide_index`` (HypoPG >= 1.4) by costing them without it;
   otherwise by the catalog (a cover that stays serves its lookups; an index
   with no cover that a plan still uses is not dropped).
5. **Order**: creates and replaces first (most benefit first), then drops, so
   no lookup is ever left without its index.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from collectors.postgres.statements import StatementStat

from . import plans
from .actions import Action, HeldBack, NewIndex, Plan
from .candidates import Candidate, Workload
from .catalog import Catalog, Index, key_signature
from .context import RunContext
from .evidence import new_indexes
from .findings import Finding
from .hygiene import low_selectivity_distinct, young_zero_scan, zero_scan_droppable
from .safety import foreign_key_keeps
from .selection import Chosen, statement_cost
from .settings import Thresholds
from .whatif import Budget, PlanError, WhatIf

DROP_ORDER = ("invalid_index", "duplicate_index", "redundant_index", "unused_index", "low_selectivity_index")


@dataclass
class _Create:
    chosen: Chosen
    supersedes: list[Index] = field(default_factory=list)
    superseded_findings: list[Finding] = field(default_factory=list)
    new: NewIndex | None = None

    @property
    def label(self) -> str:
        return self.chosen.candidate.label


@dataclass
class _Drop:
    index: Index
    finding: Finding
    kind: str
    reason: str
    relies_on: str | None = None  # qualified name of an existing index, or a new index's label
    new_cover: _Create | None = None
    users: list[int] = field(default_factory=list)


@dataclass
class _Draft:
    """The plan being built: its actions and held-back items so far, and the drops and creates left to place."""

    plan: Plan
    drops: list[_Drop]
    creates: list[_Create]


def _supersedes(cand: Candidate, index: Index) -> bool:
    """The new index's leading columns are exactly the existing index's keys (and nothing is lost)."""
    if (index.method != "btree" or cand.method != "btree" or not index.is_valid or index.protected
            or index.predicate is not None or index.include or not index.default_opclasses
            or index.table_oid != cand.table.oid):
        return False
    new_sig = tuple(key_signature(k) for k, _ in cand.keys)
    old_sig = index.key_signature()
    return len(old_sig) < len(new_sig) and new_sig[: len(old_sig)] == old_sig


def _prefix_of(index: Index, cand: Candidate) -> bool:
    if cand.method != "btree":
        return False  # a hash index serves equality alone: it leads with nothing
    new_sig = tuple(key_signature(k) for k, _ in cand.keys)
    old_sig = index.key_signature()
    return len(old_sig) <= len(new_sig) and new_sig[: len(old_sig)] == old_sig


def build_plan(run: RunContext) -> Plan:
    """The plan of a run; sets ``action`` / ``held_back`` / ``supersedes`` / ``replaced_by`` on the findings.

    It reads the run's findings, selection, catalog, workload, rates, HypoPG session (``whatif``: the plan is
    checked as a whole when it is there) and ``no_drops`` (``safety.drops_blocked``: why no index may be
    dropped in this run, and from when). A finding the plan holds back keeps its reason and loses its DDL:
    nothing held back can be copied and run."""
    findings, selection, cat, workload = run.report.findings, run.selection, run.cat, run.workload
    settings, whatif = run.settings, run.whatif
    plan = Plan(drop_check="hypopg_hide_index" if whatif is not None and whatif.can_hide else
                "catalog and statements")
    by_oid = {i.oid: i for i in cat.indexes}  # by oid: "a.b"."c" and "a"."b.c" both read a.b.c
    drops: list[_Drop] = []
    for f in findings:
        if f.kind in DROP_ORDER and f.index_oid in by_oid:
            drops.append(_Drop(by_oid[f.index_oid], f, f.kind, f.evidence, f.duplicate_of or f.covered_by))

    creates: list[_Create] = []
    claimed: set[int] = set()
    for chosen in sorted(selection.chosen, key=lambda c: -c.finding.benefit):
        create = _Create(chosen)
        for index in cat.indexes_of(chosen.candidate.table):
            if index.oid not in claimed and _supersedes(chosen.candidate, index):
                claimed.add(index.oid)
                create.supersedes.append(index)
                for d in [d for d in drops if d.index.oid == index.oid]:
                    drops.remove(d)  # the replace drops it, after creating what covers it
                    create.superseded_findings.append(d.finding)
        creates.append(create)

    judged = {f.index_oid for f in findings if f.index_oid is not None}
    for index, why, ready in young_zero_scan(cat, settings):
        if index.oid not in judged:  # an index with another finding (low selectivity) is judged by it
            plan.held_back.append(HeldBack(index.qualified, "unused_index", why, ready))
    _safety_holds(plan, drops, creates, cat, run.no_drops)
    _resolve(drops, creates, cat, settings, plan)
    final: dict[int, plans.Plan] = {}
    labels: dict[int, str] = {}
    if whatif is not None:
        final, labels = _check_whole(_Draft(plan, drops, creates), run, whatif)
    else:  # no HypoPG: the statements' generic plans with the real indexes tell which ones they use
        users = _users({q: m.plan for q, m in selection.initial.items()})
        for d in list(drops):
            d.users = sorted(users.get(d.index.name, []))
            if d.users and d.kind != "invalid_index":
                _hold_if_used_alone(plan, drops, d, "today")
    _hold_unchecked(plan, drops, cat, workload, set(final) if whatif is not None else set(selection.initial))

    stats: dict[int, StatementStat] = {s.queryid: s for s, _ in workload.items}
    for rejected, why in selection.rejected:
        plan.held_back.append(HeldBack(rejected.label, "missing_index", why))
    for create in creates:
        news = new_indexes(create.chosen, selection, stats, run.rates, final, labels)
        _create_action(plan, create, news)
    _drop_actions(plan, drops, cat)
    for f in findings:
        if f.held_back:
            f.ddl = None
    return plan


def _create_action(plan: Plan, create: _Create, news: list[NewIndex]) -> None:
    """The create (or replace) action of a kept candidate; its findings get the action's number."""
    create.new = news[0]
    old = create.supersedes
    reason = create.chosen.finding.evidence
    if old:
        names = ", ".join(i.qualified for i in old)
        reason += (f" It supersedes {names}: its columns are the new index's leading columns, so every lookup "
                   f"it serves is served by the new one. Create the new index first, then drop {names}.")
    action = Action(
        order=len(plan.actions) + 1, action="replace" if old else "create",
        table=create.chosen.candidate.table.qualified, table_id=create.chosen.candidate.table.id, reason=reason,
        kinds=["missing_index", *sorted({f.kind for f in create.superseded_findings})],
        checked=create.chosen.finding.verified or "hypopg", creates=news,
        drops=[i.qualified for i in old], drop_ddl=[i.drop_ddl() for i in old],
        supersedes=[i.qualified for i in old], benefit=create.chosen.finding.benefit,
    )
    plan.actions.append(action)
    create.chosen.finding.action = action.order
    for companion in create.chosen.companion_findings:
        companion.action = action.order
    if old:
        create.chosen.finding.supersedes = [i.qualified for i in old]
    for f in create.superseded_findings:
        f.action = action.order
        f.replaced_by = create.label


def _drop_actions(plan: Plan, drops: list[_Drop], cat: Catalog) -> None:
    """The drop actions, by kind, biggest first; their findings get the action's number."""
    rank = {k: n for n, k in enumerate(DROP_ORDER)}
    for d in sorted(drops, key=lambda d: (rank[d.kind], -d.index.size_bytes, d.index.qualified)):
        table = cat.tables.get(d.index.table_oid)
        action = Action(
            order=len(plan.actions) + 1, action="drop", table=table.qualified if table else "",
            table_id=table.id if table else None, reason=d.reason,
            kinds=[d.kind], checked=plan.drop_check if plan.checked_as_whole else "catalog",
            drops=[d.index.qualified], drop_ddl=[d.index.drop_ddl()],
            replaced_by=d.relies_on, relies_on=[d.relies_on] if d.relies_on else [], statements_using=d.users,
        )
        plan.actions.append(action)
        d.finding.action = action.order
        if d.relies_on:
            d.finding.replaced_by = d.relies_on


def _safety_holds(plan: Plan, drops: list[_Drop], creates: list[_Create], cat: Catalog,
                  no_drops: tuple[str, datetime | None] | None) -> None:
    """safety.py's rules on the drops as planned: blind runs drop nothing, foreign keys keep a leading index."""
    if no_drops is not None:
        why, ready = no_drops
        for d in [d for d in drops if d.kind != "invalid_index"]:
            _hold(plan, drops, d, f"not dropped: {why}", ready)
        for create in creates:
            for old in list(create.supersedes):
                create.supersedes.remove(old)
                plan.held_back.append(HeldBack(old.qualified, "replace", f"kept beside {create.label}: {why}", ready))
                for f in create.superseded_findings:
                    f.held_back = f"not dropped: {why}"
                create.superseded_findings = []
    relied_on: dict[str, int] = {}
    for d in drops:
        if d.relies_on:
            relied_on[d.relies_on] = relied_on.get(d.relies_on, 0) + 1
    created = [m for c in creates for m in c.chosen.candidate.members]
    for index, reason in foreign_key_keeps([d.index for d in drops], relied_on, created, cat):
        for d in [d for d in drops if d.index.oid == index.oid]:
            _hold(plan, drops, d, reason)


def _users(final: Mapping[int, plans.Plan]) -> dict[str, list[int]]:
    """Index name -> the statements whose plan uses it."""
    users: dict[str, list[int]] = {}
    for q, p in final.items():
        for name in plans.index_names(p):
            users.setdefault(name, []).append(q)
    return users


def _hold_unchecked(plan: Plan, drops: list[_Drop], cat: Catalog, workload: Workload, planned: set[int]) -> None:
    """A scanned index that no staying index covers is dropped only when every statement on its table was
    planned: one left out (the check's budget, or a text the server cannot plan) may be the one that uses it."""
    for d in list(drops):
        table = cat.tables.get(d.index.table_oid)
        if d.relies_on is not None or d.index.scans == 0 or d.kind == "invalid_index" or table is None:
            continue
        unseen = sorted(s.queryid for s, _ in workload.on_table(table, cat) if s.queryid not in planned)
        if unseen:
            _hold(plan, drops, d, f"not dropped: it has been scanned {d.index.scans} times, and statement(s) "
                                  f"{_ids(unseen)} on {table.qualified} were not planned (the check's budget, or "
                                  "a text the server cannot plan), so whether they rely on it is unknown")


def _hold_if_used_alone(plan: Plan, drops: list[_Drop], d: _Drop, when: str) -> None:
    if d.relies_on is None:
        _hold(plan, drops, d, f"not dropped: statement(s) {_ids(d.users)} use it in their generic plan {when}, "
                              "and no other index covers it")


def _resolve(drops: list[_Drop], creates: list[_Create], cat: Catalog, settings: Thresholds, plan: Plan) -> None:
    """No drop may rely on an index another action drops: re-point, re-justify, or hold back."""
    changed = True
    while changed:
        changed = False
        # A cover is on its drop's table, whose schema holds both: (table oid, name) is exact there, where a
        # name alone is not across tables ("a"."b.c" and "a.b"."c" both read a.b.c).
        dropped = {(d.index.table_oid, d.index.qualified): d for d in drops}
        replaced = {(i.table_oid, i.qualified): c for c in creates for i in c.supersedes}
        for d in list(drops):
            cover = d.relies_on
            key = (d.index.table_oid, cover or "")
            if d.new_cover is not None or cover is None or (key not in dropped and key not in replaced):
                continue
            changed = True
            table = cat.tables.get(d.index.table_oid)
            if key in replaced and _prefix_of(d.index, replaced[key].chosen.candidate):
                new = replaced[key]
                d.relies_on, d.new_cover = new.label, new
                d.reason += (f" Its cover {cover} is replaced by {new.label} (created first), whose leading "
                             f"columns also serve these lookups.")
            elif zero_scan_droppable(d.index, cat, settings):
                d.relies_on = None
                d.reason += (f" Its cover {cover} is dropped too (as {_why(key, dropped)}), and it has itself "
                             f"never been scanned, so no lookup relies on it.")
                d.finding.evidence = d.reason
            elif table is not None and low_selectivity_distinct(d.index, table, settings) is not None:
                d.relies_on = None
                d.reason += (f" Its cover {cover} is dropped too (as {_why(key, dropped)}); it is itself of low "
                             f"selectivity.")
                d.finding.evidence = d.reason
            else:
                drops.remove(d)
                reason = (f"not dropped: it is covered by {cover}, but the plan drops {cover} "
                          f"({_why(key, dropped)}); {d.index.qualified} then serves these lookups itself")
                d.finding.held_back = reason
                plan.held_back.append(HeldBack(d.index.qualified, d.kind, reason))


def _why(key: tuple[int, str], dropped: Mapping[tuple[int, str], _Drop]) -> str:
    d = dropped.get(key)
    return d.kind.replace("_index", "").replace("_", " ") if d else "superseded by a new index"


def _check_whole(draft: _Draft, run: RunContext, whatif: WhatIf) -> tuple[dict[int, plans.Plan], dict[int, str]]:
    """Plan the statements on the tables concerned with every create in place; check every drop."""
    plan, drops, creates = draft.plan, draft.drops, draft.creates
    cat, workload, settings, unplannable = run.cat, run.workload, run.settings, run.unplannable
    budget = Budget(settings.plan_check_max_explains, max(1.0, settings.verification_max_seconds / 4))
    saved_budget, whatif.budget = whatif.budget, budget
    labels: dict[int, str] = {}
    final: dict[int, plans.Plan] = {}
    try:
        for create in creates:
            for member in create.chosen.candidate.members:
                oid, _ = whatif.create(member.hypothetical_sql())
                where = f" WHERE {member.predicate}" if member.predicate else ""
                labels[oid] = f"new index ({', '.join(member.columns)}){where}"
        table_oids = {c.chosen.candidate.table.oid for c in creates} | {d.index.table_oid for d in drops} | {
            i.table_oid for c in creates for i in c.supersedes}
        for oid in sorted(table_oids):
            table = cat.tables.get(oid)
            if table is None:
                continue
            stmts = [(s, a) for s, a in workload.on_table(table, cat) if s.queryid not in unplannable]
            stmts.sort(key=lambda sa: (-sa[0].exec_seconds, sa[0].queryid))
            stmts = stmts[: settings.max_statements_per_candidate * 2]
            for stat, analysis in stmts:
                if stat.queryid in final or budget.exhausted():
                    continue
                try:
                    final[stat.queryid] = statement_cost(whatif, workload, stat, analysis)[1]
                except PlanError:
                    continue
        plan.statements_checked = len(final)
        plan.checked_as_whole = not budget.exhausted()

        users = _users(final)
        for d in list(drops):
            d.users = sorted(users.get(d.index.name, []))
            if not d.users or d.kind == "invalid_index":
                continue
            if whatif.can_hide:
                rise = _cost_rise_without(d.index, d.users, final, workload, whatif)
                if rise is not None and rise > settings.plan_drop_max_cost_increase:
                    _hold(plan, drops, d, f"not dropped: without it the statements that use it ({_ids(d.users)}) "
                                          f"would cost {100 * rise:.0f}% more (hypopg_hide_index)")
                continue
            _hold_if_used_alone(plan, drops, d, "with the planned indexes in place")
        for create in creates:
            for old in create.supersedes:
                d_users = sorted(users.get(old.name, []))
                if d_users and whatif.can_hide:
                    rise = _cost_rise_without(old, d_users, final, workload, whatif)
                    if rise is not None and rise > settings.plan_drop_max_cost_increase:
                        create.supersedes.remove(old)
                        plan.held_back.append(HeldBack(old.qualified, "replace", (
                            f"kept beside {create.label}: without it statements {_ids(d_users)} would cost "
                            f"{100 * rise:.0f}% more (hypopg_hide_index)")))
    finally:
        for oid in list(labels):
            whatif.drop(oid)
        whatif.budget = saved_budget
    return final, labels


def _cost_rise_without(index: Index, users: list[int], final: Mapping[int, plans.Plan], workload: Workload,
                       whatif: WhatIf) -> float | None:
    """The calls-weighted cost rise of ``users`` with ``index`` hidden (HypoPG >= 1.4)."""
    items = {s.queryid: (s, a) for s, a in workload.items}
    whatif.hide(index.oid)
    try:
        before = after = 0.0
        for q in users:
            if q not in items or whatif.budget.exhausted():
                return None
            stat, analysis = items[q]
            try:
                cost = statement_cost(whatif, workload, stat, analysis)[0]
            except PlanError:
                return None
            before += stat.calls * plans.cost(final[q])
            after += stat.calls * cost
    finally:
        whatif.unhide_all()
    return (after - before) / before if before > 0 else None


def _hold(plan: Plan, drops: list[_Drop], d: _Drop, reason: str, ready: datetime | None = None) -> None:
    drops.remove(d)
    d.finding.held_back = reason
    plan.held_back.append(HeldBack(d.index.qualified, d.kind, reason, ready))


def _ids(queryids: list[int]) -> str:
    shown = ", ".join(str(q) for q in queryids[:5])
    return shown + (f" and {len(queryids) - 5} more" if len(queryids) > 5 else "")
