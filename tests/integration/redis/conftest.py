"""Redis servers for the collector tests: one with a password, one holding a large keyspace."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from harness.servers import LocalRedis

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
