"""AdvisorPoller: a run that outlives its timeout is published late, never doubled, and never
holds up shutdown. The advisor stand-in runs until the test releases it: a real run cannot be
made to take a chosen time, and a stand-in that sleeps would make the test a race with the clock."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import threading
from datetime import UTC, datetime

import pytest

from monitor.advisor.advisor import Advisor
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


def test_an_unreachable_target_is_one_log_line_and_a_counted_failure(caplog: pytest.LogCaptureFixture) -> None:
    """A server that accepts TCP connections and never answers (a real socket, listening, never accepting):
    the advisor's connect outlasts its poll's timeout, so the run is abandoned and fails afterwards. That
    failure is counted and logged as one line naming the target and the error, at the next poll or, when
    the service stops first, at close; never asyncio's "exception was never retrieved" with a traceback."""
    frozen = socket.socket()
    frozen.bind(("127.0.0.1", 0))
    frozen.listen(16)
    dsn = f"postgresql://postgres@127.0.0.1:{frozen.getsockname()[1]}/postgres"
    caplog.set_level(logging.DEBUG)

    async def abandoned_run(poller: AdvisorPoller, scheduler: Scheduler) -> None:
        await scheduler.poll_once(scheduler.states[0])  # the connect (1 s) outlasts the poll (0.2 s)
        assert scheduler.states[0].last_error == "timed out after 0.2 s"
        for _ in range(1000):  # bounded: the connect times out after 1 s
            if poller._running is not None and poller._running.done():
                break
            await asyncio.sleep(0.01)

    async def next_poll_then_stop() -> None:
        advisor = Advisor(dsn, "frozen", Thresholds(statement_timeout_seconds=1))
        poller = AdvisorPoller(advisor, interval=60, timeout=0.2)
        scheduler = Scheduler([poller])
        await abandoned_run(poller, scheduler)
        await scheduler.poll_once(scheduler.states[0])  # publishes the late failure
        state = scheduler.states[0]
        assert state.errors == 2 and state.last_error is not None
        assert state.last_error.startswith("AdvisorConnectionError: cannot connect to frozen: ")
        await abandoned_run(poller, scheduler)  # and one more that nobody reads before the stop
        await scheduler.stop()

    try:
        asyncio.run(next_poll_then_stop())
        gc.collect()  # asyncio reports an unretrieved exception when its future is collected
    finally:
        frozen.close()
    assert not [r for r in caplog.records if r.exc_info or "never retrieved" in r.getMessage()]
    at_close = [r.getMessage() for r in caplog.records if "abandoned at the timeout, failed" in r.getMessage()]
    assert at_close == ["advisor frozen: its last run, abandoned at the timeout, failed: AdvisorConnectionError: "
                        "cannot connect to frozen: connection timeout expired"]
