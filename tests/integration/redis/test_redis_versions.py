"""Every Redis and Valkey version the README claims, on a real server: planted slow commands (DEBUG SLEEP)
in the slowlog and the latency metrics, commandstats and errorstats, what a version lacks reported disabled
with one log line, the hit counters exact, and no error reply of dbpulse's own in the server's errorstats."""

from __future__ import annotations

import logging
import re

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from collectors.base.samples import Sample
from harness.servers import REDIS_SERVERS, LocalRedis
from tests.support import redis_poller

from .conftest import QUEUE_LENGTHS, error_counts, plant_queues, quiet_client

SECRET = "s3cret-value-in-an-argument"


def metric(samples: list[Sample], name: str, *labels: str) -> float | None:
    return {(s.name, s.labels): s.value for s in samples}.get((name, ("r", *labels)))


async def errorstats(client: aioredis.Redis) -> dict[str, object]:
    return dict(await client.info("errorstats"))


async def plant(app: aioredis.Redis) -> None:
    """The application's traffic: 3 hits, 1 miss, two slow commands, one rejected and one failed call."""
    await app.mset({**{f"small:{i}": "x" * 10 for i in range(200)}, **{f"big:{i}": "x" * 2000 for i in range(50)}})
    for _ in range(3):
        await app.get("small:1")
    await app.get("missing")
    await app.execute_command("DEBUG", "SLEEP", "0.05")
    await app.execute_command("DEBUG", "SLEEP", "0.06")
    with pytest.raises(ResponseError):
        await app.execute_command("GET")  # wrong number of arguments: rejected before it runs
    with pytest.raises(ResponseError):
        await app.lpush("small:2", SECRET)  # WRONGTYPE: failed while running


@pytest.mark.parametrize("server", REDIS_SERVERS)
async def test_every_version(server: str, start_redis: object, caplog: pytest.LogCaptureFixture) -> None:
    s: LocalRedis = start_redis(server, debug=True, extra={"latency-monitor-threshold": "20"})  # type: ignore[operator]
    version = s.version
    app = quiet_client(s)
    await plant(app)
    await app.set("slow-arg", SECRET)
    # Every command into the slowlog for a moment, one of them with an argument that must never show.
    await app.config_set("slowlog-log-slower-than", "0")
    await app.set("slow-arg", SECRET)
    await app.config_set("slowlog-log-slower-than", "10000")
    before = await errorstats(app)
    caplog.set_level(logging.INFO, logger="dbpulse.redis")
    p = redis_poller(s.url(), slowlog_entries=5, sample_budget_ms=5_000)  # whole, whatever the load
    try:
        first = await p.poll()
        snap = await p.poll()
    finally:
        await p.close()
    assert await errorstats(app) == before, "dbpulse's connections and reads left error replies"
    samples = snap.samples()

    # Who it is: Valkey's own version, not the 7.2.4 it also reports as redis_version.
    assert metric(samples, "dbpulse_redis_info", version.text, "standalone", "master", version.product) == 1
    assert metric(samples, "dbpulse_redis_up") == 1 and metric(samples, "dbpulse_redis_writes_refused") == 0

    # The planted slow commands: in the slowlog (names only), the latency monitor and commandstats.
    assert (metric(samples, "dbpulse_redis_slowlog_length") or 0) >= 4
    assert (metric(samples, "dbpulse_redis_slowlog_entries_total") or 0) >= 4
    assert [e.command for e in snap.slowlog[:4]] == ["set", "config|set", "debug|sleep", "debug|sleep"]  # newest first
    assert snap.slowlog[2].duration_seconds >= 0.06 and snap.slowlog[3].duration_seconds >= 0.05
    assert SECRET not in repr(snap.slowlog) and "slow-arg" not in repr(snap.slowlog)
    assert (metric(samples, "dbpulse_redis_latency_event_max_seconds", "command") or 0) >= 0.055
    assert metric(samples, "dbpulse_redis_command_calls_total", "debug") == 2
    assert (metric(samples, "dbpulse_redis_command_seconds_total", "debug") or 0) >= 0.105
    p99 = metric(samples, "dbpulse_redis_command_latency_seconds", "debug", "0.99")
    disabled = [r.message for r in caplog.records if "disabled" in r.message]
    if version.at_least(7, 0):
        assert p99 is not None and p99 >= 0.055
        assert metric(samples, "dbpulse_redis_feature_enabled", "latencystats") == 1
    else:
        assert p99 is None
        assert metric(samples, "dbpulse_redis_feature_enabled", "latencystats") == 0
        assert len([m for m in disabled if "latencystats" in m]) == 1  # one line over two polls
    assert first.features.keys() == snap.features.keys()

    # Rejected and failed calls, error replies: 6.2 and later.
    rejected = metric(samples, "dbpulse_redis_command_rejected_calls_total", "get")
    if version.at_least(6, 2):
        assert rejected == 1 and metric(samples, "dbpulse_redis_command_failed_calls_total", "lpush") == 1
        assert metric(samples, "dbpulse_redis_errors_total", "WRONGTYPE") == 1
        assert (metric(samples, "dbpulse_redis_errors_total", "ERR") or 0) >= 1
        assert metric(samples, "dbpulse_redis_feature_enabled", "errorstats") == 1
    else:
        assert rejected is None and metric(samples, "dbpulse_redis_errors_total", "ERR") is None
        assert metric(samples, "dbpulse_redis_feature_enabled", "errorstats") == 0
        assert len([m for m in disabled if "errorstats" in m]) == 1
    assert len(disabled) == (not version.at_least(7, 0)) + (not version.at_least(6, 2))

    # What dbpulse may read here, and the application's own lookups only (its PTTLs subtracted,
    # MEMORY USAGE counts none).
    for feature in ("slowlog", "latency_monitor", "memory_usage", "config_get"):
        assert metric(samples, "dbpulse_redis_feature_enabled", feature) == 1, feature
    assert metric(samples, "dbpulse_redis_keyspace_hits_total") == 3
    assert metric(samples, "dbpulse_redis_keyspace_misses_total") == 1
    small = metric(samples, "dbpulse_redis_prefix_memory_bytes", "small:*")
    big = metric(samples, "dbpulse_redis_prefix_memory_bytes", "big:*")
    assert small and big and big > 5 * small  # 50 values of 2 kB against 200 of 10 bytes
    assert all(re.fullmatch(r"[a-z|_.\-]+", c.command) or c.command == "__other__" for c in snap.commands)
    await app.aclose()


@pytest.mark.parametrize("server", REDIS_SERVERS)
async def test_queue_lengths_cost_no_error_reply_on_any_version(server: str, start_redis: object) -> None:
    """A list, a stream, a set, a sorted set, a hash, a string and a missing key read as queues: 100 polls in
    one round trip each (EVAL) leave the server's error counters unchanged (on 6.0, which counts no error
    replies, the lengths are right)."""
    s: LocalRedis = start_redis(server)  # type: ignore[operator]
    app = quiet_client(s)
    await plant_queues(app)
    before = await error_counts(app)
    p = redis_poller(s.url(), queues=list(QUEUE_LENGTHS), sampling=False)
    try:
        for _ in range(100):
            snap = await p.poll()
    finally:
        await p.close()
    assert await error_counts(app) == before
    samples = snap.samples()
    assert {key: metric(samples, "dbpulse_redis_queue_length", key) for key in QUEUE_LENGTHS} == QUEUE_LENGTHS
    assert metric(samples, "dbpulse_redis_feature_enabled", "queue_script") == 1
    assert int((await app.info("commandstats"))["cmdstat_eval"]["calls"]) == 100
    await app.aclose()
