"""A PgBouncer that is stopped or frozen (SIGSTOP: the kernel still accepts connections, nothing answers)
reads as down within the poll timeout (+1 s, the scheduler's own record of the poll's start and end), and
the first poll after it is back is up again."""

from __future__ import annotations

import asyncio
import signal

from collectors.base.samples import Sample
from harness.pgbouncer import LocalPgBouncer
from harness.servers import LocalPostgres
from monitor.core.scheduler import Scheduler, SourceState
from tests.integration.pgbouncer.conftest import bouncer_poller

INTERVAL, TIMEOUT = 4.0, 2.0


def up(samples: list[Sample]) -> list[float]:
    return [s.value for s in samples if s.name == "dbpulse_pgbouncer_up"]


async def poll(scheduler: Scheduler) -> SourceState:
    [state] = scheduler.states
    await scheduler.poll_once(state)
    assert state.last_started is not None and state.last_ended is not None
    return state


def test_a_stopped_pgbouncer_is_down_at_the_timeout_and_recovers(pg_server: LocalPostgres) -> None:
    bouncer = LocalPgBouncer(pg_server)
    bouncer.start()
    try:
        scheduler = Scheduler([bouncer_poller(bouncer.dsn(), interval=INTERVAL, timeout=TIMEOUT)])

        async def run() -> None:
            state = await poll(scheduler)
            assert state.up and up(state.samples) == [1]
            bouncer.stop()
            for _ in range(2):  # the kept connection is broken, then a new one is refused
                state = await poll(scheduler)
                assert not state.up and up(state.samples) == [0]
                assert state.last_ended - state.last_started <= TIMEOUT + 1  # type: ignore[operator]
            assert "cannot connect to the PgBouncer admin console" in (state.last_error or "")
            bouncer.start()  # on the same port
            state = await poll(scheduler)
            assert state.up and up(state.samples) == [1]
            await scheduler.stop()

        asyncio.run(run())
    finally:
        bouncer.cleanup()


def test_a_frozen_pgbouncer_is_down_at_the_timeout_and_recovers(pg_server: LocalPostgres) -> None:
    with LocalPgBouncer(pg_server) as bouncer:
        scheduler = Scheduler([bouncer_poller(bouncer.dsn(), interval=INTERVAL, timeout=TIMEOUT)])

        async def run() -> None:
            assert (await poll(scheduler)).up
            bouncer.signal(signal.SIGSTOP)
            try:
                for _ in range(2):  # the kept connection hangs, then a new one does
                    state = await poll(scheduler)
                    assert not state.up and up(state.samples) == [0]
                    assert state.last_ended - state.last_started <= TIMEOUT + 1  # type: ignore[operator]
                    assert state.last_error == f"timed out after {TIMEOUT:g} s"
            finally:
                bouncer.signal(signal.SIGCONT)
            state = await poll(scheduler)
            assert state.up and up(state.samples) == [1], state.last_error
            await scheduler.stop()

        asyncio.run(run())
