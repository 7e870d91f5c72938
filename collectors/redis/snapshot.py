"""What one Redis poll read, and how it becomes samples."""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.redis.info import RedisInfo
from collectors.redis.sampling import KeySample
from monitor.core.samples import Sample, SampleList

# INFO field -> metric; counters are exported as read, gauges as read.
INFO_METRICS = {
    "used_memory": "dbpulse_redis_memory_used_bytes",
    "used_memory_peak": "dbpulse_redis_memory_peak_bytes",
    "maxmemory": "dbpulse_redis_memory_max_bytes",
    "mem_fragmentation_ratio": "dbpulse_redis_memory_fragmentation",
    "evicted_keys": "dbpulse_redis_evicted_keys_total",
    "expired_keys": "dbpulse_redis_expired_keys_total",
    "connected_clients": "dbpulse_redis_connected_clients",
    "blocked_clients": "dbpulse_redis_blocked_clients",
    "rejected_connections": "dbpulse_redis_rejected_connections_total",
    "total_commands_processed": "dbpulse_redis_commands_processed_total",
    "total_connections_received": "dbpulse_redis_connections_received_total",
    "instantaneous_ops_per_sec": "dbpulse_redis_ops_per_second",
    "uptime_in_seconds": "dbpulse_redis_uptime_seconds",
}


@dataclass
class RedisSnapshot:
    target: str
    info: RedisInfo
    ping_seconds: float
    hits: float | None  # keyspace hits/misses with dbpulse's own lookups subtracted
    misses: float | None
    own_lookups: float  # cumulative lookups dbpulse caused (and subtracted)
    hit_ratio: float | None  # over the last interval; None on the first poll or without lookups
    db: int
    dbsize: float
    keys: KeySample | None  # None when sampling is disabled
    prefixes: dict[str, tuple[float, float, float | None]] = field(default_factory=dict)
    queues: dict[str, float] = field(default_factory=dict)

    def samples(self) -> list[Sample]:
        out = SampleList(target=self.target)
        out.add("dbpulse_redis_up", 1)
        out.add("dbpulse_redis_info", 1, version=self.info.fields.get("redis_version", ""),
                mode=self.info.fields.get("redis_mode", ""), role=self.info.fields.get("role", ""))
        out.add("dbpulse_redis_ping_seconds", self.ping_seconds)
        out.add("dbpulse_redis_keyspace_hits_total", self.hits)
        out.add("dbpulse_redis_keyspace_misses_total", self.misses)
        out.add("dbpulse_redis_own_lookups_total", self.own_lookups)
        out.add("dbpulse_redis_cache_hit_ratio", self.hit_ratio)
        for field_name, metric in INFO_METRICS.items():
            out.add(metric, self.info.number(field_name))
        for db, entry in sorted(self.info.keyspace.items()):
            out.add("dbpulse_redis_db_keys", entry.keys, db=str(db))
            out.add("dbpulse_redis_db_keys_expiring", entry.expires, db=str(db))
            out.add("dbpulse_redis_db_avg_ttl_seconds", entry.avg_ttl_seconds, db=str(db))
        if self.keys is not None:
            out.add("dbpulse_redis_sampled_keys", self.keys.sampled)
            out.add("dbpulse_redis_sampling_duration_seconds", self.keys.duration)
            for prefix, (count, without_ttl, mean_ttl) in sorted(self.prefixes.items()):
                out.add("dbpulse_redis_prefix_keys", count, prefix=prefix)
                out.add("dbpulse_redis_prefix_without_ttl_ratio", without_ttl, prefix=prefix)
                out.add("dbpulse_redis_prefix_mean_ttl_seconds", mean_ttl, prefix=prefix)
        for key, length in sorted(self.queues.items()):
            out.add("dbpulse_redis_queue_length", length, key=key)
        return out.samples
