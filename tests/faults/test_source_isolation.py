"""Redis killed and restarted, a health endpoint that hangs and one that is slow:
every other source keeps its cadence and the service keeps answering."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from harness.servers import LocalRedis
from tests.support import DbpulseProcess, serve_in_thread


@pytest.fixture
def bad_app() -> Iterator[str]:
    """/hang never answers; /slow answers after 0.7 s; /health answers at once."""

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        return web.Response()

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.7)
        return web.json_response({"status": "ok"})

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"status": "healthy"})

    app = web.Application()
    app.router.add_get("/hang", hang)
    app.router.add_get("/slow", slow)
    app.router.add_get("/health", ok)
    yield from serve_in_thread(app)


def polls(svc: DbpulseProcess) -> dict[tuple[str, str], float]:
    series = svc.metrics().get("dbpulse_source_polls_total", {})
    return {(dict(k)["source"], dict(k)["target"]): v for k, v in series.items()}


def test_failing_sources_never_slow_the_others(fresh_db: str, bad_app: str, tmp_path: Path) -> None:
    cache = LocalRedis()
    cache.start()
    config = tmp_path / "dbpulse.yaml"
    config.write_text(f"""
health:
  endpoint_timeout: 0.5
  targets:
    - name: hanging
      url: {bad_app}
      endpoints: [/hang]
    - name: slow
      url: {bad_app}
      endpoints: [/slow]
    - name: fine
      url: {bad_app}
      endpoints: [/health]
""")
    try:
        with DbpulseProcess("--config", str(config), "--postgres", f"db={fresh_db}",
                            "--redis", f"cache={cache.url()}", "--interval", "1", "--advice-interval", "0") as svc:
            svc.wait_for("dbpulse_source_up", 1, source="redis", target="cache")
            cache.stop()
            start = polls(svc)
            time.sleep(4.2)
            end = polls(svc)
            for key in (("postgres", "db"), ("health", "fine"), ("health", "hanging"), ("health", "slow"),
                        ("redis", "cache")):
                # A fixed cadence: never more polls than ticks (at most 5 in 4.2 s, +1 at the window's edge),
                # and the failing sources hold up none of the others.
                assert 2 <= end[key] - start[key] <= 6, (key, start, end)
            assert svc.value("dbpulse_source_up", source="redis", target="cache") == 0
            assert svc.value("dbpulse_redis_up", target="cache") == 0
            assert svc.value("dbpulse_source_up", source="postgres", target="db") == 1
            assert svc.value("dbpulse_health_up", target="fine", endpoint="/health") == 1
            assert svc.value("dbpulse_health_up", target="hanging", endpoint="/hang") == 0
            assert svc.value("dbpulse_health_reachable", target="hanging", endpoint="/hang") == 0
            assert svc.value("dbpulse_health_up", target="slow", endpoint="/slow") == 0  # cut at 0.5 s
            cache.start()  # the same port: the Redis comes back
            svc.wait_for("dbpulse_source_up", 1, timeout=20, source="redis", target="cache")
            assert svc.value("dbpulse_redis_up", target="cache") == 1
    finally:
        cache.cleanup()
