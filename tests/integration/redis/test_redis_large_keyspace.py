"""Sampling cost is bounded by its budget and key limit, not by the keyspace (200,000 keys).

Behaviour only: what a poll reads is counted in Redis commands (INFO
commandstats), which a loaded machine does not change; the time it takes is
measured in bench/redis_keys.py, side by side with redis_exporter.
"""

from __future__ import annotations

import itertools

import pytest
import redis.asyncio as aioredis

from collectors.base.samples import Sample
from collectors.redis.sampling import sample_keys
from collectors.redis.settings import RedisSettings
from harness.servers import LocalRedis
from tests.support import redis_poller

from .conftest import LARGE_KEYS

ROOMY_MS = 5000  # a budget no loaded machine runs out of: limits come from sample_max_keys
MAX_KEYS = 2000


async def sampling_calls(client: aioredis.Redis) -> int:
    """SCAN, PTTL and MEMORY USAGE calls Redis has served (INFO commandstats), its own accounting."""
    stats = await client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("scan", "pttl", "memory|usage"))


def metric(samples: list[Sample], name: str, *labels: str) -> float | None:
    return {(s.name, s.labels): s.value for s in samples}.get((name, ("r", *labels)))


async def poll_and_count(server: LocalRedis, polls: int = 3) -> tuple[list[list[Sample]], list[bool], list[int]]:
    """Samples of a few polls, whether each sample was a whole pass, and the SCAN/PTTL calls of each."""
    client = aioredis.Redis.from_url(server.url())
    p = redis_poller(server.url(), sample_budget_ms=ROOMY_MS, sample_max_keys=MAX_KEYS)
    samples, complete, calls = [], [], []
    try:
        for _ in range(polls):
            before = await sampling_calls(client)
            snap = await p.poll()
            calls.append(await sampling_calls(client) - before)
            samples.append(snap.samples())
            assert snap.keys is not None
            complete.append(snap.keys.complete)
    finally:
        await p.close()
        await client.aclose()
    return samples, complete, calls


async def test_sampling_cost_does_not_grow_with_the_keyspace(redis_large: LocalRedis) -> None:
    small = LocalRedis()
    small.start()
    try:
        client = aioredis.Redis.from_url(small.url())
        await client.mset({f"cache:user:{i}": "v" for i in range(MAX_KEYS)})
        await client.aclose()
        small_polls, small_complete, small_calls = await poll_and_count(small)
    finally:
        small.cleanup()
    large_polls, large_complete, large_calls = await poll_and_count(redis_large)

    # A keyspace that fits the limit is read whole and counted exactly.
    assert all(small_complete)
    assert metric(small_polls[-1], "dbpulse_redis_sampled_keys") == MAX_KEYS
    assert metric(small_polls[-1], "dbpulse_redis_prefix_keys", "cache:user:*") == MAX_KEYS

    # 100x the keys: the sample is cut at the limit, reported as partial, and costs Redis what the small one did.
    assert not any(large_complete)
    for samples in large_polls:
        assert metric(samples, "dbpulse_redis_sampled_keys") == MAX_KEYS
    assert max(large_calls) <= max(small_calls) + 10  # a few more SCAN calls that returned keys already seen

    # Estimates from the partial sample: share x dbsize, TTL discipline per prefix.
    last = large_polls[-1]
    total = sum(LARGE_KEYS.values())
    for prefix, count in LARGE_KEYS.items():
        assert metric(last, "dbpulse_redis_prefix_keys", prefix) == pytest.approx(count, rel=0.2), prefix
    assert metric(last, "dbpulse_redis_prefix_without_ttl_ratio", "session:*") == 1.0
    assert metric(last, "dbpulse_redis_prefix_without_ttl_ratio", "cache:user:*") == 0.0
    assert metric(last, "dbpulse_redis_prefix_without_ttl_ratio", "celery-task-meta-*") == 0.0
    assert metric(last, "dbpulse_redis_prefix_mean_ttl_seconds", "celery-task-meta-*") == pytest.approx(600, abs=60)
    assert metric(last, "dbpulse_redis_db_keys", "0") == total


async def test_a_sample_cut_by_the_time_budget_is_partial_and_resumes(redis_large: LocalRedis) -> None:
    """The budget is checked after every SCAN batch: with a clock that jumps past it, one batch is read."""
    client = aioredis.Redis.from_url(redis_large.url())
    ticks = itertools.count(0.0, 1.0)  # each look at the clock is one second later
    settings = RedisSettings(sample_budget_ms=50, scan_count=200)
    try:
        first = await sample_keys(client, settings, clock=lambda: next(ticks))
        assert 0 < first.sampled < 1000 and not first.complete and first.cursor != 0
        second = await sample_keys(client, settings, first.cursor, clock=lambda: next(ticks))
        assert second.cursor not in (0, first.cursor)  # the next poll continues where this one stopped
    finally:
        await client.aclose()


async def test_successive_polls_continue_the_scan(redis_large: LocalRedis) -> None:
    p = redis_poller(redis_large.url(), sample_max_keys=500)
    await p.poll()
    cursor_after_first = p._cursor
    await p.poll()
    assert cursor_after_first != 0 and p._cursor not in (0, cursor_after_first)
    await p.close()
