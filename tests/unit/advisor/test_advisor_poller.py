"""AdvisorPoller: a run that outlives its timeout is published late, never doubled, and never
holds up shutdown. The advisor stand-in runs until the test releases it: a real run cannot be
made to take a chosen time, and a stand-in that sleeps would make the test a race with the clock."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

from monitor.advisor.findings import AdviceReport
from monitor.advisor.poller import AdvisorPoller
from monitor.advisor.settings import AdvisorSettings, Thresholds
from monitor.core.scheduler import Scheduler


class HeldAdvisor:
    """An advisor whose run lasts until ``release`` is set."""

    target = "shop"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.finished = threading.Event()
        self.runs = 0
        self.cancelled = False

    def run(self) -> AdviceReport:
        self.runs += 1
        self.release.wait(60)
        self.finished.set()
        return AdviceReport(target="shop", generated_at=datetime.now(UTC), stats_reset=None)

    def cancel(self) -> None:
        self.cancelled = True


async def test_a_late_run_is_published_and_never_doubled() -> None:
    advisor = HeldAdvisor()
    poller = AdvisorPoller(advisor, interval=0.3, timeout=0.2)  # type: ignore[arg-type]
    scheduler = Scheduler([poller])
    state = scheduler.states[0]
    await scheduler.poll_once(state)  # times out, the run goes on
    assert not state.up and advisor.runs == 1
    await scheduler.poll_once(state)  # still running: no second run
    assert not state.up and advisor.runs == 1
    assert state.last_error is not None and "still going" in state.last_error
    advisor.release.set()
    assert await asyncio.to_thread(advisor.finished.wait, 10)
    await asyncio.sleep(0)  # the run's result reaches the event loop
    for _ in range(100):  # delivered with call_soon_threadsafe: a few loop turns at most
        if poller._running is None or poller._running.done():
            break
        await asyncio.sleep(0.01)
    await scheduler.poll_once(state)  # finished meanwhile: published
    assert state.up and state.snapshot is not None and advisor.runs == 1
    await scheduler.stop()
    assert advisor.cancelled


def test_shutdown_does_not_wait_for_a_running_advisor() -> None:
    advisor = HeldAdvisor()
    poller = AdvisorPoller(advisor, interval=10, timeout=8)  # type: ignore[arg-type]

    async def main() -> None:
        scheduler = Scheduler([poller])
        scheduler.start()
        while advisor.runs == 0:
            await asyncio.sleep(0.01)
        await scheduler.stop()

    asyncio.run(main())
    # The event loop is gone while the run still goes on: shutdown did not wait for it.
    assert not advisor.finished.is_set() and advisor.cancelled
    advisor.release.set()
    assert advisor.finished.wait(10)


def test_advisor_session_fits_inside_its_timeout() -> None:
    settings = AdvisorSettings(interval=5).run_thresholds()
    assert settings.statement_timeout_seconds == 2.0  # half of the 4 s run timeout
    assert settings.verification_max_seconds == 2.0
    settings = AdvisorSettings(interval=300, thresholds=Thresholds(statement_timeout_seconds=20)).run_thresholds()
    assert settings.statement_timeout_seconds == 20.0  # explicit wins
    assert settings.verification_max_seconds == 30.0  # default, already under 60
