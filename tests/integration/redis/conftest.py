"""Redis servers for the collector tests: one with a password, one holding a large keyspace, and any
version (``start_redis``) for the tests that run on several."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from collectors.redis.poller import quiet_handshake
from harness.servers import REDIS_SERVERS, LocalRedis

PASSWORD = "redis-s3cret-pw"
LARGE_KEYS = {"cache:user:*": 100_000, "session:*": 60_000, "celery-task-meta-*": 40_000}

# Server-side loops: 200,000 keys in well under a second, no client round-trips.
LOAD_LARGE = """
for i = 1, 100000 do redis.call('SET', 'cache:user:' .. i, 'v', 'EX', 3600) end
for i = 1, 60000 do redis.call('SET', 'session:' .. string.format('%x', 1000000000 + i), 'v') end
for i = 1, 40000 do
  redis.call('SET', 'celery-task-meta-' .. string.format('%08x-aaaa-bbbb-cccc-%012x', i, i), 'v', 'EX', 600)
end
"""


@pytest.fixture(scope="session")
def redis_pw() -> Iterator[LocalRedis]:
    server = LocalRedis(password=PASSWORD)
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
async def fresh_redis(redis_pw: LocalRedis) -> AsyncIterator[aioredis.Redis]:
    """An emptied db 0 with reset statistics, on the password-protected server."""
    client = aioredis.Redis.from_url(redis_pw.url())
    await client.flushall()
    await client.config_resetstat()
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def redis_large() -> Iterator[LocalRedis]:
    server = LocalRedis()
    server.start()
    import redis

    client = redis.Redis.from_url(server.url())
    client.eval(LOAD_LARGE, 0)
    assert client.dbsize() == sum(LARGE_KEYS.values())
    client.close()
    yield server
    server.cleanup()


# --- several versions -----------------------------------------------------------------------------
def _matrix() -> tuple[str, ...]:
    """The servers the deeper tests run on: the oldest Redis (6.0: no errorstats, no latencystats, no
    rejected/failed calls), Debian's Redis 7 and the newest Valkey. ``DBPULSE_REDIS_MATRIX="redis-6.2
    redis-8.2"`` (or ``all``) runs them on others; every version runs tests/integration/redis/test_redis_versions.py."""
    names = os.environ.get("DBPULSE_REDIS_MATRIX", "").split()
    if names == ["all"]:
        return REDIS_SERVERS
    return tuple(names) or ("redis-6.0", "redis-7.0", "valkey-9.1")


MATRIX = _matrix()

def quiet_client(server: LocalRedis, **kwargs: Any) -> aioredis.Redis:
    """An application client whose handshake leaves no error reply on any version (see the poller)."""
    return aioredis.Redis.from_url(server.url(), **quiet_handshake(), **kwargs)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 20, what: str = "") -> None:
    """Poll ``check`` until it holds; a generous deadline for a loaded machine."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.1)


@pytest.fixture
def start_redis() -> Iterator[Callable[..., LocalRedis]]:
    """Start LocalRedis servers for one test (a replica's primary first); all cleaned up after it."""
    started: list[LocalRedis] = []

    def start(server: str | None = None, **kwargs: Any) -> LocalRedis:
        instance = LocalRedis(server=server, **kwargs)
        started.append(instance)
        instance.start()
        return instance

    yield start
    for instance in reversed(started):
        if instance.proc is not None and instance.proc.poll() is None:
            instance.proc.send_signal(signal.SIGCONT)  # a test may have left it stopped
        instance.cleanup()


# --- queues -----------------------------------------------------------------------------------------
# A queue key of each type dbpulse reads a length of, one of a type it does not, and one that does not exist.
QUEUE_LENGTHS: dict[str, float | None] = {"celery": 7, "events": 3, "sidekiq:queues": 2, "schedule": 4,
                                          "unacked": 5, "not-a-queue": None, "gone": 0}
QUEUE_KINDS = {"celery": "list", "events": "stream", "sidekiq:queues": "set", "schedule": "zset", "unacked": "hash",
               "not-a-queue": "string", "gone": "none"}


async def plant_queues(client: aioredis.Redis) -> None:
    await client.rpush("celery", *[f"task{i}" for i in range(7)])
    for i in range(3):
        await client.xadd("events", {"n": i})
    await client.sadd("sidekiq:queues", "default", "mailers")
    await client.zadd("schedule", {f"job{i}": i for i in range(4)})
    await client.hset("unacked", mapping={f"tag{i}": "x" for i in range(5)})
    await client.set("not-a-queue", "v")


async def error_counts(client: aioredis.Redis) -> dict[str, object]:
    """Every error reply the server has counted (6.2+): errorstats, and each command's rejected and failed calls."""
    commands = await client.info("commandstats")
    return {"errorstats": await client.info("errorstats"),
            "failed": {name: (stat.get("rejected_calls"), stat.get("failed_calls")) for name, stat in commands.items()
                       if stat.get("rejected_calls") or stat.get("failed_calls")}}
