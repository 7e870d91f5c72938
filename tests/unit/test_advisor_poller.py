"""AdvisorPoller timing: a run that outlives its timeout is published late, never doubled,
and never holds up shutdown. The advisor stand-in only sleeps: a real run cannot be made to
take a chosen time."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from monitor.advisor.findings import AdviceReport
from monitor.advisor.poller import AdvisorPoller
from monitor.config import AdvisorConfig
from monitor.scheduler import Scheduler


class SlowAdvisor:
    target = "shop"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.runs = 0
        self.cancelled = False

    def run(self) -> AdviceReport:
        self.runs += 1
        time.sleep(self.seconds)
        return AdviceReport(target="shop", generated_at=datetime.now(UTC), stats_reset=None)

    def cancel(self) -> None:
        self.cancelled = True


async def test_a_late_run_is_published_and_never_doubled() -> None:
    advisor = SlowAdvisor(0.5)
    poller = AdvisorPoller(advisor, interval=0.3, timeout=0.2)  # type: ignore[arg-type]
    scheduler = Scheduler([poller])
    state = scheduler.states[0]
    await scheduler.poll_once(state)  # times out, the run goes on
    assert not state.up and advisor.runs == 1
    await asyncio.sleep(0.1)
    await scheduler.poll_once(state)  # still running: no second run
    assert advisor.runs == 1
    await asyncio.sleep(0.4)
    await scheduler.poll_once(state)  # finished meanwhile: published
    assert state.up and state.snapshot is not None and advisor.runs == 1
    await scheduler.stop()
    assert advisor.cancelled


def test_shutdown_does_not_wait_for_a_running_advisor() -> None:
    advisor = SlowAdvisor(5)
    poller = AdvisorPoller(advisor, interval=10, timeout=8)  # type: ignore[arg-type]

    async def main() -> None:
        scheduler = Scheduler([poller])
        scheduler.start()
        await asyncio.sleep(0.2)
        await scheduler.stop()

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 1.5


def test_advisor_session_fits_inside_its_timeout() -> None:
    settings = AdvisorConfig(interval=5).settings()
    assert settings.statement_timeout_seconds == 2.0  # half of the 4 s run timeout
    assert settings.verification_max_seconds == 2.0
    settings = AdvisorConfig(interval=300, thresholds={"statement_timeout_seconds": 20}).settings()
    assert settings.statement_timeout_seconds == 20.0  # explicit wins
    assert settings.verification_max_seconds == 30.0  # default, already under 60
