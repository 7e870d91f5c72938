"""The Redis collector against a real redis-server with a password."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError

from collectors.base.redact import redact
from collectors.base.samples import OTHER, Sample
from collectors.redis.poller import RedisPoller
from collectors.redis.sampling import sample_keys
from collectors.redis.settings import RedisSettings
from harness.servers import LocalRedis
from tests.support import redis_poller

from .conftest import PASSWORD, QUEUE_KINDS, QUEUE_LENGTHS, error_counts, plant_queues


def values(samples: list[Sample]) -> dict[tuple[str, tuple[str, ...]], float]:
    return {(s.name, s.labels): s.value for s in samples}


def one(samples: list[Sample], name: str, *labels: str) -> float | None:
    return values(samples).get((name, ("r", *labels)))


async def server_stats(client: aioredis.Redis) -> tuple[int, int]:
    stats = await client.info("stats")
    return int(stats["keyspace_hits"]), int(stats["keyspace_misses"])


def poller(server: LocalRedis, **settings: object) -> RedisPoller:
    """A poller whose sampling budget no loaded machine runs out of: these keyspaces are read whole."""
    return redis_poller(server.url(), **{"sample_budget_ms": 5000, **settings})


async def test_password_from_url_and_wrong_password_is_down_and_redacted(
    redis_pw: LocalRedis, fresh_redis: aioredis.Redis
) -> None:
    good = poller(redis_pw)
    snap = await good.poll()
    assert one(snap.samples(), "dbpulse_redis_up") == 1
    await good.close()

    url = f"redis://:wrong-{PASSWORD}@127.0.0.1:{redis_pw.port}/0"
    bad = redis_poller(url)
    with pytest.raises(AuthenticationError) as info:
        await bad.poll()
    assert PASSWORD not in redact(str(info.value))
    assert values(bad.down_samples()) == {("dbpulse_redis_up", ("r",)): 0.0}
    await bad.close()

    # Connection options in the URL's query string do not clash with the poller's own.
    query = redis_poller(f"redis://:{PASSWORD}@127.0.0.1:{redis_pw.port}/0?protocol=3&socket_timeout=9&client_name=x")
    assert one((await query.poll()).samples(), "dbpulse_redis_up") == 1
    await query.close()

    # The password given apart from the URL (password_env / password_file) wins over none in it.
    apart = redis_poller(f"redis://127.0.0.1:{redis_pw.port}/0", password=PASSWORD)
    assert one((await apart.poll()).samples(), "dbpulse_redis_up") == 1
    await apart.close()


async def test_hit_ratio_of_a_known_mix_is_exact_across_polls(fresh_redis: aioredis.Redis,
                                                              redis_pw: LocalRedis) -> None:
    await fresh_redis.mset({f"cache:item:{i}": "v" for i in range(50)})
    p = poller(redis_pw, queues=["celery"])
    first = (await p.poll()).samples()
    assert one(first, "dbpulse_redis_cache_hit_ratio") is None  # no interval yet
    assert one(first, "dbpulse_redis_keyspace_hits_total") == 0
    app_hits = app_misses = 0
    for _ in range(4):
        for i in range(30):  # 30 hits, 10 misses: 0.75
            await fresh_redis.get(f"cache:item:{i}")
        for i in range(10):
            await fresh_redis.get(f"cache:absent:{i}")
        app_hits, app_misses = app_hits + 30, app_misses + 10
        samples = (await p.poll()).samples()
        assert one(samples, "dbpulse_redis_cache_hit_ratio") == pytest.approx(0.75)
        assert one(samples, "dbpulse_redis_keyspace_hits_total") == app_hits
        assert one(samples, "dbpulse_redis_keyspace_misses_total") == app_misses
    raw_hits, raw_misses = await server_stats(fresh_redis)
    own = one(samples, "dbpulse_redis_own_lookups_total")
    assert own is not None and own >= 5 * 50  # every poll read the TTL of every key...
    assert raw_hits + raw_misses - own == app_hits + app_misses  # ...and exactly that was subtracted
    await p.close()


async def test_sampling_does_not_move_the_reported_counters_on_a_quiet_server(
    fresh_redis: aioredis.Redis, redis_pw: LocalRedis
) -> None:
    await fresh_redis.mset({f"k:{i}": "v" for i in range(500)})
    await fresh_redis.rpush("celery", "t1")
    await fresh_redis.get("k:1")
    await fresh_redis.get("nope")
    p = poller(redis_pw, queues=["celery", "missing-queue"])
    before = await server_stats(fresh_redis)
    assert before == (1, 1)
    reported = []
    for _ in range(3):
        samples = (await p.poll()).samples()
        reported.append((one(samples, "dbpulse_redis_keyspace_hits_total"),
                         one(samples, "dbpulse_redis_keyspace_misses_total")))
    after = await server_stats(fresh_redis)
    # Each poll: 501 PTTL hits; TYPE and LLEN: 2 hits for celery; TYPE: 1 miss for the missing queue.
    assert after == (1 + 3 * (501 + 2), 1 + 3 * 1)
    assert reported == [(1.0, 1.0)] * 3
    await p.close()


async def test_ttl_discipline_per_prefix(fresh_redis: aioredis.Redis, redis_pw: LocalRedis) -> None:
    await fresh_redis.mset({f"session:{i}": "v" for i in range(300)})  # no TTL
    pipe = fresh_redis.pipeline()
    for i in range(200):
        pipe.set(f"cache:user:{i}", "v", ex=600)
    for i in range(100):
        pipe.set(f"orders:{i}:items", "v", ex=60 if i % 2 else None)
    await pipe.execute()
    p = poller(redis_pw)
    samples = (await p.poll()).samples()
    assert one(samples, "dbpulse_redis_sampled_keys") == 600
    assert one(samples, "dbpulse_redis_prefix_keys", "session:*") == 300
    assert one(samples, "dbpulse_redis_prefix_without_ttl_ratio", "session:*") == 1.0
    assert one(samples, "dbpulse_redis_prefix_mean_ttl_seconds", "session:*") is None
    assert one(samples, "dbpulse_redis_prefix_keys", "cache:user:*") == 200
    assert one(samples, "dbpulse_redis_prefix_without_ttl_ratio", "cache:user:*") == 0.0
    assert one(samples, "dbpulse_redis_prefix_mean_ttl_seconds", "cache:user:*") == pytest.approx(600, abs=2)
    assert one(samples, "dbpulse_redis_prefix_keys", "orders:*:*") == 100  # id segment normalised
    assert one(samples, "dbpulse_redis_prefix_without_ttl_ratio", "orders:*:*") == 0.5
    assert one(samples, "dbpulse_redis_prefix_mean_ttl_seconds", "orders:*:*") == pytest.approx(60, abs=2)
    assert one(samples, "dbpulse_redis_db_keys", "0") == 600
    assert one(samples, "dbpulse_redis_db_keys_expiring", "0") == 250
    await p.close()


async def test_configured_patterns_and_top_k_fold_into_other(
    fresh_redis: aioredis.Redis, redis_pw: LocalRedis
) -> None:
    pipe = fresh_redis.pipeline()
    for group in range(10):
        for i in range(group + 1):  # group g has g+1 keys, so ranks are stable
            pipe.set(f"g{group}:{i}", "v")
    await pipe.execute()
    p = poller(redis_pw, top_prefixes=3, prefixes=["g9:*"], prefix_depth=1)
    samples = values((await p.poll()).samples())
    prefixes = {labels[1]: v for (name, labels), v in samples.items() if name == "dbpulse_redis_prefix_keys"}
    assert prefixes == {"g9:*": 10, "g8:*": 9, "g7:*": 8, OTHER: sum(range(1, 8))}
    await p.close()


async def test_queue_lengths_of_every_type_and_not_one_error_reply(fresh_redis: aioredis.Redis,
                                                                   redis_pw: LocalRedis) -> None:
    """Each key gets the one length command of its type: 100 polls leave the server's error counters as
    they were (sending LLEN and XLEN to every key made a WRONGTYPE per queue and poll)."""
    await plant_queues(fresh_redis)
    p = poller(redis_pw, queues=list(QUEUE_LENGTHS), sampling=False)
    before = await error_counts(fresh_redis)
    for _ in range(100):
        snap = await p.poll()
    after = await error_counts(fresh_redis)
    await p.close()
    assert after == before
    samples = snap.samples()
    assert {key: one(samples, "dbpulse_redis_queue_length", key) for key in QUEUE_LENGTHS} == QUEUE_LENGTHS
    assert snap.queue_kinds == QUEUE_KINDS
    assert one(samples, "dbpulse_redis_feature_enabled", "queue_script") == 1
    assert one(samples, "dbpulse_redis_sampled_keys") is None  # sampling disabled
    commands = await fresh_redis.info("commandstats")
    assert commands["cmdstat_eval"]["calls"] == 100  # one round trip a poll
    for command in ("llen", "xlen", "scard", "zcard", "hlen"):
        assert commands[f"cmdstat_{command}"]["calls"] == 100, command


async def test_server_and_memory_metrics_are_read_from_info(
    fresh_redis: aioredis.Redis, redis_pw: LocalRedis
) -> None:
    await fresh_redis.config_set("maxmemory", str(256 * 1024 * 1024))
    await fresh_redis.set("short", "v", px=1)
    p = poller(redis_pw)
    try:
        import asyncio

        await asyncio.sleep(0.05)
        await fresh_redis.get("short")  # expires it on access: one miss, one expired key
        samples = (await p.poll()).samples()
        info = await fresh_redis.info()
        assert one(samples, "dbpulse_redis_memory_max_bytes") == 256 * 1024 * 1024
        assert one(samples, "dbpulse_redis_expired_keys_total") == 1
        assert one(samples, "dbpulse_redis_keyspace_misses_total") == 1
        assert one(samples, "dbpulse_redis_evicted_keys_total") == 0
        assert one(samples, "dbpulse_redis_rejected_connections_total") == 0
        assert one(samples, "dbpulse_redis_blocked_clients") == 0
        assert one(samples, "dbpulse_redis_connected_clients") == info["connected_clients"]
        used = one(samples, "dbpulse_redis_memory_used_bytes")
        peak = one(samples, "dbpulse_redis_memory_peak_bytes")
        assert used is not None and peak is not None and 0 < used <= peak
        assert (one(samples, "dbpulse_redis_memory_fragmentation") or 0) > 0
        assert one(samples, "dbpulse_redis_info", info["redis_version"], "standalone", "master", "redis") == 1
        ping = one(samples, "dbpulse_redis_ping_seconds")
        assert ping is not None and 0 < ping < 1
    finally:
        await fresh_redis.config_set("maxmemory", "0")
        await p.close()


async def test_sample_cut_by_max_keys_is_not_taken_as_complete(redis_server: LocalRedis) -> None:
    client = aioredis.Redis.from_url(redis_server.url(5))
    try:
        await client.flushdb()
        await client.mset({f"user:{i}:name": "x" for i in range(150)})
        sample = await sample_keys(client, RedisSettings(sample_max_keys=100, scan_count=1000, sample_budget_ms=5000))
        assert sample.sampled == 100
        assert not sample.complete  # 150 keys exist: counts must be estimated from dbsize
        whole = await sample_keys(client, RedisSettings(sample_max_keys=1000, scan_count=1000, sample_budget_ms=5000))
        assert whole.sampled == 150 and whole.complete
    finally:
        await client.flushdb()
        await client.aclose()


async def test_own_lookups_of_a_poll_that_failed_before_info_are_still_subtracted(
    fresh_redis: aioredis.Redis, redis_pw: LocalRedis
) -> None:
    """A poll cut between sampling and INFO (a timeout; a real server cannot be made to fail
    exactly there, so INFO is made to fail once) must not leave its lookups in the counts."""
    await fresh_redis.mset({f"k:{i}": "v" for i in range(200)})
    await fresh_redis.get("k:1")
    p = poller(redis_pw)
    await p.poll()
    client = p._checkout()  # the client the next poll would use
    real_info = client.info

    async def failing_info(*args: object, **kwargs: object) -> object:
        client.info = real_info  # type: ignore[method-assign]
        raise TimeoutError("cut before INFO")

    client.info = failing_info  # type: ignore[method-assign]
    with pytest.raises(TimeoutError):
        await p._read(client)  # sampled 200 keys (200 hits), then failed
    await p._checkin(client)
    samples = (await p.poll()).samples()
    assert one(samples, "dbpulse_redis_keyspace_hits_total") == 1  # only the application's GET
    assert one(samples, "dbpulse_redis_keyspace_misses_total") == 0
    await p.close()
