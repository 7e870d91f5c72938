"""Advice under a storage budget: the new indexes' total estimated size at most ``index_budget_mb``.

The selection (``selection.py``) chooses without a budget: each statement's best access path, such as the
composite that also removes a sort rather than its leading column alone. When what it keeps does not fit the
budget, the choice is made again among the kept candidates and the useful prefixes of their composites (the
leading columns alone: ``(tenant_id)`` of ``(tenant_id, created_at)``), greedily by verified benefit per byte
(Kossmann et al., VLDB 2020):

* every option that still fits is costed with HypoPG on the statements of its table that the selection served
  and that use its leading column, on top of what is picked so far, and the one that removes the most
  calls-weighted cost per byte of its estimated size (``Candidate.estimated_bytes``: a btree, deduplicated
  where the keys' types allow it) is picked;
* an option that extends a picked prefix replaces it, for the difference of their sizes; a second pass
  never widens a picked index (the room goes to other tables' indexes instead), a third ranks by cost
  removed alone (small indexes with a slightly better ratio would leave no room for one large index that
  removes far more: the greedy knapsack's known weakness), and the pass whose set leaves the lowest
  calls-weighted cost of the statements is kept;
* a prefix is judged as any candidate: ``min_improvement_ratio`` and the write cost;
* a kept candidate that does not fit is held back with its size and the budget; its statements say so
  (coverage status ``over_budget``).

The plan is then checked as a whole, as always (``plan.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.core import units

from .candidates import Candidate, served_by
from .selection import Chosen, Verifying, mentions, missing_index_finding, statement_cost, write_cost_rejection
from .whatif import Budget, PlanError

MB = 1024 * 1024
# The greedy passes (widen a picked prefix, rank per byte): by benefit per byte, with and without widening, and
# by benefit alone, which a budget whose room the small indexes would take from one large index needs.
PASSES = ((True, True), (False, True), (True, False))


@dataclass
class Option:
    """A candidate the budgeted choice may pick: one the selection kept (``chosen``) or a prefix of one."""

    cand: Candidate
    size: float  # estimated bytes (deduplicated btree): what counts against the budget
    statements: list[int]  # the statements it is costed on: those its table's kept candidates serve
    chosen: Chosen | None = None
    oids: list[int] = field(default_factory=list)  # its hypothetical indexes while it is picked
    form: str = "prefix"  # of an option the selection did not keep: "prefix", "alone" or "hash"


@dataclass
class Trial:
    """An option costed on top of what is picked: its statements' costs, and what it would replace."""

    option: Option
    replaces: list[Option]
    after: dict[int, float]
    gain: float  # calls-weighted cost removed
    size: float  # the budget it takes: its size less the sizes of the options it replaces
    hypo_size: int = 0  # HypoPG's estimate of its first index (the finding's "estimated size")
    before: dict[int, float] = field(default_factory=dict)  # the statements' costs before it


@dataclass
class Fitting:
    """The state of the budgeted choice."""

    v: Verifying
    budget: float  # bytes
    current: dict[int, float]  # queryid -> cost with what is picked so far
    calls: dict[int, int]
    picked: list[Option] = field(default_factory=list)
    trials: dict[int, Trial] = field(default_factory=dict)  # id(option) -> its trial when it was picked
    used: float = 0.0
    widen: bool = True  # an option may replace a picked one it extends (for the difference of their sizes)
    per_byte: bool = True  # rank by cost removed per byte; else by cost removed (one large index before many small)


def fit_budget(v: Verifying) -> str | None:
    """Choose again when the kept candidates do not fit ``index_budget_mb``; returns the report's note."""
    budget = v.settings.index_budget_mb * MB
    chosen = list(v.selection.chosen)
    if budget <= 0 or not chosen or any(c.finding.verified != "hypopg" for c in chosen):
        return None
    total = sum(c.candidate.estimated_bytes() for c in chosen)
    if total <= budget:
        return None
    pool = _options(v, chosen)
    saved, exhausted = v.whatif.budget, False
    try:
        fits = []
        for n, (widen, per_byte) in enumerate(PASSES):  # each with its own allowance; the cheapest set is kept
            v.whatif.budget = Budget(v.settings.plan_check_max_explains,
                                     max(1.0, v.settings.verification_max_seconds / 12))
            if n == 0:
                current, calls = _base_costs(v, pool)
            fit = Fitting(v, budget, dict(current), calls, widen=widen, per_byte=per_byte)
            _greedy(fit, pool)
            for option in fit.picked:
                _unbuild(fit, option)
            fits.append(fit)
            exhausted = exhausted or v.whatif.budget.exhausted()
        fit = min(fits, key=lambda f: (sum(calls[q] * c for q, c in f.current.items()), f.used))
    finally:
        v.whatif.budget = saved
    prefixes = _apply(fit, pool)
    return (f"index budget {units.size(budget)} (index_budget_mb): the {len(chosen)} indexes chosen without it "
            f"take an estimated {units.size(total)}; chosen again with HypoPG by cost removed per byte (the "
            f"set of the cheapest greedy pass), {len(fit.picked)} fit in {units.size(fit.used)}"
            + (f", {prefixes} of them a narrower form of one that does not fit (its leading columns, one of its "
               "columns alone, or a hash index for equality lookups on a wide key)" if prefixes else "")
            + ("; the budget's EXPLAINs ran out before every option was costed" if exhausted else ""))


def _options(v: Verifying, chosen: list[Chosen]) -> list[Option]:
    """The kept candidates and their narrower forms that no index serves and that are selective: the prefixes of
    a composite, each of its other columns alone, and a hash index in place of a one-column btree on a wide key."""
    by_table: dict[int, set[int]] = {}
    for c in chosen:
        by_table.setdefault(c.candidate.table.oid, set()).update(c.affected)
    exec_ms = {s.queryid: s.exec_seconds for s, _ in v.workload.items}
    analyses = {s.queryid: a for s, a in v.workload.items}

    def statements(cand: Candidate) -> list[int]:
        """The statements the table's kept candidates serve that an index led by ``cand``'s keys can serve."""
        leads = [m.keys[0][0] for m in cand.members]
        qs = [q for q in by_table.get(cand.table.oid, set())
              if q in analyses and any(mentions(analyses[q], cand.table, lead, v.cat) for lead in leads)]
        qs.sort(key=lambda q: (-exec_ms.get(q, 0.0), q))
        return qs[: v.settings.max_statements_per_candidate]

    pool = [Option(c.candidate, c.candidate.estimated_bytes(), statements(c.candidate), c) for c in chosen]
    seen = {o.cand.signature for o in pool}

    def add(narrow: Candidate, form: str) -> None:
        if narrow.signature in seen or served_by(narrow, v.cat.indexes_of(narrow.table)) is not None:
            return
        lead = narrow.keys[0][0]
        distinct = None if lead.is_expression else narrow.table.distinct_values(lead.text)
        if distinct is not None and distinct <= v.settings.low_selectivity_max_distinct:
            return  # it would be a low-selectivity index
        seen.add(narrow.signature)
        pool.append(Option(narrow, narrow.estimated_bytes(), statements(narrow), form=form))

    for c in chosen:
        cand = c.candidate
        if cand.companions or cand.predicate:
            continue  # an OR bundle or a partial index has no narrower form that serves the same way
        for n in range(1, len(cand.keys)):
            add(_prefix(cand, n), "prefix")
        for n in range(1, len(cand.keys)):
            add(_alone(cand, n), "alone")
    for option in list(pool):
        hashed = _hashed(option.cand)
        if hashed is not None and hashed.estimated_bytes() < option.size:
            add(hashed, "hash")
    return pool


def _alone(cand: Candidate, n: int) -> Candidate:
    """The ``n``-th key of a composite alone: the sort or range column a scan in its order filters along."""
    return Candidate(cand.table, cand.keys[n:n + 1], 1 if n < cand.n_equality else 0, set(cand.queryids),
                     cand.roles[n:n + 1], cand.low_cardinality)


def _hashed(cand: Candidate) -> Candidate | None:
    """A one-column btree as a hash index, for its equality lookups: 4-byte hash codes instead of the keys, so
    smaller on a wide key. Only on a column of nearly distinct values (equal keys share a bucket and would
    overflow it) and never an expression (its size is unknown)."""
    if len(cand.keys) != 1 or cand.method != "btree" or cand.companions or cand.predicate:
        return None
    key = cand.keys[0][0]
    distinct = None if key.is_expression else cand.table.distinct_values(key.text)
    if distinct is None or distinct < cand.table.rows / 2:
        return None
    return Candidate(cand.table, ((key, False),), 1, set(cand.queryids), cand.roles[:1], method="hash")


def _prefix(cand: Candidate, n: int) -> Candidate:
    return Candidate(cand.table, cand.keys[:n], min(cand.n_equality, n), set(cand.queryids), cand.roles[:n],
                     cand.low_cardinality)


def _base_costs(v: Verifying, pool: list[Option]) -> tuple[dict[int, float], dict[int, int]]:
    """The statements' costs with the real indexes only, and their calls."""
    items = {s.queryid: (s, a) for s, a in v.workload.items}
    current: dict[int, float] = {}
    for q in sorted({q for o in pool for q in o.statements}):
        if q not in items or v.whatif.budget.exhausted():
            continue
        try:
            current[q] = statement_cost(v.whatif, v.workload, *items[q])[0]
        except PlanError:
            continue
    return current, {q: items[q][0].calls for q in current}


def _extends(wide: Candidate, narrow: Candidate) -> bool:
    """``narrow``'s keys lead ``wide``'s, on the same table (the same predicate, none)."""
    w, n = wide.key_signature, narrow.key_signature
    return (wide.table is narrow.table and not wide.predicate and not narrow.predicate
            and len(n) < len(w) and w[: len(n)] == n)


def _greedy(fit: Fitting, pool: list[Option]) -> None:
    """Pick, while one fits and helps, the option with the most cost removed per byte of budget it takes."""
    cache: dict[int, Trial | None] = {}
    while not fit.v.whatif.budget.exhausted():
        best: tuple[float, Trial] | None = None
        for option in pool:
            if option in fit.picked or any(_extends(p.cand, option.cand) for p in fit.picked):
                continue  # picked, or a picked index already leads with its columns
            replaces = [p for p in fit.picked if _extends(option.cand, p.cand)]
            if replaces and not fit.widen:
                continue
            size = option.size - sum(r.size for r in replaces)
            if fit.used + size > fit.budget:
                continue
            if id(option) not in cache:
                cache[id(option)] = _trial(fit, option, replaces, size)
            trial = cache[id(option)]
            if trial is None or trial.gain <= 0:
                continue
            score = trial.gain / max(trial.size, 8192.0) if fit.per_byte else trial.gain
            if best is None or score > best[0]:
                best = (score, trial)
        if best is None:
            return
        changed = _pick(fit, best[1])
        picked = best[1].option.cand
        for option in pool:  # what the pick changes: the options sharing a statement, and its prefixes and widenings
            if (changed & set(option.statements) or _extends(option.cand, picked)
                    or _extends(picked, option.cand)):
                cache.pop(id(option), None)


def _trial(fit: Fitting, option: Option, replaces: list[Option], size: float) -> Trial | None:
    """The option costed with the picked ones in place (less those it replaces); None when it is not worth it."""
    v = fit.v
    items = {s.queryid: (s, a) for s, a in v.workload.items}
    for r in replaces:
        _unbuild(fit, r)
    try:
        created = [v.whatif.create(m.hypothetical_sql()) for m in option.cand.members]
    except PlanError:
        created = []
    after: dict[int, float] = {}
    for q in option.statements:
        if q in fit.current and created and not v.whatif.budget.exhausted():
            try:
                after[q] = statement_cost(v.whatif, v.workload, *items[q])[0]
            except PlanError:
                after[q] = fit.current[q]
    for oid, _ in created:
        v.whatif.drop(oid)
    for r in replaces:
        _build(fit, r)
    if not created or not after:
        return None
    gain = sum(fit.calls[q] * (fit.current[q] - c) for q, c in after.items())
    trial = Trial(option, replaces, after, gain, size, created[0][1], {q: fit.current[q] for q in after})
    return trial if option.chosen is not None or _worth_it(fit, trial) else None


def _worth_it(fit: Fitting, trial: Trial) -> bool:
    """A prefix is judged as any candidate: the improvement threshold, then the write cost."""
    v, after = fit.v, trial.after
    affected = [q for q, c in after.items() if c < fit.current[q] * 0.999]
    before_w = sum(fit.calls[q] * fit.current[q] for q in affected)
    if trial.gain <= 0 or before_w <= 0 or trial.gain / before_w < v.settings.min_improvement_ratio:
        return False
    table = trial.option.cand.table
    existing = len(v.cat.indexes_of(table)) + sum(1 for p in fit.picked if p.cand.table is table)
    return write_cost_rejection(trial.option.cand, trial.gain, trial.hypo_size, v.settings, v.rates,
                                existing=existing) is None


def _build(fit: Fitting, option: Option) -> None:
    option.oids = [fit.v.whatif.create(m.hypothetical_sql())[0] for m in option.cand.members]


def _unbuild(fit: Fitting, option: Option) -> None:
    for oid in option.oids:
        fit.v.whatif.drop(oid)
    option.oids = []


def _pick(fit: Fitting, trial: Trial) -> set[int]:
    """Keep the trial's option as hypothetical indexes (in place of those it replaces); the statements it changed."""
    for r in trial.replaces:
        _unbuild(fit, r)
        fit.picked.remove(r)
        fit.trials.pop(id(r), None)
    _build(fit, trial.option)
    fit.picked.append(trial.option)
    fit.trials[id(trial.option)] = trial
    fit.used += trial.size
    changed = {q for q, c in trial.after.items() if c != fit.current[q]}
    fit.current.update(trial.after)
    return changed


def _apply(fit: Fitting, pool: list[Option]) -> int:
    """The selection and the findings as the budget leaves them; returns the number of narrower forms picked."""
    v = fit.v
    picked = {id(o) for o in fit.picked}
    kept: list[Chosen] = []
    for option in fit.picked:
        if option.chosen is not None:
            kept.append(option.chosen)
            continue
        kept.append(_prefix_chosen(fit, fit.trials[id(option)]))
        v.findings.append(kept[-1].finding)
    for option in pool:
        if option.chosen is None or id(option) in picked:
            continue
        dropped = option.chosen
        for f in (dropped.finding, *dropped.companion_findings):
            v.findings.remove(f)
        instead = [p.cand.label for p in fit.picked if _extends(option.cand, p.cand)]
        if fit.used + option.size - sum(o.size for o in fit.picked if _extends(option.cand, o.cand)) > fit.budget:
            why = (f"over the index budget: its estimated {units.size(option.size)} does not fit the "
                   f"{units.size(fit.budget)} of index_budget_mb beside the indexes that remove more cost per byte"
                   + (f"; {', '.join(instead)} is advised instead" if instead else ""))
        else:
            why = ("not advised under the index budget (index_budget_mb): with the indexes that fit in place, "
                   "it no longer lowers its statements' cost")
        v.selection.rejected.append((option.cand, why))
        for judged in v.selection.judged.values():
            if judged.signature == option.cand.signature:
                judged.verdict, judged.reason = "over_budget", f"{option.cand.label} is {why}"
    v.selection.chosen = kept
    return sum(1 for o in fit.picked if o.chosen is None)


def _prefix_chosen(fit: Fitting, trial: Trial) -> Chosen:
    """A picked prefix as the selection keeps a candidate: its finding and the statements it serves."""
    cand, after, before = trial.option.cand, trial.after, trial.before
    affected = sorted(q for q, c in after.items() if c < before[q] * 0.999)
    before_w = sum(fit.calls[q] * before[q] for q in affected)
    after_w = sum(fit.calls[q] * after[q] for q in affected)
    form = {"prefix": "the leading columns of a composite that does not fit",
            "alone": "one column of a composite that does not fit, the rows read in its order",
            "hash": "a hash index, smaller than a btree on this wide key; it serves equality (=) lookups only"}
    extra = (f" Under the index budget ({units.size(fit.budget)}, index_budget_mb) {form[trial.option.form]}: "
             f"the most cost removed per byte.")
    finding = missing_index_finding(cand, affected, sum(fit.calls[q] for q in affected), (before_w, after_w),
                                    trial.hypo_size, extra)
    return Chosen(cand, finding, affected, trial.hypo_size, {q: after[q] for q in affected})

