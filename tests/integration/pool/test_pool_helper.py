"""monitor.sqlalchemy_pool.pool_status against real SQLAlchemy engines on the test PostgreSQL."""

from __future__ import annotations

from contextlib import AsyncExitStack, ExitStack

from aiohttp import web
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from harness.servers import free_port
from monitor.sqlalchemy_pool import pool_status
from tests.support import health_poller


def sqlalchemy_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1)


def test_sync_engine_pool_counters(fresh_db: str) -> None:
    engine = create_engine(sqlalchemy_url(fresh_db), pool_size=3, max_overflow=2)
    assert pool_status(engine) == {"size": 3, "max_overflow": 2, "checked_out": 0, "checked_in": 0,
                                   "overflow": 0}
    with ExitStack() as stack:
        conns = [stack.enter_context(engine.connect()) for _ in range(4)]
        for conn in conns:
            assert conn.execute(text("SELECT 1")).scalar() == 1
        assert pool_status(engine) == {"size": 3, "max_overflow": 2, "checked_out": 4, "checked_in": 0,
                                       "overflow": 1}
        conns[0].close()
        conns[1].close()
        assert pool_status(engine) == {"size": 3, "max_overflow": 2, "checked_out": 2, "checked_in": 2,
                                       "overflow": 1}
    assert pool_status(engine)["checked_out"] == 0
    engine.dispose()


def test_pool_without_fixed_size(fresh_db: str) -> None:
    engine = create_engine(sqlalchemy_url(fresh_db), poolclass=NullPool)
    with engine.connect():
        status = pool_status(engine)
    assert status["size"] == 0 and status["overflow"] == 0
    engine.dispose()


async def test_async_engine_pool_block_is_exported_by_the_health_probe(fresh_db: str) -> None:
    """The seeds' pool_size=20, max_overflow=10, seen through /health/ready as dbpulse does."""
    engine = create_async_engine(sqlalchemy_url(fresh_db), pool_size=20, max_overflow=10)

    async def ready(request: web.Request) -> web.Response:
        result = {"status": "ready", "is_ready": True, "components": {"database": {"status": "healthy"}}}
        result["pool"] = pool_status(engine)  # the one line an application adds
        return web.json_response(result)

    app = web.Application()
    app.router.add_get("/health/ready", ready)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    probe = health_poller(f"http://127.0.0.1:{port}", [("/health/ready", 2.0)], name="api")
    try:
        async with AsyncExitStack() as stack:
            for _ in range(22):  # 20 from the pool, 2 overflow
                conn = await stack.enter_async_context(engine.connect())
                await conn.execute(text("SELECT 1"))
            samples = {(s.name, s.labels): s.value for s in (await probe.poll()).samples()}
        key = ("api", "pool")
        assert samples[("dbpulse_app_pool_size", key)] == 20
        assert samples[("dbpulse_app_pool_capacity", key)] == 30
        assert samples[("dbpulse_app_pool_checked_out", key)] == 22
        assert samples[("dbpulse_app_pool_overflow", key)] == 2
        assert samples[("dbpulse_app_pool_usage_ratio", key)] == 22 / 30
        after = {(s.name, s.labels): s.value for s in (await probe.poll()).samples()}
        assert after[("dbpulse_app_pool_checked_out", key)] == 0
        assert after[("dbpulse_app_pool_checked_in", key)] == 20
    finally:
        await probe.close()
        await runner.cleanup()
        await engine.dispose()
