"""``dbpulse run`` as a real process with Redis and health targets: every catalogued Redis, health
and application-pool metric is exported (the Redis replication ones from a replica and its primary),
with the values the servers hold, and no secret leaks."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from aiohttp import web

from collectors.base.catalogue import catalogue
from harness.servers import LocalRedis, free_port
from tests.integration.health.conftest import build_app
from tests.support import DbpulseProcess

from .conftest import PASSWORD
from .plant import every_redis_metric

MINE = ("dbpulse_redis_", "dbpulse_health_", "dbpulse_app_pool_")


@pytest.fixture
def app_in_thread() -> Iterator[str]:
    """The seed-shaped application in its own thread: the test itself blocks while dbpulse starts."""
    loop = asyncio.new_event_loop()
    port = free_port()
    runner = web.AppRunner(build_app(), shutdown_timeout=0.1)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_run_exports_every_redis_and_health_metric(redis_pw: LocalRedis, app_in_thread: str,
                                                   tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_pw.url())
    client.flushall()
    client.mset({f"cache:item:{i}": "v" for i in range(20)})
    client.set("cache:ttl", "v", ex=3600)
    client.rpush("celery", "t1", "t2", "t3")
    catalogued = {name for name in catalogue() if name.startswith(MINE)}
    with every_redis_metric(redis_pw) as replica:
        config = tmp_path / "dbpulse.yaml"
        config.write_text(f"""
redis:
  targets:
    - name: cache
      url: redis://127.0.0.1:{redis_pw.port}/0
      password_env: TEST_REDIS_PASSWORD
    - name: replica
      url: redis://127.0.0.1:{replica.port}/0
      password_env: TEST_REDIS_PASSWORD
health:
  endpoint_timeout: 0.3
  endpoints: [/health, /health/live, /health/ready, /text, /huge, /hang]
""")
        args = ["--config", str(config), "--redis-queue", "celery", "--health-url", f"api={app_in_thread}",
                "--interval", "0.5", "--log-level", "debug"]
        with DbpulseProcess(*args, env={"TEST_REDIS_PASSWORD": PASSWORD}, log_dir=tmp_path) as proc:
            deadline = time.monotonic() + 20
            ratio = None
            exported: set[str] = set()
            while time.monotonic() < deadline and (ratio is None or not catalogued <= exported):
                for i in range(3):  # the application's traffic: 3 hits, 1 miss
                    client.get(f"cache:item:{i}")
                client.get("cache:absent")
                ratio = proc.value("dbpulse_redis_cache_hit_ratio", target="cache")
                exported = {name for name in proc.metrics() if name.startswith(MINE)}
            metrics = proc.metrics()
            log = proc.log
    exported = {name for name in metrics if name.startswith(MINE)}
    assert exported == catalogued, (catalogued - exported, exported - catalogued)

    def value(name: str, **labels: str) -> float | None:
        for key, v in metrics[name].items():
            if all(dict(key).get(k) == want for k, want in labels.items()):
                return v
        return None

    assert ratio == pytest.approx(0.75, abs=0.06)
    assert value("dbpulse_redis_up", target="cache") == 1
    assert value("dbpulse_redis_queue_length", target="cache", key="celery") == 3
    assert value("dbpulse_redis_prefix_without_ttl_ratio", target="cache", prefix="cache:item:*") == 1.0
    assert value("dbpulse_redis_prefix_keys", target="cache", prefix="cache:item:*") == 20
    assert value("dbpulse_health_up", target="api", endpoint="/health/ready") == 1
    assert value("dbpulse_health_reachable", target="api", endpoint="/hang") == 0
    assert value("dbpulse_app_pool_capacity", target="api", pool="pool") == 30
    assert value("dbpulse_source_up", source="health", target="api") == 1
    body = "\n".join(f"{n}{k}" for n, series in metrics.items() for k in series)
    assert PASSWORD not in body and PASSWORD not in log
