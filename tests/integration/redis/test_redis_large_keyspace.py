"""Sampling cost is bounded by the budget, not by the keyspace (200,000 keys)."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis

from collectors.redis.poller import RedisOptions, RedisPoller
from collectors.redis.sampling import SamplingOptions
from monitor.localservers import LocalRedis
from monitor.samples import Sample

from .conftest import LARGE_KEYS

BUDGET = 0.05


async def redis_usec(client: aioredis.Redis) -> float:
    """Microseconds Redis spent in SCAN and PTTL (INFO commandstats), its own accounting."""
    stats = await client.info("commandstats")
    return sum(float(stats.get(f"cmdstat_{c}", {}).get("usec", 0)) for c in ("scan", "pttl"))


def metric(samples: list[Sample], name: str, *labels: str) -> float | None:
    return {(s.name, s.labels): s.value for s in samples}.get((name, ("r", *labels)))


async def measure(server: LocalRedis, polls: int = 3) -> tuple[list[list[Sample]], float, float]:
    """Samples of a few polls, the mean Redis time and the mean wall time of sampling per poll."""
    client = aioredis.Redis.from_url(server.url())
    p = RedisPoller("r", server.url(), 10.0, 5.0, RedisOptions(SamplingOptions(budget_seconds=BUDGET)))
    out, usec, wall = [], 0.0, 0.0
    for _ in range(polls):
        before = await redis_usec(client)
        started = time.perf_counter()
        out.append((await p.poll()).samples())
        wall += time.perf_counter() - started
        usec += await redis_usec(client) - before
    await p.close()
    return out, usec / polls / 1e6, wall / polls


async def test_sampling_cost_does_not_grow_with_the_keyspace(redis_large: LocalRedis) -> None:
    small = LocalRedis()
    small.start()
    try:
        client = aioredis.Redis.from_url(small.url())
        await client.mset({f"cache:user:{i}": "v" for i in range(2000)})
        await client.aclose()
        small_polls, small_redis, small_wall = await measure(small)
    finally:
        small.cleanup()
    large_polls, large_redis, large_wall = await measure(redis_large)
    total = sum(LARGE_KEYS.values())
    print(f"\nsampling cost per poll, budget {BUDGET * 1000:.0f} ms:"
          f"\n  2,000 keys (full pass): Redis {small_redis * 1000:.1f} ms, poll wall {small_wall * 1000:.1f} ms,"
          f" sampled {metric(small_polls[-1], 'dbpulse_redis_sampled_keys'):.0f}"
          f"\n  {total:,} keys: Redis {large_redis * 1000:.1f} ms, poll wall {large_wall * 1000:.1f} ms, "
          f"sampled {metric(large_polls[-1], 'dbpulse_redis_sampled_keys'):.0f}")
    assert metric(small_polls[-1], "dbpulse_redis_sampled_keys") == 2000
    for samples in large_polls:
        sampled = metric(samples, "dbpulse_redis_sampled_keys")
        duration = metric(samples, "dbpulse_redis_sampling_duration_seconds")
        assert sampled is not None and 500 <= sampled <= 10_000
        assert duration is not None and duration < BUDGET + 0.03  # overshoot: at most one batch
    assert large_redis < BUDGET  # Redis's own accounting of the time SCAN/PTTL took
    assert large_wall < 0.25  # the whole poll, INFO and PING included

    # Estimates from the sample: share x dbsize, TTL discipline per prefix.
    last = large_polls[-1]
    for prefix, count in LARGE_KEYS.items():
        estimate = metric(last, "dbpulse_redis_prefix_keys", prefix)
        assert estimate == pytest.approx(count, rel=0.2), prefix
    assert metric(last, "dbpulse_redis_prefix_without_ttl_ratio", "session:*") == 1.0
    assert metric(last, "dbpulse_redis_prefix_without_ttl_ratio", "cache:user:*") == 0.0
    assert metric(last, "dbpulse_redis_prefix_without_ttl_ratio", "celery-task-meta-*") == 0.0
    assert metric(last, "dbpulse_redis_prefix_mean_ttl_seconds", "celery-task-meta-*") == pytest.approx(600, abs=60)
    assert metric(last, "dbpulse_redis_db_keys", "0") == total


async def test_successive_polls_continue_the_scan(redis_large: LocalRedis) -> None:
    p = RedisPoller("r", redis_large.url(), 10.0, 5.0, RedisOptions(SamplingOptions(budget_seconds=0.01)))
    await p.poll()
    cursor_after_first = p._cursor
    await p.poll()
    assert cursor_after_first != 0 and p._cursor not in (0, cursor_after_first)
    await p.close()
