"""Frozen servers: SIGSTOP on PostgreSQL (the postmaster and every backend), on Redis and on the application
behind the health endpoints. A process that is stopped still has its connections accepted by the kernel and
never answers: the hardest hang there is.

Each source (and the advisor's runs) reads as down within its poll timeout + 1 s, counted from the start of the
first poll that hangs (the scheduler's own record of each poll's start and end, on its clock); the exposition
says so; the next polls start on time; the abandoned polls leave no connections, tasks or threads behind however
many there are; and the first poll after the servers resume is up again (the advisor publishes the run it
could not finish as soon as it has).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import psutil
import psycopg
import pytest
import redis

from collectors.base.poller import Poller
from collectors.base.samples import Sample
from collectors.postgres.settings import PostgresSettings, PostgresTarget
from harness.servers import LocalPostgres, LocalRedis
from monitor.advisor import poller as advisor
from monitor.advisor.settings import AdvisorSettings
from monitor.core.scheduler import Scheduler, SourceState
from monitor.web.exposition import Exposition
from tests.support import health_poller, pg_poller, redis_poller, stand_in_process

# Generous, so that a loaded machine never makes a healthy poll time out.
INTERVAL, TIMEOUT = 4.0, 2.5
# Many abandoned polls in the same frozen spell, for the leak count.
FAST_INTERVAL, FAST_TIMEOUT = 0.5, 0.3
ENDPOINTS = ("/health", "/health/live", "/health/ready")


@dataclass(frozen=True)
class Outcome:
    key: tuple[str, str]
    started: float  # the scheduler's clock
    ended: float
    up: bool
    samples: list[Sample]

    @property
    def down(self) -> bool:
        """The source is down, or (health) every endpoint is."""
        if self.key[0] == "health":
            return all(s.value == 0 for s in self.samples if s.name == "dbpulse_health_up")
        return not self.up


class Recording(Scheduler):
    """The scheduler, keeping what each poll published with the start and end it recorded for it."""

    def __init__(self, pollers: list[Poller]) -> None:
        super().__init__(pollers)
        self.outcomes: list[Outcome] = []

    async def poll_once(self, state: SourceState) -> None:
        await super().poll_once(state)
        assert state.last_started is not None and state.last_ended is not None
        self.outcomes.append(Outcome(state.key, state.last_started, state.last_ended, state.up, list(state.samples)))


@contextlib.contextmanager
def frozen(*pids: int) -> Iterator[None]:
    """SIGSTOP each process, then its children (a stopped postmaster forks no new ones); SIGCONT them all
    whatever happens, so a failed test never leaves a frozen server behind."""
    stopped: list[int] = []
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
            for child in psutil.Process(pid).children(recursive=True):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGSTOP)
                    stopped.append(child.pid)
        yield
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@pytest.fixture
def own_pg() -> Iterator[LocalPostgres]:
    with LocalPostgres() as server:  # this test's own: it is frozen
        yield server


@pytest.fixture
def own_redis() -> Iterator[LocalRedis]:
    with LocalRedis() as server:
        yield server


@pytest.fixture
def app_process() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    proc, url = stand_in_process()
    yield proc, url
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGCONT)
    proc.kill()
    proc.wait()


Metrics = dict[str, list[tuple[dict[str, str], float]]]


async def scrape(exposition: Exposition) -> Metrics:
    from prometheus_client.parser import text_string_to_metric_families

    body, _ = await exposition.render("text/plain")
    out: Metrics = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def values(metrics: Metrics, name: str, **labels: str) -> list[float]:
    return [v for lab, v in metrics.get(name, []) if all(lab.get(k) == want for k, want in labels.items())]


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.1)


def all_down(m: Metrics) -> bool:
    return (values(m, "dbpulse_pg_up", target="pg") == [0] and values(m, "dbpulse_redis_up", target="cache") == [0]
            and values(m, "dbpulse_health_up", target="app") == [0, 0, 0])


def all_up(m: Metrics) -> bool:
    return (values(m, "dbpulse_pg_up", target="pg") == [1] and values(m, "dbpulse_redis_up", target="cache") == [1]
            and values(m, "dbpulse_health_up", target="app") == [1, 1, 1])


def sockets_to(ports: set[int]) -> dict[int, int]:
    """This process's open TCP sockets to each of ``ports``."""
    out = dict.fromkeys(ports, 0)
    for c in psutil.Process().net_connections("tcp"):
        if c.raddr and c.raddr.port in ports:
            out[c.raddr.port] += 1
    return out


def threads_but_advisor() -> int:
    return sum(1 for t in threading.enumerate() if not t.name.startswith("advisor-"))


def live_tasks(prefix: str) -> int:
    return sum(1 for t in asyncio.all_tasks() if t.get_name().startswith(prefix) and not t.done())


def dbpulse_sessions(server: LocalPostgres) -> int:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbpulse'").fetchone()
        assert row is not None
        return int(row[0])


def dbpulse_clients(server: LocalRedis) -> int:
    client = redis.Redis.from_url(server.url())
    try:
        return sum(1 for c in client.client_list() if c.get("name") == "dbpulse")
    finally:
        client.close()


async def test_frozen_servers_are_down_at_the_timeout_leak_nothing_and_recover(
        own_pg: LocalPostgres, own_redis: LocalRedis, app_process: tuple[subprocess.Popen[bytes], str],
        caplog: pytest.LogCaptureFixture) -> None:
    app_proc, app_url = app_process
    caplog.set_level(logging.WARNING)
    loop = asyncio.get_running_loop()
    scheduler = Recording([
        pg_poller(own_pg.dsn(), name="pg", interval=INTERVAL, timeout=TIMEOUT),
        redis_poller(own_redis.url(), name="cache", interval=INTERVAL, timeout=TIMEOUT, queues=["celery"]),
        health_poller(app_url, name="app", interval=INTERVAL, timeout=TIMEOUT),
        *advisor.pollers(AdvisorSettings(interval=INTERVAL, timeout=TIMEOUT),
                         {"postgres": PostgresSettings(targets=[PostgresTarget(name="pg", dsn=own_pg.dsn())])}),
    ])
    fast = Scheduler([
        pg_poller(own_pg.dsn(), name="pg-fast", interval=FAST_INTERVAL, timeout=FAST_TIMEOUT),
        redis_poller(own_redis.url(), name="cache-fast", interval=FAST_INTERVAL, timeout=FAST_TIMEOUT),
        health_poller(app_url, name="app-fast", interval=FAST_INTERVAL, timeout=FAST_TIMEOUT),
    ])
    exposition = Exposition(scheduler)
    app_port = int(app_url.rsplit(":", 1)[1])
    ports = {own_pg.port, own_redis.port, app_port}
    postmaster = int((own_pg.datadir / "postmaster.pid").read_text().split()[0])
    assert own_redis.proc is not None
    scheduler.start()
    try:
        await until(lambda: _check(exposition, all_up), "every source up")
        threads_before, fds_before = threads_but_advisor(), psutil.Process().num_fds()
        peak_sockets: dict[int, int] = dict.fromkeys(ports, 0)
        peak_tasks = peak_threads = peak_advisor_threads = peak_abandoned = 0
        with frozen(postmaster, own_redis.proc.pid, app_proc.pid):
            frozen_at = loop.time()
            fast.start()
            await until(lambda: _check(exposition, all_down), "every source down")
            await until(lambda: _sync(any(o.key == ("advisor", "pg") and o.ended >= frozen_at and o.down
                                          for o in scheduler.outcomes)), "the advisor down")

            # Down within the timeout + 1 s of the start of the first poll that hung, by the scheduler's record.
            for key in (("postgres", "pg"), ("redis", "cache"), ("health", "app"), ("advisor", "pg")):
                since = [o for o in scheduler.outcomes if o.key == key and o.ended >= frozen_at]
                first = next(o for o in since if o.down)
                assert first.ended - first.started <= TIMEOUT + 1, (key, first.started, first.ended)
                assert all(o.down for o in since[since.index(first):]), key

            # Many abandoned polls: nothing piles up while they are cancelled in the background.
            while min(s.polls for s in fast.states) < 20:
                sockets = sockets_to(ports)
                peak_sockets = {p: max(peak_sockets[p], sockets[p]) for p in ports}
                peak_tasks = max(peak_tasks, live_tasks("poll-once-") + live_tasks("reap-"))
                peak_abandoned = max(peak_abandoned, *(s.abandoned for s in scheduler.states + fast.states))
                peak_threads = max(peak_threads, threads_but_advisor())
                peak_advisor_threads = max(peak_advisor_threads, threading.active_count() - threads_but_advisor())
                await asyncio.sleep(0.2)
            assert all(s.errors == s.polls for s in fast.states[:2])  # every PostgreSQL and Redis poll timed out
            await fast.stop()
            fds_frozen = psutil.Process().num_fds()
        thawed_at = loop.time()

        # After 20 abandoned polls of each source (a leak would leave 20 of each thing), two schedulers of
        # 4 and 3 pollers hold one running poll each and a few being cancelled; a health poll probes its three
        # endpoints at once.
        assert peak_abandoned <= 2, peak_abandoned
        assert peak_tasks <= 7 + 2 * 7, peak_tasks  # the running polls; a reaper per abandoned poll still going
        # PostgreSQL: each of the two pollers also has its wait sampler's session (collectors/postgres/waits.py)
        assert peak_sockets[own_pg.port] <= 4 + 2 and peak_sockets[own_redis.port] <= 4, peak_sockets
        assert peak_sockets[app_port] <= 2 * len(ENDPOINTS) + 2, peak_sockets
        assert peak_threads <= threads_before + 1, (threads_before, peak_threads)
        assert peak_advisor_threads <= 1  # the run that hung: no new run starts while it goes on
        assert fds_frozen <= fds_before + 6, (fds_before, fds_frozen)
        assert all(s.abandoned == 0 for s in fast.states)

        # The first poll of each source that starts after the servers resume is up.
        async def polled_since_thaw() -> bool:
            return all(any(o.key == s.key and o.started >= thawed_at for o in scheduler.outcomes)
                       for s in scheduler.states)

        await until(polled_since_thaw, "a poll of every source after the thaw")
        for state in scheduler.states[:3]:
            after = next(o for o in scheduler.outcomes if o.key == state.key and o.started >= thawed_at)
            assert after.up and not after.down, (state.key, state.last_error)
        m = await scrape(exposition)
        assert all_up(m)
        await until(lambda: _sync(scheduler.states[3].up), "the advisor up")  # its late run, or the next
        assert all(v == 0 for v in values(m, "dbpulse_source_abandoned_polls"))

        # The server side: only the live poller's session and client are left.
        await until(lambda: _sync(dbpulse_sessions(own_pg) == 1), "one dbpulse session in PostgreSQL")
        await until(lambda: _sync(dbpulse_clients(own_redis) == 1), "one dbpulse client in Redis")
    finally:
        await fast.stop()
        await scheduler.stop()

    messages = [r.getMessage() for r in caplog.records]
    assert "postgres pg poll failed: timed out after 2.5 s" in messages
    assert not [m for m in messages if "cancellation" in m], messages  # psycopg's own noise is not repeated


async def _check(exposition: Exposition, predicate: Callable[[Metrics], bool]) -> bool:
    return predicate(await scrape(exposition))


async def _sync(value: bool) -> bool:
    return value


async def test_a_poll_abandoned_on_a_slow_server_keeps_its_session(own_pg: LocalPostgres,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the session's backend stops for a while (the server is slow, not gone): the poll is abandoned at
    its timeout, psycopg's cancel request reaches the server, the backend cancels the query when it resumes,
    and the idle session is kept: the next poll uses it (the same backend) instead of reconnecting."""
    from monitor.core import scheduler as scheduling

    monkeypatch.setattr(scheduling, "CANCEL_GRACE", 10.0)  # ample time for this test to resume the backend
    scheduler = Recording([pg_poller(own_pg.dsn(), name="pg", interval=2.0, timeout=0.5)])
    state = scheduler.states[0]
    scheduler.start()
    try:
        await until(lambda: _sync(state.up), "the first poll")
        (backend,) = dbpulse_backends(own_pg)
        with frozen(backend):
            await until(lambda: _sync(state.abandoned == 1), "the poll abandoned at its timeout")
            assert not state.up and state.last_error == "timed out after 0.5 s"
        await until(lambda: _sync(state.abandoned == 0), "the abandoned poll stopped")
        polls = state.polls
        await until(lambda: _sync(state.polls > polls), "the next poll")
        assert state.up
        assert dbpulse_backends(own_pg) == [backend]  # the same session: no reconnection
    finally:
        await scheduler.stop()


def dbpulse_backends(server: LocalPostgres) -> list[int]:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'dbpulse'").fetchall()
        return [int(r[0]) for r in rows]
