"""The advisor: one run reads statistics and catalog, analyzes, verifies, and reports.

``Advisor.run`` is synchronous and opens its own short-lived, read-only,
time-bounded session (``session_kwargs``). An ``Advisor`` object kept by the
service remembers the previous ``pg_stat_statements`` counters, so
``slow_statement`` and ``n_plus_one`` look at the window since the last run,
and keeps the statements' windows and the tables' index OIDs for outcomes
(``outcomes.py``); the one-shot command uses lifetime counters and has no
outcomes.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import psycopg

from collectors.postgres.access import (
    ADVISOR_APPLICATION_NAME,
    PasswordSource,
    current_password,
    error_line,
    session_kwargs,
)
from collectors.postgres.statements import StatementStat, deltas, read_statements, read_statements_reset

from . import plans
from .budget import fit_budget
from .candidates import Candidate, Workload, build_candidates
from .catalog import Catalog, key_signature, read_catalog
from .context import RunContext
from .coverage import statement_reasons
from .findings import (
    STATEMENT_PLAN_CHARS,
    STATEMENT_PLANS_MAX,
    WRITE_REFUSED,
    AdviceReport,
    Finding,
    IndexEvent,
    Skipped,
    VerificationStats,
)
from .hygiene import hygiene_findings, unused_held_back_note
from .normalize import planned_form
from .outcomes import OutcomeTracker, Regression
from .patterns import NPlusOne, slow_findings
from .plan import build_plan
from .privileges import read_denied, refused_by_privilege
from .query_analysis import StatementAnalysis, analyze
from .rates import Rates
from .safety import drops_blocked
from .selection import (
    Measured,
    Selection,
    Verifying,
    explain_statement,
    select_heuristic,
    select_verified,
    unplannable_reason,
)
from .settings import Thresholds
from .skew import Samples, analyze_skew, partial_candidates, partial_served, read_qualstats
from .store import AdvisorMemory, StateError, StateStore, advice_rows
from .validate import Refused, check_candidates
from .variants import StatementVariants
from .whatif import Budget, PlanError, WhatIf
from .writes import read_side, written_rows

__all__ = ["AdviceReport", "Advisor", "AdvisorConnectionError", "Thresholds"]

SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema"})
INDEX_HISTORY_MAX = 500  # index changes a report carries for the table pages, newest kept
log = logging.getLogger("dbpulse.advisor")


class AdvisorConnectionError(RuntimeError):
    """The database could not be reached; the message never carries a password."""


class Advisor:
    def __init__(self, dsn: str, target: str, settings: Thresholds | None = None,
                 password: PasswordSource = None, store: StateStore | None = None) -> None:
        self.dsn = dsn
        self._password = password
        self.target = target
        self.settings = settings or Thresholds()
        self._previous: dict[int, StatementStat] | None = None
        self._analysis_cache: dict[str, StatementAnalysis] = {}
        self._conn: psycopg.Connection[Any] | None = None  # the running session, for cancel()
        self._first_seen: dict[tuple[int, str], datetime | None] = {}  # index (oid, name) -> first seen
        self.outcomes = OutcomeTracker(self.settings)
        self._plannable: dict[str, str | None] = {}  # statement text -> why it cannot be planned (None: it can)
        self._plan_texts: dict[str, str] = {}  # statement text -> its generic plan as text (the statement page)
        self.n_plus_one = NPlusOne(self.settings)  # remembers the previous window's pairs
        self.store = store  # durable state (store.py): None keeps it in memory only
        if store is not None:
            memory = store.load(target, self.outcomes)
            self._previous, self._first_seen = memory.previous, memory.first_seen

    def connect(self) -> psycopg.Connection[Any]:
        try:
            password = current_password(self._password)  # a password_file is read at each connection
            kwargs = session_kwargs(self.settings.statement_timeout_seconds,
                                    application_name=ADVISOR_APPLICATION_NAME, password=password)
            return psycopg.connect(self.dsn, **kwargs)
        except Exception as exc:
            raise AdvisorConnectionError(f"cannot connect to {self.target}: {error_line(exc, self.dsn)}") from None

    def run(self) -> AdviceReport:
        started = time.monotonic()
        with self.connect() as conn:
            self._conn = conn
            try:
                report = self._run(conn)
            finally:
                self._conn = None
        if self.store is not None:
            try:
                self.store.save(self.target, self.outcomes, AdvisorMemory(self._previous, self._first_seen))
                events = self.store.index_events(self.target)[-INDEX_HISTORY_MAX:]
                report.index_history = [IndexEvent(*e) for e in events]
            except StateError as exc:
                self._state_not_kept(report, exc)
        report.duration_seconds = time.monotonic() - started
        return report

    def cancel(self) -> None:
        """Cancel the statement the running session is executing (safe from another thread)."""
        conn = self._conn
        if conn is not None:
            try:
                conn.cancel()
            except Exception as exc:  # the server went away: its thread logs one line, never a traceback
                log.warning("%s: cancelling the advisor's statement failed: %s", self.target, error_line(exc, self.dsn))

    def _analyze(self, text: str, cat: Catalog) -> StatementAnalysis:
        cached = self._analysis_cache.get(text)
        if cached is None:
            cached = analyze(text, cat.columns_of)
            if len(self._analysis_cache) > 4 * self.settings.max_statements:
                self._analysis_cache.clear()
            self._analysis_cache[text] = cached
        return cached

    def _is_system(self, analysis: StatementAnalysis, cat: Catalog) -> bool:
        """Statements on catalog/statistics views only (monitoring tools, psql): not the app's."""
        if not analysis.relations:
            return False
        if any(cat.table(r) is not None for r in analysis.relations):
            return False
        return all(r.schema in SYSTEM_SCHEMAS or r.name.startswith("pg_") for r in analysis.relations)

    def _run(self, conn: psycopg.Connection[Any]) -> AdviceReport:
        """The run's steps, in order, over one context (``context.py``)."""
        run = self._read(conn)
        if run.statements is None:
            return self._without_statements(run)
        self._analyze_step(run)
        self._candidates(run)
        try:
            self._verify(run)
            self._plan(run)
        finally:
            if run.whatif is not None:
                run.whatif.reset()
        self._plan_notes(run)
        self._skipped(run)
        self._patterns(run)
        self._outcomes(run)
        return run.report

    def _read(self, conn: psycopg.Connection[Any]) -> RunContext:
        """The catalog, its hygiene findings, and pg_stat_statements with the window since the last run."""
        s = self.settings
        cat = read_catalog(conn)
        self._remember_indexes(cat)
        report = AdviceReport(target=self.target, generated_at=datetime.now(UTC), stats_reset=cat.stats_reset)
        run = RunContext(conn, cat, s, report)
        report.notes.extend(cat.notes)
        report.findings.extend(hygiene_findings(cat, s))
        held = unused_held_back_note(cat, s)
        if held:
            report.notes.append(held)
        try:
            statements = read_statements(conn, cat.server_version_num, s.max_statements)  # never dbpulse's own
            run.statements_reset = read_statements_reset(conn, cat.server_version_num)
        except psycopg.Error as exc:
            report.notes.append(
                f"pg_stat_statements not readable ({exc.sqlstate}: {error_line(exc)}): "
                "missing_index, n_plus_one, slow_statement and outcomes disabled; "
                "CREATE EXTENSION pg_stat_statements (preloaded) and GRANT pg_read_all_stats to the role"
            )
            return run
        run.statements = statements
        run.first_run = self._previous is None
        run.variants = StatementVariants.of(statements)  # one statement per fingerprint (IN lists of other lengths)
        run.current = run.variants.grouped(statements)
        run.window_stats = run.variants.grouped(deltas(statements, self._previous))
        self._previous = {st.queryid: st for st in statements}
        run.no_drops = self._no_drops(report, cat, run.statements_reset, statements_readable=True)
        return run

    def _without_statements(self, run: RunContext) -> AdviceReport:
        """pg_stat_statements is not readable: the hygiene findings and a plan of their drops only."""
        run.no_drops = self._no_drops(run.report, run.cat, None, statements_readable=False)
        run.report.plan = build_plan(run)  # the hygiene findings' drops: no statement, no selection
        return run.report

    def _analyze_step(self, run: RunContext) -> None:
        """Parse the app's statements (the unparsable ones are skipped), their planned forms and the window."""
        cat, report = run.cat, run.report
        for stat in run.current:
            analysis = self._analyze(stat.query, cat)
            if not analysis.ok:
                report.skipped.append(Skipped(stat.queryid, stat.query[:1000], analysis.error or "", stat.calls))
                continue
            if self._is_system(analysis, cat):
                continue
            run.items.append((stat, analysis))
        report.statements_analyzed = len(run.items)
        run.by_id = {st.queryid: a for st, a in run.items}
        run.workload = Workload(run.items)
        run.unplannable = plan_forms(run.workload)  # writes without a read side: skipped with their reason
        # and what the role may not read or call: the server would refuse it, and log that (privileges.py)
        refused = refused_by_privilege(read_denied(run.conn), run.workload, cat, self._analyze)
        run.unplannable = {**refused, **run.unplannable}
        written = written_rows(run.statements or [], lambda ref: getattr(cat.table(ref), "oid", None))
        run.rates = Rates.over(cat.now, run.statements_reset or cat.stats_reset, cat.stats_reset, cat.tables,
                               written)
        report.time_base = run.rates.window

    def _candidates(self, run: RunContext) -> None:
        """The index candidates of the workload, and the partial ones for parameters of skewed columns."""
        cat, s, workload = run.cat, self.settings, run.workload
        samples: Samples = {}
        if cat.qualstats_version:
            samples, problem = read_qualstats(run.conn)
            if problem:
                run.report.notes.append(problem)
        skewed = analyze_skew(workload, cat, s, samples)
        candidates = build_candidates(workload, cat, s)
        known = {c.signature for c in candidates}
        candidates += [c for c in partial_candidates(skewed, s)
                       if c.signature not in known and not partial_served(c, cat.indexes_of(c.table))]
        run.candidates = candidates
        if workload.variants:
            sources = sorted({sk.source for sk in skewed}) or ["pg_qualstats" if samples else "rows per call"]
            run.report.notes.append(f"{len(workload.variants)} statement(s) compare a parameter with a skewed "
                                    f"column: costed with the values they are called with ({', '.join(sources)}), "
                                    "not only the generic plan")

    def _verify(self, run: RunContext) -> None:
        """Choose among the buildable candidates: costed with HypoPG, or by heuristic without it."""
        cat, s, report = run.cat, self.settings, run.report
        if s.use_hypopg and cat.hypopg_version:
            budget = Budget(s.verification_max_explains, s.verification_max_seconds)
            run.whatif = WhatIf(run.conn, cat.server_version_num, budget, can_hide=cat.hypopg_can_hide)
            candidates = self._buildable(run.conn, cat, run.candidates, run.whatif, report, run.refused)
            if candidates:
                verifying = Verifying(run.workload, cat, run.whatif, s, run.unplannable, run.selection, run.rates)
                select_verified(candidates, verifying)
                note = fit_budget(verifying)  # index_budget_mb: what does not fit is chosen again, per byte
                report.findings.extend(verifying.findings)
                if note:
                    report.notes.append(note)
            run.stats = VerificationStats(budget.explains, budget.seconds, budget.exhausted(), "hypopg")
            report.statements_planned, run.cover_explains = self._cover(run)
            return
        # Nothing verified, but the statements are planned for their current cost (the note says how).
        report.statements_planned, run.cover_explains = self._cover(run)
        # The extension is asked for only where it would verify something: a database with no index candidate
        # (no tables, or nothing that pays) gets no statement to run for nothing.
        reason = ("disabled by settings (use_hypopg: false)" if not s.use_hypopg else
                  "the hypopg extension is not installed: CREATE EXTENSION hypopg in this database" if run.candidates
                  else "the hypopg extension is not installed; no index candidate in this run to verify")
        how = "EXPLAIN (GENERIC_PLAN)" if cat.server_version_num >= 160000 else "PREPARE + EXPLAIN EXECUTE"
        report.notes.append(f"HypoPG verification unavailable ({reason}): missing_index advice is heuristic "
                            "and the plan's drops are checked with the catalog only; "
                            f"{report.statements_planned} statement(s) planned ({how}) for their current cost")
        candidates = self._buildable(run.conn, cat, run.candidates, None, report, run.refused)
        if candidates:
            report.findings.extend(select_heuristic(candidates, run.workload, s, run.selection))
        if s.index_budget_mb > 0:
            report.notes.append("index_budget_mb is not applied without HypoPG: a heuristic finding has no verified "
                                "benefit to choose by per byte")
        run.stats = VerificationStats(run.cover_explains, mode="heuristic")

    def _plan(self, run: RunContext) -> None:
        """The plan of the run (checked as a whole with HypoPG when it is there), and each statement's plan."""
        report = run.report
        report.plan = build_plan(run)
        report.statement_plans = self._statement_plans(run.workload, run.selection, run.unplannable)
        if run.stats.mode == "heuristic":
            # Each heuristic finding gets the calls-weighted generic-plan cost it would cut.
            _heuristic_costs(report.findings, run.workload, run.selection)
        report.verification = run.stats

    def _plan_notes(self, run: RunContext) -> None:
        """How the plan was checked, and whether the verification budget ran out."""
        cat, report = run.cat, run.report
        if run.whatif is None:
            return
        budget = run.whatif.budget  # as the plan left it (the plan is checked within the same budget)
        if budget.exhausted():
            report.notes.append(
                f"verification budget exhausted ({budget.explains} EXPLAINs, {budget.seconds:.1f} s): "
                "advice covers the tables verified so far, heaviest first; raise verification_max_explains "
                "or verification_max_seconds (and the advisor's timeout) to cover the rest"
            )
        method = ("hypopg_hide_index (HypoPG >= 1.4): each drop costed without the index"
                  if cat.hypopg_can_hide else
                  f"HypoPG {cat.hypopg_version} has no hypopg_hide_index (1.4+): drops were checked with "
                  "the catalog (scans, covering indexes) and the statements whose plans use the index")
        if report.plan.actions:
            report.notes.append(f"plan checked as a whole: creates with HypoPG; {method}")

    def _skipped(self, run: RunContext) -> None:
        """The statements the advice does not cover, and those planned in a rewritten form."""
        report, workload, unplannable = run.report, run.workload, run.unplannable
        for stat, _ in run.items:
            if stat.queryid in unplannable:
                report.skipped.append(Skipped(stat.queryid, stat.query[:1000], unplannable[stat.queryid], stat.calls))
        report.notes.extend(skipped_notes(report.skipped))
        rewritten = {q: r for q, r in workload.rewrites.items() if q not in unplannable}
        report.statements_rewritten = len(rewritten)
        if rewritten:
            rules = sorted({rule for r in rewritten.values() for rule in r})
            reads = sum(1 for r in rewritten.values() if "read_side" in r)
            why = ["pg_stat_statements' normalized text does not prepare"] if reads < len(rewritten) else []
            if reads:
                why.append(f"{reads} write(s) (UPDATE or DELETE … WHERE, INSERT … SELECT, SELECT … FOR UPDATE) were "
                           "planned through their read side, the SELECT of the same tables and predicate, which "
                           "SELECT privilege covers")
            report.notes.append(f"{len(rewritten)} statement(s) were planned in an equivalent rewritten form "
                                f"({', '.join(rules)}): {'; '.join(why)}")

    def _patterns(self, run: RunContext) -> None:
        """n_plus_one and slow_statement over the window since the last run."""
        window = "since statistics were reset" if run.first_run else "since the previous advisor run"
        windowed = [(st, run.by_id[st.queryid]) for st in run.window_stats if st.queryid in run.by_id]
        total_calls = sum(st.calls for st, _ in windowed)
        run.report.findings.extend(self.n_plus_one.findings(windowed, run.cat, total_calls))
        run.report.findings.extend(slow_findings(list(windowed), run.cat, self.settings, window))

    def _outcomes(self, run: RunContext) -> None:
        """What past advice did (regressions), the advice to follow next, and every statement's coverage."""
        cat, report, selection = run.cat, run.report, run.selection
        tables_of = {st.queryid: {t.oid for t in (cat.table(r) for r in a.relations) if t is not None}
                     for st, a in run.items}
        report.outcomes, regressions = self.outcomes.update(
            [st for st in run.window_stats if st.queryid in run.by_id], tables_of, cat, report.generated_at)
        report.findings.extend(regression_findings(regressions))
        creates = [(c.candidate.table.oid, tuple(key_signature(k) for k, _ in c.candidate.keys))
                   for c in selection.chosen if c.finding.action is not None]
        drops = [i.oid for i in cat.indexes if any(i.qualified in a.drops for a in report.plan.actions)]
        self.outcomes.remember_advice(creates, drops, report.generated_at)
        if self.store is not None:
            try:
                self.store.record_advice(self.target, report.generated_at, advice_rows(creates, drops))
            except StateError as exc:
                self._state_not_kept(report, exc)
        report.coverage = statement_reasons(run)
        run.variants.name_them(report)

    @staticmethod
    def _state_not_kept(report: AdviceReport, exc: StateError) -> None:
        """The run goes on in memory; the log and the report's notes say the state was not kept."""
        log.error("%s: this run's state is kept in memory only", exc)
        report.notes.append(f"{exc}: this run's state is kept in memory only and lost if dbpulse restarts")

    def _no_drops(self, report: AdviceReport, cat: Catalog, statements_reset: datetime | None,
                  statements_readable: bool) -> tuple[str, datetime | None] | None:
        """Why nothing may be dropped in this run (safety.py), said loudly as the report's first note."""
        no_drops = drops_blocked(cat, self.settings, statements_reset, statements_readable)
        if no_drops is not None:
            report.notes.insert(0, f"NO INDEX IS DROPPED IN THIS RUN: {no_drops[0]}")
        return no_drops

    @staticmethod
    def _buildable(conn: psycopg.Connection[Any], cat: Catalog, candidates: list[Candidate], whatif: WhatIf | None,
                   report: AdviceReport, refused: Refused) -> list[Candidate]:
        """The candidates the server would build; the refused ones are counted with their reasons (``refused``)."""
        kept, found = check_candidates(conn, cat, candidates, whatif)
        refused.reasons, refused.examples, refused.of_statement = found.reasons, found.examples, found.of_statement
        report.candidates_refused = refused.count
        note = refused.note()
        if note:
            report.notes.append(note)
        return kept

    def _cover(self, run: RunContext) -> tuple[int, int]:
        """Plan every analyzed statement once, so what cannot be planned is counted whatever its table.

        The verification plans only the statements on tables with candidates. A text's result is kept
        across runs (the service): a plannable text is not planned again, a failure is reported again.
        Returns the number of statements known to plan, and the EXPLAINs it took."""
        s, workload, selection, unplannable = self.settings, run.workload, run.selection, run.unplannable
        budget = Budget(s.coverage_max_explains, max(1.0, s.verification_max_seconds / 4))
        whatif = WhatIf(run.conn, run.cat.server_version_num, budget)
        planned = 0
        for stat, analysis in sorted(workload.items, key=lambda sa: -sa[0].exec_seconds):
            q = stat.queryid
            if q in workload.unread:
                continue  # INSERT … VALUES: no table to read, nothing an index changes
            if q in unplannable:
                self._plannable[stat.query] = unplannable[q]
                continue
            if q in selection.initial:
                self._plannable[stat.query] = None
                planned += 1
                continue
            if stat.query in self._plannable:
                known = self._plannable[stat.query]
                if known is None:
                    planned += 1
                else:
                    unplannable[q] = known
                continue
            if budget.exhausted():
                continue
            try:
                plan = explain_statement(whatif, workload, stat, analysis)
            except PlanError as exc:
                if isinstance(exc.__cause__, psycopg.errors.QueryCanceled):
                    continue
                unplannable[q] = self._plannable[stat.query] = unplannable_reason(exc)
                continue
            self._plannable[stat.query] = None
            selection.initial.setdefault(q, Measured(float(plan["Total Cost"]), plan))
            planned += 1
        if len(self._plannable) > 4 * s.max_statements:
            self._plannable.clear()
        return planned, budget.explains

    def _statement_plans(self, workload: Workload, selection: Selection,
                         unplannable: dict[int, str]) -> dict[int, str]:
        """The generic plan (with the real indexes) of each analyzed statement as bounded text, heaviest first.

        A text planned in an earlier run (not planned again, see ``_cover``) keeps the text of that run; only the
        texts of this run's statements are kept, so the cache is as bounded as the workload."""
        texts: dict[str, str] = {}
        out: dict[int, str] = {}
        for stat, analysis in sorted(workload.items, key=lambda sa: -sa[0].exec_seconds):
            if stat.queryid in unplannable:
                continue
            measured = selection.initial.get(stat.queryid)
            text = plans.text(measured.plan) if measured is not None else self._plan_texts.get(stat.query)
            if text is None:
                continue
            if "read_side" in workload.rewrites.get(stat.queryid, ()) and measured is not None:
                text = f"Planned through its read side: {workload.planned(stat, analysis)[0]}\n{text}"
            text = text[:STATEMENT_PLAN_CHARS]
            texts[stat.query] = text
            if len(out) < STATEMENT_PLANS_MAX:
                out[stat.queryid] = text
        self._plan_texts = texts
        return out

    def _remember_indexes(self, cat: Catalog) -> None:
        """When this advisor first saw each index (it existed then): the service knows an index's age from
        the runs before; a first run (and ``dbpulse advise``) learns nothing from it."""
        seen = {}
        for index in cat.indexes:
            key = (index.oid, index.qualified)
            first = seen[key] = self._first_seen.get(key, cat.now)
            if first is not None and cat.now is not None and first < cat.now and (
                    index.known_since is None or first < index.known_since):
                index.known_since = first
        self._first_seen = seen


def plan_forms(workload: Workload) -> dict[int, str]:
    """The text each statement is planned in: a write's read side (writes.py), with typed literals (``date $1``)
    as casts (normalize.py). Returns the writes refused a read side, with their reasons."""
    refused: dict[int, str] = {}
    for stat, analysis in workload.items:
        text, rules = stat.query, tuple[str, ...]()
        if analysis.kind != "select" or "for " in stat.query.lower():
            read = read_side(stat.query)
            if read is not None and read.reads_nothing:
                workload.unread[stat.queryid] = "a write that reads no table (INSERT … VALUES): no index speeds it up"
                continue
            if read is not None and read.text is None:
                refused[stat.queryid] = read.reason or WRITE_REFUSED
                continue
            if read is not None and read.text is not None:
                text, rules = read.text, ("read_side",)
        planned = planned_form(text)
        if rules or planned.rewrites:
            workload.planned_texts[stat.queryid] = planned.text
            workload.rewrites[stat.queryid] = (*rules, *planned.rewrites)
    return refused


def _heuristic_costs(findings: list[Finding], workload: Workload, selection: Selection) -> None:
    """A heuristic missing_index finding's cost_before: the calls-weighted generic-plan cost of its
    statements as planned now (without HypoPG there is no cost after)."""
    calls = {stat.queryid: stat.calls for stat, _ in workload.items}
    for finding in findings:
        if finding.kind != "missing_index" or finding.verified != "heuristic":
            continue
        planned = [calls[q] * selection.initial[q].cost for q in finding.queryids or []
                   if q in selection.initial and q in calls]
        if planned:
            finding.cost_before = round(sum(planned), 2)


FUNCTION_PRIVILEGE = "EXECUTE on function "


def skipped_notes(skipped: list[Skipped]) -> list[str]:
    """One note per class of statements the advice does not cover (utility statements are expected)."""
    notes = []
    missing = sorted({sk.reason.removeprefix("no privilege to plan it: ").split(" (")[0]
                      for sk in skipped if sk.category == "privilege"} - {""})
    functions = [m.removeprefix(FUNCTION_PRIVILEGE) for m in missing if m.startswith(FUNCTION_PRIVILEGE)]
    missing = [m for m in missing if not m.startswith(FUNCTION_PRIVILEGE)]
    # A function the role may not EXECUTE (pg_stat_statements_reset(), pg_switch_wal()): a DBA's or an agent's
    # statement. Its own note, which asks for no grant: that grant would let the monitoring role run it.
    def kind(sk: Skipped) -> str:
        return "function" if sk.category == "privilege" and FUNCTION_PRIVILEGE in sk.reason else sk.category
    for category, what, todo in (
        ("parse", "could not be parsed or analyzed", "usually texts truncated by track_activity_query_size"),
        ("privilege", "could not be planned for lack of privilege",
         f"the advisor's role lacks {'; '.join(missing[:5])}{' …' if len(missing) > 5 else ''}: planning a read "
         "needs it (writes are planned through their read side, so no write privilege is needed; nothing is "
         "executed)"),
        ("function", "call a function the advisor's role may not execute",
         f"{', '.join(functions[:5])}{' …' if len(functions) > 5 else ''}: usually a DBA's or an agent's "
         "statements; do not grant EXECUTE on them to dbpulse's role, which would let it run them"),
        ("write", "are writes with no read side that plans like them", "see each one's reason in the skipped list"),
        ("syntax", "could not be planned (syntax of the normalized text)", "see the skipped list"),
        ("types", "could not be planned (parameter types)", "see the skipped list"),
        ("other", "could not be planned", "see the skipped list"),
    ):
        group = sorted((sk for sk in skipped if kind(sk) == category), key=lambda sk: -sk.calls)
        if not group:
            continue
        top = "; ".join(f"{sk.queryid} ({sk.calls} calls): {sk.query[:80]}" for sk in group[:3])
        notes.append(f"{len(group)} statement(s) {what}, so the advice does not cover them ({todo}). "
                     f"Heaviest: {top}")
    return notes


def regression_findings(regressions: list[Regression]) -> list[Finding]:
    out = []
    for r in regressions:
        ratio = r.current.mean_exec_seconds / r.baseline.mean_exec_seconds if r.baseline.mean_exec_seconds else 0.0
        out.append(Finding(
            kind="statement_regression", table=r.table, table_id=r.table_id,
            evidence=(f"Statement {r.queryid} now takes {r.current.mean_exec_seconds * 1000:.2f} ms per call "
                      f"({r.current.calls} calls in the last window), {ratio:.1f}x its "
                      f"{r.baseline.mean_exec_seconds * 1000:.2f} ms before, {r.cause}."),
            queryids=[r.queryid], calls=r.current.calls, mean_exec_seconds=r.current.mean_exec_seconds,
            benefit=r.current.exec_seconds * 1000, query=r.query,
        ))
    return out
