"""The pool chain's ratios (``dbpulse_pgbouncer_chain_saturation_ratio``) against real parts: an application's
SQLAlchemy pool connecting through a real PgBouncer (Debian's 1.18) to a real PostgreSQL, each watched by its own
target, and the scheduler joining their latest polls into PgBouncer's samples. Every link's value is checked
against what the test itself holds open."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from aiohttp import web
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

from collectors.base.samples import Sample
from collectors.pgbouncer.poller import PgBouncerPoller
from collectors.pgbouncer.settings import PgBouncerSettings, PgBouncerTarget
from harness.pgbouncer import LocalPgBouncer
from harness.servers import LocalPostgres
from monitor.core.scheduler import Scheduler
from monitor.sqlalchemy_pool import pool_status
from tests.integration.pgbouncer.test_pgbouncer_collector import holding
from tests.support import health_poller, pg_poller, serve_in_thread

APP_POOL_SIZE, APP_MAX_OVERFLOW = 3, 2  # the application's capacity: 5
PGBOUNCER_POOL_SIZE, MAX_CLIENT_CONN = 4, 50
MAX_CONNECTIONS = 30


@contextmanager
def postgres_with_shop(max_connections: int) -> Iterator[LocalPostgres]:
    """A PostgreSQL of its own with a ``shop`` database, so that max_connections is known and no other test's
    connections count."""
    with LocalPostgres(settings={"max_connections": str(max_connections)}) as pg:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE shop")
        yield pg


@pytest.fixture(scope="module")
def small_pg() -> Iterator[LocalPostgres]:
    with postgres_with_shop(MAX_CONNECTIONS) as pg:
        yield pg


def app_serving(engine: Engine) -> web.Application:
    """The application's health endpoint with its pool block (monitor/sqlalchemy_pool.py, as the docs say)."""
    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "healthy", "pool": pool_status(engine)})

    app = web.Application()
    app.router.add_get("/health", health)
    return app


async def in_order(scheduler: Scheduler) -> None:
    """One poll of each target in order: PostgreSQL and the application first, so PgBouncer's joins them."""
    for state in scheduler.states:
        await scheduler.poll_once(state)
    await scheduler.stop()


def ratios(samples: list[Sample], database: str) -> dict[str, float]:
    return {s.labels[3]: s.value for s in samples
            if s.name == "dbpulse_pgbouncer_chain_saturation_ratio" and s.labels[1] == database}


def server_connections(samples: list[Sample]) -> float:
    return sum(s.value for s in samples if s.name == "dbpulse_pg_connections")


@pytest.mark.parametrize("pool_mode", ["transaction", "session"])
def test_each_link_of_the_chain_has_its_ratio(small_pg: LocalPostgres, pool_mode: str) -> None:
    settings = {"max_client_conn": str(MAX_CLIENT_CONN)}
    with LocalPgBouncer(small_pg, pool_mode=pool_mode, pool_size=PGBOUNCER_POOL_SIZE, settings=settings) as bouncer:
        engine = create_engine(bouncer.dsn("shop", "app").replace("postgresql://", "postgresql+psycopg://"),
                               poolclass=QueuePool, pool_size=APP_POOL_SIZE, max_overflow=APP_MAX_OVERFLOW,
                               connect_args={"application_name": "api"})
        checked_out: list[Connection] = []
        try:
            for _ in range(3):  # three requests each inside a transaction: three servers of PgBouncer's pool
                conn = engine.connect()
                conn.execute(text("SELECT 1"))
                checked_out.append(conn)
            with holding(bouncer, "shop", 1, app="reports"):  # and one client besides the application
                for url in serve_in_thread(app_serving(engine)):
                    scheduler = Scheduler([
                        pg_poller(small_pg.dsn("shop"), name="primary"),
                        health_poller(url, endpoints=[("/health", 2.0)], name="api"),
                        PgBouncerPoller(PgBouncerTarget(name="edge", dsn=bouncer.dsn(), applications={"api": "shop"}),
                                        PgBouncerSettings(interval=5, timeout=4)),
                    ])

                    asyncio.run(in_order(scheduler))
                    pg_state, app_state, bouncer_state = scheduler.states
                    assert pg_state.up and app_state.up and bouncer_state.up, [s.last_error for s in scheduler.states]
        finally:
            for conn in checked_out:
                conn.close()
            engine.dispose()
    got = ratios(bouncer_state.samples, "shop")
    connections = server_connections(pg_state.samples)
    assert connections >= PGBOUNCER_POOL_SIZE + 1  # PgBouncer's four servers and the PostgreSQL target's own
    assert got == pytest.approx({
        "app_pool": 3 / (APP_POOL_SIZE + APP_MAX_OVERFLOW),  # 0.6: three checked out of five
        "pgbouncer_clients": 4 / MAX_CLIENT_CONN,  # the application's three and reports' one; dbpulse's own not
        "pgbouncer_pool": PGBOUNCER_POOL_SIZE / PGBOUNCER_POOL_SIZE,  # every server active: at its limit
        "server": connections / MAX_CONNECTIONS,
    })
