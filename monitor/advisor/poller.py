"""The advisor as a scheduled source: one run per target on its own (long) interval.

A run is synchronous (psycopg, HypoPG what-if plans) and goes to a daemon
thread (which, with ``advisor.run_in_child``, runs it in a forked child process: ``child.py``), so the
event loop, the scrapes, the other sources and the shutdown
never wait on it; its session is bounded by a statement_timeout and an
EXPLAIN time budget derived from advisor.timeout. It is never on the scrape
path: ``/metrics``, ``/advice`` and the UI read the last report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from collectors.base.poller import Poller
from collectors.base.redact import redact
from collectors.base.samples import Sample, SampleList
from collectors.base.settings import PollSettings
from collectors.postgres.settings import PostgresSettings
from collectors.postgres.spec import SPEC as POSTGRES
from monitor.advisor.actions import ACTION_KINDS
from monitor.advisor.advisor import Advisor
from monitor.advisor.child import ChildRunner
from monitor.advisor.databases import DatabaseAdvisors
from monitor.advisor.findings import UNPLANNABLE_CATEGORIES, AdviceReport
from monitor.advisor.outcomes import CHANGES
from monitor.advisor.settings import AdvisorSettings
from monitor.advisor.store import open_store
from monitor.core.memory import release_freed_memory

ADVISOR = "advisor"  # its pollers' source: the service's own, not a registered source

log = logging.getLogger("dbpulse.advisor")


def pollers(settings: AdvisorSettings, sections: Mapping[str, PollSettings]) -> list[Poller]:
    """One advisor per PostgreSQL target (``sections``: every source's, by name), on the advisor's own interval;
    none when disabled."""
    postgres = sections.get(POSTGRES.name)
    if not settings.enabled or not isinstance(postgres, PostgresSettings):
        return []
    thresholds = settings.run_thresholds()
    store = open_store(settings.state_dir, settings.state_fallback)  # StateError: dbpulse does not start
    out: list[Poller] = []
    for t in postgres.targets:
        # A password_file is read again at each run's connection, as the statistics poller does (a rotated token).
        password = t.password_source()
        advisor = Advisor(t.dsn, t.target, thresholds, password=password, store=store)
        runner = advisor if t.databases is None else DatabaseAdvisors(advisor, t.databases, thresholds, password)
        out.append(AdvisorPoller(runner, settings.interval, settings.effective_timeout,
                                 in_child=settings.run_in_child and hasattr(os, "fork"),
                                 shared=(store, password, thresholds)))
    return out


@dataclass(frozen=True)
class AdviceSnapshot:
    report: AdviceReport  # the DSN's database's
    others: tuple[AdviceReport, ...] = ()  # the other databases' (postgres.targets[].databases), each its own target

    @property
    def reports(self) -> list[AdviceReport]:
        return [self.report, *self.others]

    def samples(self) -> list[Sample]:
        return [sample for report in self.reports for sample in _samples(report)]


def _samples(report: AdviceReport) -> list[Sample]:
    """One report's samples, labelled with its target."""
    out = SampleList(target=report.target)
    for kind, count in sorted(report.counts_by_kind().items()):
        out.add("dbpulse_advice_findings", count, kind=kind)
    out.add("dbpulse_advice_last_run_timestamp_seconds", report.generated_at.timestamp())
    out.add("dbpulse_advice_statements_skipped", report.skipped_count)
    for reason in UNPLANNABLE_CATEGORIES:
        out.add("dbpulse_advice_statements_unplannable", sum(1 for sk in report.skipped if sk.category == reason),
                reason=reason)
    out.add("dbpulse_advice_missing_index_benefit_ratio", missing_index_benefit(report))
    for action in ACTION_KINDS:
        out.add("dbpulse_advice_plan_actions", sum(1 for a in report.plan.actions if a.action == action),
                action=action)
    for verdict, count in report.outcome_counts().items():
        out.add("dbpulse_advice_outcome_statements", count, verdict=verdict)
    for change in CHANGES:
        out.add("dbpulse_advice_index_changes", sum(1 for o in report.outcomes if o.change == change),
                change=change)
    return out.samples


def report_of(snapshot: object) -> AdviceReport | None:
    """The advisor's report, when ``snapshot`` is an advisor's (the one type check the web needs for it)."""
    return snapshot.report if isinstance(snapshot, AdviceSnapshot) else None


def reports_of(snapshot: object) -> list[AdviceReport]:
    """Every report of an advisor's ``snapshot``: its target's, then its other databases' (none otherwise)."""
    return snapshot.reports if isinstance(snapshot, AdviceSnapshot) else []


def missing_index_benefit(report: AdviceReport) -> float:
    """Largest relative cost reduction among verified missing-index findings (0 if none)."""
    best = 0.0
    for f in report.findings:
        if f.kind == "missing_index" and f.cost_before and f.cost_after is not None and f.cost_before > 0:
            best = max(best, (f.cost_before - f.cost_after) / f.cost_before)
    return best


class AdvisorPoller(Poller):
    source = ADVISOR

    def __init__(self, advisor: Advisor | DatabaseAdvisors, interval: float, timeout: float, in_child: bool = False,
                 shared: tuple[object, ...] = ()) -> None:
        """``in_child``: each run in a forked child (``child.py``); ``shared``: what the advisor holds that the
        child uses as it is, not as a copy (the state store, the password source, the thresholds)."""
        self.advisor = advisor
        self.target = advisor.target
        self.interval = interval
        self.timeout = timeout
        self._running: asyncio.Future[AdviceSnapshot] | None = None
        self._child = ChildRunner(advisor, shared) if in_child else None

    async def poll(self) -> AdviceSnapshot:
        if self._running is not None:
            if not self._running.done():
                raise RuntimeError("the previous advisor run is still going")
            # A run that outlived its timeout finished since: publish it now.
            late, self._running = self._running, None
            return late.result()
        self._running = self._start()
        snapshot = await asyncio.shield(self._running)
        self._running = None
        return snapshot

    def _run(self) -> AdviceSnapshot:
        """One run (in the advisor's thread, or its child): the target's database, or the turn of one of its
        databases."""
        if self._child is not None:
            # a child still running when the next run is due is stuck (see ChildRunner.run): it is ended then
            return self._child.run(run_once, limit=max(self.interval, self.timeout))
        return run_once(self.advisor)

    def _start(self) -> asyncio.Future[AdviceSnapshot]:
        """Run the advisor in a daemon thread: it never holds up shutdown, unlike the default executor."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AdviceSnapshot] = loop.create_future()

        def deliver(result: AdviceSnapshot | None, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                assert result is not None
                future.set_result(result)

        def work() -> None:
            try:
                result, error = self._run(), None
            except BaseException as exc:  # handed to the event loop, never lost in the thread
                result, error = None, exc
            # The run's working set (texts, parse trees, plans) is garbage now: its pages go back to the system, or
            # the process would stay at the run's peak until the next run.
            release_freed_memory()
            with contextlib.suppress(RuntimeError):  # the loop is closed: we are shutting down
                loop.call_soon_threadsafe(deliver, result, error)

        threading.Thread(target=work, name=f"advisor-{self.target}", daemon=True).start()
        # Marked retrieved whoever reads it: a run abandoned at its timeout that then fails (an unreachable
        # target's connect outlasting the poll) and is never read (shutdown) would otherwise be logged by asyncio
        # as "Future exception was never retrieved", with the advisor thread's traceback. The next poll publishes
        # it (the scheduler counts and logs it), or close() says it in one line.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        return future

    async def close(self) -> None:
        late = self._running
        if late is not None and late.done() and not late.cancelled() and (error := late.exception()) is not None:
            log.warning("advisor %s: its last run, abandoned at the timeout, failed: %s", self.target,
                        redact(f"{type(error).__name__}: {error}".strip()))
        # libpq's cancel request waits for the server's answer (for ever, if it is frozen): never on the event loop.
        cancel = self._child.cancel if self._child is not None else self.advisor.cancel
        threading.Thread(target=cancel, name=f"advisor-cancel-{self.target}", daemon=True).start()


def run_once(advisor: Advisor | DatabaseAdvisors) -> AdviceSnapshot:
    """One run of ``advisor``: its target's report, and its other databases' (``DatabaseAdvisors``)."""
    if isinstance(advisor, DatabaseAdvisors):
        return AdviceSnapshot(*advisor.run())
    return AdviceSnapshot(advisor.run())
