"""The advisor as a scheduled source: one run per target on its own (long) interval.

A run is synchronous (psycopg, HypoPG what-if plans) and goes to a worker
thread, so the event loop, the scrapes and the other sources never wait on
it. It is never on the scrape path: ``/metrics``, ``/advice`` and the UI read
the last report.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from monitor.advisor.advisor import Advisor
from monitor.advisor.findings import AdviceReport
from monitor.poller import Poller
from monitor.samples import Sample, SampleList


@dataclass(frozen=True)
class AdviceSnapshot:
    report: AdviceReport

    def samples(self) -> list[Sample]:
        report = self.report
        out = SampleList(target=report.target)
        for kind, count in sorted(report.counts_by_kind().items()):
            out.add("dbpulse_advice_findings", count, kind=kind)
        out.add("dbpulse_advice_last_run_timestamp_seconds", report.generated_at.timestamp())
        out.add("dbpulse_advice_statements_skipped", report.skipped_count)
        out.add("dbpulse_advice_missing_index_benefit_ratio", missing_index_benefit(report))
        return out.samples


def missing_index_benefit(report: AdviceReport) -> float:
    """Largest relative cost reduction among verified missing-index findings (0 if none)."""
    best = 0.0
    for f in report.findings:
        if f.kind == "missing_index" and f.cost_before and f.cost_after is not None and f.cost_before > 0:
            best = max(best, (f.cost_before - f.cost_after) / f.cost_before)
    return best


class AdvisorPoller(Poller):
    source = "advisor"

    def __init__(self, advisor: Advisor, interval: float, timeout: float) -> None:
        self.advisor = advisor
        self.target = advisor.target
        self.interval = interval
        self.timeout = timeout
        self._running: asyncio.Future[AdviceReport] | None = None

    async def poll(self) -> AdviceSnapshot:
        # A thread cannot be cancelled: if a run outlived its timeout, wait for it
        # rather than starting a second one beside it.
        if self._running is not None and not self._running.done():
            raise RuntimeError("the previous advisor run is still going")
        self._running = asyncio.ensure_future(asyncio.to_thread(self.advisor.run))
        report = await asyncio.shield(self._running)
        return AdviceSnapshot(report)
