"""The advisor: one run reads statistics and catalog, analyzes, verifies, and reports.

``Advisor.run`` is synchronous and opens its own short-lived, read-only,
time-bounded session (``session_kwargs``). An ``Advisor`` object kept by the
service remembers the previous ``pg_stat_statements`` counters, so
``slow_statement`` and ``n_plus_one`` look at the window since the last run;
the one-shot command uses lifetime counters.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import psycopg

from collectors.postgres.access import ADVISOR_APPLICATION_NAME, ADVISOR_TAG, error_line, session_kwargs
from collectors.postgres.statements import StatementStat, deltas, read_statements, read_statements_reset

from .candidates import Workload, build_candidates, select_heuristic, select_verified
from .catalog import Catalog, read_catalog
from .findings import AdviceReport, Finding, Skipped, VerificationStats
from .hygiene import hygiene_findings
from .patterns import n_plus_one_findings, slow_findings
from .query_analysis import StatementAnalysis, analyze
from .settings import Thresholds
from .whatif import Budget, PlanError, WhatIf

__all__ = ["AdviceReport", "Advisor", "AdvisorConnectionError", "Thresholds"]

SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema"})
log = logging.getLogger("dbpulse.advisor")


class AdvisorConnectionError(RuntimeError):
    """The database could not be reached; the message never carries a password."""


class Advisor:
    def __init__(self, dsn: str, target: str, settings: Thresholds | None = None,
                 password: str | None = None) -> None:
        self.dsn = dsn
        self._password = password
        self.target = target
        self.settings = settings or Thresholds()
        self._previous: dict[int, StatementStat] | None = None
        self._analysis_cache: dict[str, StatementAnalysis] = {}
        self._conn: psycopg.Connection[Any] | None = None  # the running session, for cancel()

    def connect(self) -> psycopg.Connection[Any]:
        kwargs = session_kwargs(self.settings.statement_timeout_seconds, application_name=ADVISOR_APPLICATION_NAME,
                                password=self._password)
        try:
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
        report.duration_seconds = time.monotonic() - started
        return report

    def cancel(self) -> None:
        """Cancel the statement the running session is executing (safe from another thread)."""
        conn = self._conn
        if conn is not None:
            conn.cancel()

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
        s = self.settings
        cat = read_catalog(conn)
        report = AdviceReport(target=self.target, generated_at=datetime.now(UTC), stats_reset=cat.stats_reset)
        report.notes.extend(cat.notes)
        report.findings.extend(hygiene_findings(cat, s))

        try:
            current = [st for st in read_statements(conn, cat.server_version_num, s.max_statements)
                       if ADVISOR_TAG not in st.query]  # the advisor's own catalog queries carry the tag
            statements_reset = read_statements_reset(conn, cat.server_version_num)
        except psycopg.Error as exc:
            report.notes.append(
                f"pg_stat_statements not readable ({exc.sqlstate}: {error_line(exc)}): "
                "missing_index, n_plus_one and slow_statement disabled"
            )
            return report
        first_run = self._previous is None
        window_stats = deltas(current, self._previous)
        self._previous = {st.queryid: st for st in current}
        if statements_reset and (report.stats_reset is None or statements_reset > report.stats_reset):
            report.notes.append(f"pg_stat_statements was reset at {statements_reset.isoformat()}")

        items: list[tuple[StatementStat, StatementAnalysis]] = []
        for stat in current:
            analysis = self._analyze(stat.query, cat)
            if not analysis.ok:
                report.skipped.append(Skipped(stat.queryid, stat.query[:1000], analysis.error or "", stat.calls))
                continue
            if self._is_system(analysis, cat):
                continue
            items.append((stat, analysis))
        report.statements_analyzed = len(items)
        by_id = {st.queryid: a for st, a in items}

        workload = Workload(items)
        candidates = build_candidates(workload, cat, s)
        unplannable: dict[int, str] = {}
        stats = VerificationStats()
        if candidates and s.use_hypopg and cat.hypopg_version:
            budget = Budget(s.verification_max_explains, s.verification_max_seconds)
            whatif = WhatIf(conn, cat.server_version_num, budget)
            try:
                report.findings.extend(select_verified(candidates, workload, cat, whatif, s, unplannable))
            finally:
                whatif.reset()
            stats = VerificationStats(budget.explains, budget.seconds, budget.exhausted(), "hypopg")
            if budget.exhausted():
                report.notes.append(
                    f"verification budget exhausted ({budget.explains} EXPLAINs, {budget.seconds:.1f} s): "
                    "advice covers the tables verified so far"
                )
        elif candidates:
            reason = "disabled by settings" if not s.use_hypopg else "the hypopg extension is not installed"
            budget = Budget(s.verification_max_explains, s.verification_max_seconds)
            heuristic = select_heuristic(candidates, workload, s)
            planned = _plan_heuristic(heuristic, workload, WhatIf(conn, cat.server_version_num, budget), unplannable)
            how = "EXPLAIN (GENERIC_PLAN)" if cat.server_version_num >= 160000 else "PREPARE + EXPLAIN EXECUTE"
            report.notes.append(f"HypoPG verification unavailable ({reason}): missing_index advice is heuristic; "
                                f"{planned} of its statements planned ({how}) for their current cost")
            report.findings.extend(heuristic)
            stats = VerificationStats(budget.explains, budget.seconds, budget.exhausted(), "heuristic")
        report.verification = stats
        for stat, _ in items:
            if stat.queryid in unplannable:
                report.skipped.append(Skipped(stat.queryid, stat.query[:1000], unplannable[stat.queryid], stat.calls))

        window = "since statistics were reset" if first_run else "since the previous advisor run"
        windowed = [(st, by_id[st.queryid]) for st in window_stats if st.queryid in by_id]
        total_calls = sum(st.calls for st, _ in windowed)
        report.findings.extend(n_plus_one_findings(windowed, cat, s, total_calls))
        report.findings.extend(slow_findings(list(windowed), cat, s, window))
        return report


def _plan_heuristic(findings: list[Finding], workload: Workload, whatif: WhatIf, unplannable: dict[int, str]) -> int:
    """Without HypoPG nothing can be verified, but the statements behind heuristic advice are still
    planned: a statement that cannot be planned is listed as skipped, and each finding gets the
    calls-weighted generic-plan cost it would cut (cost_before). Returns the statements planned."""
    by_id = {stat.queryid: (stat, analysis) for stat, analysis in workload.items}
    costs: dict[int, float] = {}
    for finding in findings:
        for queryid in finding.queryids or []:
            if queryid in costs or queryid in unplannable or queryid not in by_id or whatif.budget.exhausted():
                continue
            stat, analysis = by_id[queryid]
            try:
                costs[queryid] = stat.calls * whatif.cost(stat.query, analysis.n_params)
            except PlanError as exc:
                unplannable[queryid] = f"cannot be planned: {exc}"
        planned = [costs[q] for q in finding.queryids or [] if q in costs]
        if planned:
            finding.cost_before = round(sum(planned), 2)
    return len(costs)
