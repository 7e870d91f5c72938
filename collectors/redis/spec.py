"""Redis as a registered source: its section, pollers, flags and charts (``collectors/base/spec.py``)."""

from __future__ import annotations

from collectors.base.poller import Poller
from collectors.base.settings import named_url
from collectors.base.spec import ChartSpec, Flag, SourceSpec
from collectors.redis.settings import RedisSettings
from collectors.redis.snapshot import RedisSnapshot


def pollers(settings: RedisSettings) -> list[Poller]:
    """The section's pollers; redis-py is imported here, when Redis is watched, not with the registry (every
    source's pollers are built at start, a source without targets too)."""
    if not settings.targets:
        return []
    from collectors.redis.poller import pollers as build

    return build(settings)


CHARTS = (
    ChartSpec("hit-ratio", "Keyspace hit ratio", "ratio", "dbpulse_redis_cache_hit_ratio", line="hit ratio",
              threshold="RedisCacheHitRatioLow"),
    ChartSpec("memory", "Memory used", "bytes", "dbpulse_redis_memory_used_bytes", line="used",
              threshold="RedisMemoryNearMax", relative=True, ceiling="dbpulse_redis_memory_max_bytes",
              ceiling_label="maxmemory"),  # maxmemory 0 means no limit: no ceiling, no threshold
    ChartSpec("ops", "Commands per second", "/s", "dbpulse_redis_commands_processed_total", line="commands",
              rate=True),
    ChartSpec("evictions", "Evictions per second", "/s", "dbpulse_redis_evicted_keys_total", line="evicted",
              rate=True, threshold="RedisEvictions"),
)

SPEC = SourceSpec(
    name="redis", title="Redis", order=1, settings=RedisSettings, pollers=pollers, snapshot=RedisSnapshot,
    flags=(Flag("--redis", "[NAME=]URL", "Redis to watch (repeatable): redis://, rediss:// or unix://; NAME= sets "
                "the target label. Prefer password_env/password_file in the config file to a password in the URL",
                convert=named_url),
           Flag("--redis-queue", "KEY", "list or stream key whose length to report on every Redis target "
                "(repeatable)", field="queues")),
    additive=("targets", "queues"), charts=CHARTS,
)
