"""Memory by key prefix on real servers: two prefixes of very different value sizes, each estimated from a
partial sample within 20% of the true MEMORY USAGE total; keys that expired but linger are not counted;
none of it counts as an application hit. And a user without the optional permissions: each feature
disabled with one log line, the rest of the poll intact, the server's errorstats not filled poll after poll."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from collectors.base.samples import Sample
from harness.servers import LocalRedis
from tests.support import redis_poller

from .conftest import MATRIX, QUEUE_LENGTHS, plant_queues, quiet_client

SMALL, BIG = 16_000, 4_000
LOAD = """
for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'small:' .. i, 'xxxxxxxxxx') end
local big = string.rep('x', 2000)
for i = 1, tonumber(ARGV[2]) do redis.call('SET', 'big:' .. i, big, 'EX', 3600) end
"""


def metric(samples: list[Sample], name: str, *labels: str) -> float | None:
    return {(s.name, s.labels): s.value for s in samples}.get((name, ("r", *labels)))


async def true_memory(client: aioredis.Redis, prefix: str, count: int) -> float:
    """The sum of MEMORY USAGE ... SAMPLES 0 over every key of the prefix: what the estimate must approach."""
    pipe = client.pipeline(transaction=False)
    for i in range(1, count + 1):
        pipe.memory_usage(f"{prefix}:{i}", samples=0)
    return float(sum(await pipe.execute()))


@pytest.mark.parametrize("server", MATRIX)
async def test_memory_per_prefix_from_a_partial_sample_is_within_20_percent(
        server: str, start_redis: Callable[..., LocalRedis]) -> None:
    s = start_redis(server)
    app = quiet_client(s)
    await app.eval(LOAD, 0, SMALL, BIG)
    truth = {"small:*": await true_memory(app, "small", SMALL), "big:*": await true_memory(app, "big", BIG)}
    assert truth["big:*"] > 10 * truth["small:*"] / (SMALL / BIG)  # per key, far apart
    await app.config_resetstat()
    p = redis_poller(s.url(), sample_max_keys=5_000, sample_budget_ms=5_000, largest_keys=2)
    try:
        snap = await p.poll()
    finally:
        await p.close()
    assert snap.keys is not None and not snap.keys.complete and snap.keys.sampled == 5_000  # a quarter
    samples = snap.samples()
    for prefix, total in truth.items():
        estimate = metric(samples, "dbpulse_redis_prefix_memory_bytes", prefix)
        assert estimate == pytest.approx(total, rel=0.2), prefix
    largest = snap.prefixes["big:*"].largest
    assert len(largest) == 2 and all(key.startswith("big:") and size > 2000 for key, size in largest)
    # The PTTLs were subtracted, and MEMORY USAGE is no lookup: the application made none.
    stats = await app.info("stats")
    assert stats["keyspace_hits"] == 5_000 and stats["keyspace_misses"] == 0
    assert metric(samples, "dbpulse_redis_keyspace_hits_total") == 0
    assert metric(samples, "dbpulse_redis_own_lookups_total") == 5_000
    await app.aclose()


@pytest.mark.parametrize("server", MATRIX)
async def test_keys_expired_but_not_yet_evicted_are_not_counted(server: str,
                                                               start_redis: Callable[..., LocalRedis]) -> None:
    """MEMORY USAGE does not check expiry: it sizes a key that no longer logically exists. Only keys whose
    PTTL (sent just before) says they exist are counted."""
    s = start_redis(server, debug=True)
    app = quiet_client(s)
    await app.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")  # expired keys stay until looked up
    await app.mset({f"live:{i}": "v" for i in range(50)})
    pipe = app.pipeline(transaction=False)
    for i in range(100):
        pipe.set(f"gone:{i}", "x" * 500, px=1)
    await pipe.execute()
    await asyncio.sleep(0.05)
    assert await app.dbsize() == 150  # still there, expired
    p = redis_poller(s.url(), sample_budget_ms=5_000)  # read whole, whatever the machine's load
    try:
        snap = await p.poll()
    finally:
        await p.close()
    assert snap.keys is not None and snap.keys.complete and snap.keys.sampled == 50
    assert set(snap.prefixes) == {"live:*"}
    samples = snap.samples()
    assert metric(samples, "dbpulse_redis_prefix_keys", "live:*") == 50
    assert metric(samples, "dbpulse_redis_keyspace_misses_total") == 0  # the PTTL misses were ours
    await app.aclose()


# What docs/redis.md lists as required: no EVAL (queue lengths then take two round trips), MEMORY, SLOWLOG,
# LATENCY nor CONFIG.
ACL_BASIC = "+ping +info +scan +pttl +type +llen +xlen +scard +zcard +hlen +client|setname"


@pytest.mark.parametrize("server", MATRIX)
async def test_a_user_without_the_optional_permissions(server: str, start_redis: Callable[..., LocalRedis],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    s = start_redis(server)
    admin = quiet_client(s)
    await admin.execute_command("ACL", "SETUSER", "dbpulse", "on", ">pw", "~*", *ACL_BASIC.split())
    await admin.mset({f"cache:{i}": "v" for i in range(20)})
    await plant_queues(admin)
    caplog.set_level(logging.INFO, logger="dbpulse.redis")
    p = redis_poller(f"redis://dbpulse:pw@127.0.0.1:{s.port}/0", sample_budget_ms=5_000, queues=list(QUEUE_LENGTHS))
    try:
        snaps = [await p.poll() for _ in range(3)]
        errors_after_first = await admin.info("errorstats")
        snaps.append(await p.poll())
        assert await admin.info("errorstats") == errors_after_first  # refused once, then not asked again
    finally:
        await p.close()
    samples = snaps[-1].samples()
    for feature in ("slowlog", "latency_monitor", "memory_usage", "config_get", "queue_script"):
        assert metric(samples, "dbpulse_redis_feature_enabled", feature) == 0, feature
        lines = [r for r in caplog.records if r.message.startswith(f"r: {feature} disabled")]
        assert len(lines) == 1 and lines[0].levelno == logging.WARNING, (feature, lines)
        assert "grant +" in lines[0].message
    # Everything else is there: the queue lengths in two round trips.
    assert {key: metric(samples, "dbpulse_redis_queue_length", key) for key in QUEUE_LENGTHS} == QUEUE_LENGTHS
    assert metric(samples, "dbpulse_redis_up") == 1
    assert metric(samples, "dbpulse_redis_prefix_keys", "cache:*") == 20
    assert metric(samples, "dbpulse_redis_prefix_memory_bytes", "cache:*") is None
    assert metric(samples, "dbpulse_redis_slowlog_length") is None
    assert metric(samples, "dbpulse_redis_command_calls_total", "pttl") is not None
    await admin.aclose()
