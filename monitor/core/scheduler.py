"""Fixed-cadence polling: one asyncio task per source and target.

Each poll has a hard deadline, its poller's timeout: a poll still running then
is abandoned at once (the source is down and the error is logged at the
deadline, not when the driver has finished cancelling) and is cancelled in the
background, bounded, while the next poll starts on time. A failing or hanging
source never delays another, nor a scrape. A poll that overruns its interval
skips the missed ticks and counts them, rather than piling polls up (Patroni's
schedule_next_run).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from collectors.base.poller import Poller, Snapshot
from collectors.base.redact import redact
from collectors.base.samples import Sample, SampleList
from monitor.core.history import DEFAULT_SECONDS, History, capacity_for
from monitor.core.joined import joined_samples
from monitor.core.memory import trim_heap

log = logging.getLogger("dbpulse.scheduler")

# Seconds an abandoned poll may take to stop after it is cancelled, before it is cancelled again; and as long
# again for those further cancels. A driver may answer the first cancel by asking the server to cancel the
# query and waiting for it (psycopg waits up to 10 s, for nothing when the server is frozen); cancelled while
# doing so, it closes the connection instead.
CANCEL_GRACE = 1.0
RECANCEL_EVERY = 0.1


@dataclass
class SourceState:
    """What the exporter and the HTTP layer know about one poller."""

    poller: Poller
    history: History
    snapshot: Snapshot | None = None
    samples: list[Sample] = field(default_factory=list)
    polls: int = 0
    errors: int = 0
    overruns: int = 0
    up: bool = False
    abandoned: int = 0  # polls abandoned at their deadline whose cancellation has not finished yet
    last_duration: float | None = None
    last_success: float | None = None  # wall-clock time
    last_started: float | None = None  # monotonic time (the scheduler's clock) when the last poll started
    last_ended: float | None = None  # the same clock, when its outcome was published (at the deadline at the latest)
    last_error: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.poller.source, self.poller.target)

    def meta_samples(self) -> list[Sample]:
        out = SampleList(source=self.poller.source, target=self.poller.target)
        out.add("dbpulse_source_up", 1 if self.up else 0)
        out.add("dbpulse_source_polls_total", self.polls)
        out.add("dbpulse_source_poll_errors_total", self.errors)
        out.add("dbpulse_source_poll_overruns_total", self.overruns)
        out.add("dbpulse_source_abandoned_polls", self.abandoned)
        out.add("dbpulse_source_interval_seconds", self.poller.interval)
        out.add("dbpulse_source_poll_duration_seconds", self.last_duration)
        out.add("dbpulse_source_last_success_timestamp_seconds", self.last_success)
        return out.samples


def _retrieve(task: asyncio.Task[Snapshot]) -> None:
    """How an abandoned poll ended; it was reported as failed at its deadline."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("an abandoned poll (%s) ended with %r", task.get_name(), task.exception())


def loop_time() -> float:
    """The running event loop's clock (monotonic), which its sleeps and timeouts follow."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:  # no loop running (construction, tests): the same clock as a default loop's
        return time.monotonic()


class Scheduler:
    def __init__(self, pollers: list[Poller], clock: Callable[[], float] = loop_time,
                 history_seconds: float = DEFAULT_SECONDS, recorded: Iterable[str] = ()) -> None:
        """``recorded``: the metric names each source's ``History`` keeps (what the UI draws)."""
        names = frozenset(recorded)
        self.states = [SourceState(p, History(capacity_for(history_seconds, p.interval), names)) for p in pollers]
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self._reapers: set[asyncio.Task[None]] = set()  # each stops one abandoned poll
        self.version = 0  # bumped after every poll; lets the HTTP layer cache a rendering
        self.on_change: list[Callable[[], None]] = []  # called after each bump (the exposition re-encodes)
        self.started_at = clock()

    def start(self) -> None:
        self.started_at = self._clock()
        for state in self.states:
            name = f"poll-{state.poller.source}-{state.poller.target}"
            self._tasks.append(asyncio.create_task(self._loop(state), name=name))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()  # a running poll is abandoned, and cancelled at once
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._reapers:
            await asyncio.wait(set(self._reapers), timeout=CANCEL_GRACE + RECANCEL_EVERY)
        for reaper in self._reapers:
            reaper.cancel()  # a poll that ignores cancellation: give up on it
        closes = [_within(s.poller.close(), 2.0) for s in self.states]
        for result in await asyncio.gather(*closes, return_exceptions=True):
            if isinstance(result, BaseException):
                log.warning("closing a source failed: %s", redact(str(result)))

    async def poll_once(self, state: SourceState) -> None:
        poller = state.poller
        state.last_started = self._clock()
        started = time.perf_counter()
        task = asyncio.create_task(poller.poll(), name=f"poll-once-{poller.source}-{poller.target}")
        try:
            done, _ = await asyncio.wait((task,), timeout=poller.timeout)
        except asyncio.CancelledError:  # stop(): the poll must not outlive the scheduler
            self._abandon(state, task, grace=0.0)
            raise
        if task not in done:
            self._abandon(state, task)
            self._failed(state, f"timed out after {poller.timeout:g} s")
        else:
            try:
                snapshot = task.result()
                samples = snapshot.samples()
                samples += joined_samples(poller.source, snapshot, self.states)  # the other targets' latest
            except asyncio.CancelledError:  # the poll cancelled itself (stop() is handled above)
                self._failed(state, "cancelled")
            except Exception as exc:  # one source's failure must never stop the others
                self._failed(state, redact(f"{type(exc).__name__}: {exc}".strip()))
            else:
                if not state.up and state.polls > 0:
                    log.info("%s %s recovered", poller.source, poller.target)
                state.snapshot, state.samples, state.up = snapshot, samples, True
                state.last_success, state.last_error = time.time(), None
                state.history.record(state.last_success, samples)
        state.polls += 1
        state.last_duration = time.perf_counter() - started
        state.last_ended = self._clock()
        # The poll's rows are garbage now; glibc would keep their pages (2.6 MiB at 10,000 statements).
        trim_heap()
        self.bump()

    def bump(self) -> None:
        """A poll ended (or an abandoned one was reaped): what the HTTP layer cached is stale."""
        self.version += 1
        for listener in self.on_change:
            listener()

    def _abandon(self, state: SourceState, task: asyncio.Task[Snapshot],
                 grace: float | None = None) -> None:
        """Give up on a running poll: it is cancelled in the background while the scheduler goes on."""
        state.abandoned += 1
        task.add_done_callback(_retrieve)
        grace = CANCEL_GRACE if grace is None else grace
        reaper = asyncio.create_task(self._reap(state, task, grace), name=f"reap-{task.get_name()}")
        self._reapers.add(reaper)
        reaper.add_done_callback(self._reapers.discard)

    async def _reap(self, state: SourceState, task: asyncio.Task[Snapshot],
                    grace: float) -> None:
        """Cancel an abandoned poll; cancel it again while it lingers past ``grace`` (see CANCEL_GRACE)."""
        loop = asyncio.get_running_loop()
        try:
            task.cancel()
            if grace > 0:
                await asyncio.wait((task,), timeout=grace)
            deadline = loop.time() + CANCEL_GRACE
            while not task.done() and loop.time() < deadline:
                await asyncio.wait((task,), timeout=RECANCEL_EVERY)
                task.cancel()
            if not task.done():
                log.warning("%s %s: an abandoned poll is still running %g s after it was cancelled",
                            state.poller.source, state.poller.target, grace + CANCEL_GRACE)
                await asyncio.wait((task,))
        finally:
            state.abandoned -= 1
            self.bump()

    def _failed(self, state: SourceState, message: str) -> None:
        poller = state.poller
        state.errors += 1
        if state.up or state.polls == 0 or message != state.last_error:
            log.warning("%s %s poll failed: %s", poller.source, poller.target, message)
        else:
            log.debug("%s %s still failing: %s", poller.source, poller.target, message)
        state.up, state.last_error = False, message
        state.samples = poller.down_samples()
        state.history.record(time.time(), None)  # a gap: charts break here rather than draw a stale line

    async def _loop(self, state: SourceState) -> None:
        interval = state.poller.interval
        next_tick = self._clock()
        while True:
            await self.poll_once(state)
            next_tick += interval
            now = self._clock()
            if now > next_tick:
                missed = int((now - next_tick) // interval) + 1
                state.overruns += missed
                next_tick += missed * interval
                log.warning("%s %s poll overran its %g s interval; skipped %d tick(s)",
                            state.poller.source, state.poller.target, interval, missed)
            await asyncio.sleep(next_tick - now)

    # --- probes ----------------------------------------------------------
    def ready(self) -> bool:
        """Every source has been polled at least once, successfully or not."""
        return all(s.polls > 0 for s in self.states)

    def stalled(self) -> list[SourceState]:
        """Pollers whose loop has not started a poll when it should have (liveness)."""
        now = self._clock()
        out = []
        for s in self.states:
            grace = 2 * s.poller.interval + s.poller.timeout + 5
            last = s.last_started if s.last_started is not None else self.started_at
            if now - last > grace:
                out.append(s)
        return out


async def _within(aw: Awaitable[None], seconds: float) -> None:
    """``aw`` bounded by ``seconds`` (TimeoutError past them). asyncio.timeout, not wait_for: Python 3.11's
    wait_for can drop a cancellation of the caller that arrives just as ``aw`` ends (the old CI hang's cause)."""
    async with asyncio.timeout(seconds):
        await aw
