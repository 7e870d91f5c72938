"""The pool chain's configuration checks (``dbpulse_pgbouncer_chain_imbalance``) against real parts: an application's
SQLAlchemy pool with its health endpoint, a real PgBouncer (Debian's 1.18) and a real PostgreSQL, each watched by its
own target and joined by the scheduler. A configuration whose capacities cannot fit warns, with its numbers and the
setting to change, logged once; a balanced one gives the same checks, each 0, and no warning."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import QueuePool

from collectors.base.samples import Sample
from collectors.pgbouncer.chain import pool_chain
from collectors.pgbouncer.poller import PgBouncerPoller
from collectors.pgbouncer.settings import PgBouncerSettings, PgBouncerTarget
from collectors.pgbouncer.snapshot import PgBouncerSnapshot
from harness.pgbouncer import LocalPgBouncer
from harness.servers import LocalPostgres
from monitor.core.joined import links_of
from monitor.core.scheduler import Scheduler
from tests.integration.pgbouncer.test_pgbouncer_chain_ratios import app_serving, postgres_with_shop
from tests.support import health_poller, pg_poller, serve_in_thread

APP_POOL_SIZE, APP_MAX_OVERFLOW = 3, 2  # the application's capacity: 5
MAX_CONNECTIONS = 10


@pytest.fixture(scope="module")
def small_pg() -> Iterator[LocalPostgres]:
    with postgres_with_shop(MAX_CONNECTIONS) as pg:
        yield pg


def reserved_of(pg: LocalPostgres) -> int:
    """What the server keeps from ordinary roles, read here independently of dbpulse."""
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('superuser_reserved_connections')::int"
                           " + coalesce(current_setting('reserved_connections', true), '0')::int").fetchone()
    assert row is not None
    return int(row[0])


async def polls(scheduler: Scheduler, rounds: int) -> None:
    """Each target polled in order (PostgreSQL and the application first, so PgBouncer's poll joins them)."""
    for _ in range(rounds):
        for state in scheduler.states:
            await scheduler.poll_once(state)
    await scheduler.stop()


def run_chain(pg: LocalPostgres, pool_mode: str, pool_size: int, reserve_pool: int,
              max_client_conn: int, rounds: int = 2) -> Scheduler:
    settings = {"max_client_conn": str(max_client_conn), "reserve_pool_size": str(reserve_pool)}
    with LocalPgBouncer(pg, pool_mode=pool_mode, pool_size=pool_size, settings=settings) as bouncer:
        engine = create_engine(bouncer.dsn("shop", "app").replace("postgresql://", "postgresql+psycopg://"),
                               poolclass=QueuePool, pool_size=APP_POOL_SIZE, max_overflow=APP_MAX_OVERFLOW)
        try:
            with engine.connect() as conn:  # one request: PgBouncer's "*" entry makes the database shop
                conn.execute(text("SELECT 1"))
            for url in serve_in_thread(app_serving(engine)):
                scheduler = Scheduler([
                    pg_poller(pg.dsn("shop"), name="primary"),
                    health_poller(url, endpoints=[("/health", 2.0)], name="api"),
                    PgBouncerPoller(PgBouncerTarget(name="edge", dsn=bouncer.dsn(), applications={"api": "shop"}),
                                    PgBouncerSettings(interval=5, timeout=4)),
                ])
                asyncio.run(polls(scheduler, rounds))
                assert all(s.up for s in scheduler.states), [s.last_error for s in scheduler.states]
        finally:
            engine.dispose()
    return scheduler


def checks(samples: list[Sample]) -> dict[tuple[str, str], float]:
    return {(s.labels[1], s.labels[2]): s.value for s in samples if s.name == "dbpulse_pgbouncer_chain_imbalance"}


def capacities(samples: list[Sample]) -> dict[str, float]:
    return {s.labels[2]: s.value for s in samples
            if s.name == "dbpulse_pgbouncer_chain_capacity" and s.labels[1] == "shop"}


def warnings_of(scheduler: Scheduler) -> dict[str, str]:
    """The warnings the pool-chain block shows, by check."""
    snap = scheduler.states[2].snapshot
    assert isinstance(snap, PgBouncerSnapshot)
    return {w.check: w.text for w in pool_chain(snap, links_of(scheduler.states)).warnings}


def test_an_imbalanced_chain_warns_with_its_numbers(small_pg: LocalPostgres,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    available = MAX_CONNECTIONS - reserved_of(small_pg)
    pool_size, reserve = 4, available  # (4 + available) server connections: more than the server leaves
    with caplog.at_level(logging.WARNING, logger="dbpulse.pgbouncer"):
        scheduler = run_chain(small_pg, "session", pool_size, reserve, max_client_conn=4)
    samples = scheduler.states[2].samples
    assert checks(samples) == {("app_pools_over_max_client_conn", ""): 1,
                               ("pgbouncer_pools_over_max_connections", "primary"): 1,
                               ("session_app_pools_over_pool_size", "shop"): 1}
    assert capacities(samples) == {"app_pool": 5, "pgbouncer_clients": 4, "pgbouncer_pool": pool_size + reserve,
                                   "server": available}
    warned = warnings_of(scheduler)
    clients, server, session = (warned[check] for check in ("app_pools_over_max_client_conn",
                                                            "pgbouncer_pools_over_max_connections",
                                                            "session_app_pools_over_pool_size"))
    assert "can open 5 client connections (pool_size + max_overflow of api pool: 5), above max_client_conn 4" in clients
    assert "Raise max_client_conn in pgbouncer.ini to at least 5" in clients
    assert (f"can open {pool_size + reserve} server connections to PostgreSQL primary (shop: (pool_size {pool_size}"
            f" + reserve_pool {reserve}) x 1 pool(s)), above the {available} that its max_connections "
            f"{MAX_CONNECTIONS} less {MAX_CONNECTIONS - available} reserved") in server
    assert "database shop in session mode" in session and (
        f"above the {pool_size} servers its pools hold (pool_size {pool_size} x 1 pool(s))") in session
    assert "Raise pool_size of shop in pgbouncer.ini to at least 5" in session
    # two polls, the same configuration: each warning logged once, not at every poll
    logged = [r.getMessage() for r in caplog.records if r.name == "dbpulse.pgbouncer"]
    assert sorted(logged) == sorted(f"pool chain configuration: {w}" for w in warned.values())


def test_a_balanced_chain_gives_no_warning(small_pg: LocalPostgres, caplog: pytest.LogCaptureFixture) -> None:
    available = MAX_CONNECTIONS - reserved_of(small_pg)
    pool_size = APP_POOL_SIZE + APP_MAX_OVERFLOW  # every application connection has its server
    assert pool_size <= available
    with caplog.at_level(logging.WARNING, logger="dbpulse.pgbouncer"):
        scheduler = run_chain(small_pg, "session", pool_size, 0, max_client_conn=50)
    samples = scheduler.states[2].samples
    # the same three checks are computed, and each fits
    assert checks(samples) == {("app_pools_over_max_client_conn", ""): 0,
                               ("pgbouncer_pools_over_max_connections", "primary"): 0,
                               ("session_app_pools_over_pool_size", "shop"): 0}
    assert capacities(samples) == {"app_pool": 5, "pgbouncer_clients": 50, "pgbouncer_pool": pool_size,
                                   "server": available}
    assert warnings_of(scheduler) == {}
    assert not [r for r in caplog.records if r.name == "dbpulse.pgbouncer"]
