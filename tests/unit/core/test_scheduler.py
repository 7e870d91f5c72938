"""Scheduler behaviour with in-process pollers: cadence, timeouts, isolation, probes.

These pollers stand in for sources only to produce timings a real server
cannot be made to produce on demand (a poll that hangs forever, one that
raises); the real collectors are covered by the integration tests. The tests
that count polls run on the event loop's fake clock (looptime): the loop's
time moves only through sleeps and timeouts, so a loaded machine changes
nothing they count.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from collectors.base.poller import Poller
from collectors.base.samples import Sample, SampleList
from monitor.core.scheduler import Scheduler


class Snap:
    def __init__(self, target: str) -> None:
        self.target = target

    def samples(self) -> list[Sample]:
        out = SampleList(target=self.target)
        out.add("dbpulse_pg_up", 1)
        return out.samples


class ScriptedPoller(Poller):
    source = "postgres"

    def __init__(self, target: str, interval: float, timeout: float, behaviour: str = "ok",
                 delay: float = 0.0) -> None:
        self.target, self.interval, self.timeout = target, interval, timeout
        self.behaviour, self.delay = behaviour, delay
        self.started: list[float] = []
        self.cancelled_at: list[float] = []
        self.release = asyncio.Event()
        self.closed = False

    async def poll(self) -> Snap:
        self.started.append(asyncio.get_running_loop().time())
        if self.behaviour == "hang":
            await asyncio.Event().wait()
        if self.behaviour == "slow-cancel":  # like psycopg: on a cancel, asks the server to cancel and waits
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled_at.append(asyncio.get_running_loop().time())
                await asyncio.sleep(10)  # interrupted by a second cancel
                raise
        if self.behaviour == "deaf":  # ignores every cancel until released
            while not self.release.is_set():
                try:
                    await asyncio.sleep(1)
                except asyncio.CancelledError:
                    self.cancelled_at.append(asyncio.get_running_loop().time())
            raise ConnectionError("gave up")
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.behaviour == "fail":
            raise ConnectionError("password=hunter22 rejected")
        return Snap(self.target)

    def down_samples(self) -> list[Sample]:
        out = SampleList(target=self.target)
        out.add("dbpulse_pg_up", 0)
        return out.samples

    async def close(self) -> None:
        self.closed = True


@pytest.mark.looptime
async def test_hanging_or_failing_source_never_delays_another() -> None:
    good = ScriptedPoller("good", interval=0.1, timeout=0.05)
    hang = ScriptedPoller("hang", interval=0.1, timeout=0.05, behaviour="hang")
    fail = ScriptedPoller("fail", interval=0.1, timeout=0.05, behaviour="fail")
    scheduler = Scheduler([good, hang, fail])
    scheduler.start()
    await asyncio.sleep(0.58)  # the sixth polls started at 0.5 s; the hanging one timed out at 0.55 s
    await scheduler.stop()
    by_target = {s.poller.target: s for s in scheduler.states}
    # Fixed cadence: a poll at 0, 0.1, ... 0.5 s, whatever the others do.
    assert by_target["good"].polls == 6
    gaps = [b - a for a, b in zip(good.started, good.started[1:], strict=False)]
    assert gaps == pytest.approx([0.1] * 5), gaps
    assert by_target["good"].up and by_target["good"].errors == 0
    assert not by_target["hang"].up
    assert by_target["hang"].errors == by_target["hang"].polls == 6
    assert by_target["hang"].last_error == "timed out after 0.05 s"
    assert by_target["fail"].last_error is not None
    assert "hunter22" not in by_target["fail"].last_error
    assert by_target["fail"].samples == [Sample("dbpulse_pg_up", ("fail",), 0.0)]
    assert all(p.closed for p in (good, hang, fail))


@pytest.mark.looptime
async def test_overruns_are_counted_and_ticks_skipped() -> None:
    slow = ScriptedPoller("slow", interval=0.1, timeout=1.0, delay=0.25)
    scheduler = Scheduler([slow])
    scheduler.start()
    await asyncio.sleep(0.9)
    await scheduler.stop()
    state = scheduler.states[0]
    assert state.polls == 3  # at 0, 0.3 and 0.6 s: each 0.25 s poll skips two 0.1 s ticks
    assert state.overruns == 6
    assert slow.started == pytest.approx([0.0, 0.3, 0.6])
    meta = {s.name: s.value for s in state.meta_samples()}
    assert meta["dbpulse_source_poll_overruns_total"] == state.overruns


async def test_ready_after_first_poll_even_when_it_failed() -> None:
    fail = ScriptedPoller("fail", interval=10, timeout=1, behaviour="fail")
    scheduler = Scheduler([fail])
    assert not scheduler.ready()
    scheduler.start()
    await asyncio.sleep(0.05)
    assert scheduler.ready()
    meta = {s.name: s.value for s in scheduler.states[0].meta_samples()}
    assert meta["dbpulse_source_up"] == 0
    assert "dbpulse_source_last_success_timestamp_seconds" not in meta
    await scheduler.stop()


async def test_liveness_reports_a_stalled_loop() -> None:
    now = [100.0]
    poller = ScriptedPoller("p", interval=1, timeout=0.5)
    scheduler = Scheduler([poller], clock=lambda: now[0])
    await scheduler.poll_once(scheduler.states[0])
    assert scheduler.stalled() == []
    now[0] += 2 * 1 + 0.5 + 5 + 0.1
    assert [s.poller.target for s in scheduler.stalled()] == ["p"]


@pytest.mark.looptime
async def test_a_poll_is_abandoned_at_its_deadline_while_it_is_cancelled_in_the_background() -> None:
    """The driver takes 10 s to honour a cancel (psycopg's polite cancel of a frozen server): the source is
    down at the timeout, the next polls start on time, and a second cancel stops the abandoned poll."""
    slow = ScriptedPoller("slow", interval=3, timeout=2.4, behaviour="slow-cancel")
    scheduler = Scheduler([slow])
    state = scheduler.states[0]
    scheduler.start()
    await asyncio.sleep(2.41)
    assert not state.up and state.last_error == "timed out after 2.4 s" and state.polls == 1
    assert state.last_started == 0 and state.last_ended == pytest.approx(2.4)
    assert {s.name: s.value for s in state.meta_samples()}["dbpulse_source_abandoned_polls"] == 1
    await asyncio.sleep(2)
    assert state.abandoned == 0  # cancelled again after CANCEL_GRACE: it stopped
    await asyncio.sleep(5)
    assert slow.started == pytest.approx([0, 3, 6, 9])  # on time, whatever the cancellation costs
    assert state.errors == 3 and state.overruns == 0
    assert [round(t, 1) for t in slow.cancelled_at] == [2.4, 5.4, 8.4]  # each at its deadline
    await scheduler.stop()
    assert state.abandoned == 0 and slow.closed
    assert len(asyncio.all_tasks()) == 1  # this test's own: no poll or reaper left behind


@pytest.mark.looptime
async def test_a_poll_deaf_to_cancellation_is_reported_and_never_holds_the_next(
        caplog: pytest.LogCaptureFixture) -> None:
    deaf = ScriptedPoller("deaf", interval=3, timeout=1, behaviour="deaf")
    good = ScriptedPoller("good", interval=1, timeout=0.5)
    scheduler = Scheduler([deaf, good])
    by_target = {s.poller.target: s for s in scheduler.states}
    caplog.set_level(logging.DEBUG, logger="dbpulse.scheduler")
    scheduler.start()
    await asyncio.sleep(5.5)
    state = by_target["deaf"]
    assert deaf.started == pytest.approx([0, 3])  # the next poll did not wait for the deaf one
    assert state.errors == 2 and not state.up and state.abandoned == 2
    assert by_target["good"].polls == 6 and by_target["good"].up
    assert any("still running 2 s after it was cancelled" in r.message for r in caplog.records)
    await scheduler.stop()  # bounded: gives up on what ignores cancellation
    assert deaf.closed and good.closed
    deaf.release.set()
    await asyncio.sleep(1)
    assert len(asyncio.all_tasks()) == 1
