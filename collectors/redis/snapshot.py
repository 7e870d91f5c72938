"""What one Redis poll read, and how it becomes samples."""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.base.samples import Sample, SampleList
from collectors.redis.commands import latency_quantiles, top_commands, top_errors
from collectors.redis.diagnostics import LatencyEvent, SlowEntry
from collectors.redis.features import FeatureState
from collectors.redis.info import CommandStat, RedisInfo, ReplicaLine
from collectors.redis.sampling import KeySample, PrefixEstimate

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
    "connected_slaves": "dbpulse_redis_connected_replicas",
    "repl_backlog_size": "dbpulse_redis_repl_backlog_bytes",
    "master_sync_in_progress": "dbpulse_redis_master_sync_in_progress",  # replicas only
    "rdb_changes_since_last_save": "dbpulse_redis_rdb_changes_since_last_save",
    "rdb_bgsave_in_progress": "dbpulse_redis_rdb_save_in_progress",
    "rdb_last_save_time": "dbpulse_redis_rdb_last_save_timestamp_seconds",  # of the last successful save
    "aof_enabled": "dbpulse_redis_aof_enabled",
    "aof_rewrite_in_progress": "dbpulse_redis_aof_rewrite_in_progress",
}
# INFO field -> (metric, factor to base units).
INFO_SCALED = {
    "latest_fork_usec": ("dbpulse_redis_latest_fork_seconds", 1e-6),
}
# INFO status field ("ok"/"err") -> metric, 1 for ok.
INFO_STATUS = {
    "rdb_last_bgsave_status": "dbpulse_redis_rdb_last_save_ok",
    "aof_last_write_status": "dbpulse_redis_aof_last_write_ok",
    "aof_last_bgrewrite_status": "dbpulse_redis_aof_last_rewrite_ok",
    "master_link_status": "dbpulse_redis_master_link_up",  # replicas only: "up" / "down"
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
    prefixes: dict[str, PrefixEstimate] = field(default_factory=dict)
    queues: dict[str, float] = field(default_factory=dict)
    queue_kinds: dict[str, str] = field(default_factory=dict)  # each queue key's type ("none": it does not exist)
    writes_refused: bool = False  # PING answered MISCONF: persistence is failing and writes are refused
    top_commands: int = 20
    top_errors: int = 10
    slowlog_length: float | None = None
    slowlog_entries_total: float | None = None  # the newest entry's id + 1: entries logged since the start
    slowlog: list[SlowEntry] = field(default_factory=list)  # newest first, command names only
    latency_events: list[LatencyEvent] = field(default_factory=list)
    config: dict[str, str] = field(default_factory=dict)  # the few CONFIG GET values read, when allowed
    features: dict[str, FeatureState] = field(default_factory=dict)

    # --- derived views (the samples and the UI read the same) -------------------------------------
    @property
    def commands(self) -> list[CommandStat]:
        return top_commands(self.info.commands, self.top_commands)

    @property
    def latency(self) -> dict[str, dict[str, float]]:
        """command -> {quantile: seconds} since the statistics were last reset (latencystats, 7.0+)."""
        return latency_quantiles(self.info.latency, self.commands)

    @property
    def errors(self) -> list[tuple[str, float]]:
        return top_errors(self.info.errors, self.top_errors)

    @property
    def master_offset(self) -> float | None:
        return self.info.number("master_repl_offset")

    def replica_lag_bytes(self, replica: ReplicaLine) -> float | None:
        """Bytes of the replication stream the replica has not acknowledged; None when unknown.

        A replica acknowledges once a second, so this reads up to a second of writes high; right after
        a (re)connect its offset reads 0 until its first acknowledgement: unknown, not the whole stream.
        """
        if not replica.offset or self.master_offset is None:
            return None
        return max(0.0, self.master_offset - replica.offset)

    @property
    def master_last_io_seconds(self) -> float | None:
        """A replica's seconds since it last heard from its primary; -1 (link down) is absent."""
        value = self.info.number("master_last_io_seconds_ago")
        return value if value is not None and value >= 0 else None

    def status_ok(self, name: str) -> float | None:
        value = self.info.fields.get(name)
        return None if value is None else float(value in ("ok", "up"))

    # --- samples ----------------------------------------------------------------------------------
    def samples(self) -> list[Sample]:
        out = SampleList(target=self.target)
        out.add("dbpulse_redis_up", 1)
        out.add("dbpulse_redis_info", 1, version=self.info.version, mode=self.info.mode,
                role=self.info.fields.get("role", ""), server=self.info.server)
        out.add("dbpulse_redis_ping_seconds", self.ping_seconds)
        out.add("dbpulse_redis_writes_refused", float(self.writes_refused))
        out.add("dbpulse_redis_keyspace_hits_total", self.hits)
        out.add("dbpulse_redis_keyspace_misses_total", self.misses)
        out.add("dbpulse_redis_own_lookups_total", self.own_lookups)
        out.add("dbpulse_redis_cache_hit_ratio", self.hit_ratio)
        for field_name, metric in INFO_METRICS.items():
            out.add(metric, self.info.number(field_name))
        for field_name, (metric, factor) in INFO_SCALED.items():
            value = self.info.number(field_name)
            out.add(metric, None if value is None else value * factor)
        for field_name, metric in INFO_STATUS.items():
            out.add(metric, self.status_ok(field_name))
        for name, state in sorted(self.features.items()):
            out.add("dbpulse_redis_feature_enabled", float(state.enabled), feature=name)
        for db, entry in sorted(self.info.keyspace.items()):
            out.add("dbpulse_redis_db_keys", entry.keys, db=str(db))
            out.add("dbpulse_redis_db_keys_expiring", entry.expires, db=str(db))
            out.add("dbpulse_redis_db_avg_ttl_seconds", entry.avg_ttl_seconds, db=str(db))
        self._replication(out)
        self._commands(out)
        self._prefixes(out)
        for key, length in sorted(self.queues.items()):
            out.add("dbpulse_redis_queue_length", length, key=key)
        return out.samples

    def _replication(self, out: SampleList) -> None:
        out.add("dbpulse_redis_master_last_io_seconds", self.master_last_io_seconds)
        for replica in self.info.replicas:
            out.add("dbpulse_redis_replica_online", float(replica.state == "online"), replica=replica.name)
            out.add("dbpulse_redis_replica_lag_seconds", replica.lag_seconds, replica=replica.name)
            out.add("dbpulse_redis_replica_lag_bytes", self.replica_lag_bytes(replica), replica=replica.name)

    def _commands(self, out: SampleList) -> None:
        for stat in self.commands:
            out.add("dbpulse_redis_command_calls_total", stat.calls, command=stat.command)
            out.add("dbpulse_redis_command_seconds_total", stat.seconds, command=stat.command)
            out.add("dbpulse_redis_command_rejected_calls_total", stat.rejected_calls, command=stat.command)
            out.add("dbpulse_redis_command_failed_calls_total", stat.failed_calls, command=stat.command)
        for command, quantiles in sorted(self.latency.items()):
            for q, seconds in quantiles.items():
                out.add("dbpulse_redis_command_latency_seconds", seconds, command=command, quantile=q)
        for error, count in self.errors:
            out.add("dbpulse_redis_errors_total", count, error=error)
        out.add("dbpulse_redis_slowlog_length", self.slowlog_length)
        out.add("dbpulse_redis_slowlog_entries_total", self.slowlog_entries_total)
        for event in self.latency_events:
            out.add("dbpulse_redis_latency_event_seconds", event.latest_seconds, event=event.event)
            out.add("dbpulse_redis_latency_event_max_seconds", event.max_seconds, event=event.event)
            out.add("dbpulse_redis_latency_event_timestamp_seconds", event.timestamp, event=event.event)

    def _prefixes(self, out: SampleList) -> None:
        if self.keys is None:
            return
        out.add("dbpulse_redis_sampled_keys", self.keys.sampled)
        out.add("dbpulse_redis_sampling_duration_seconds", self.keys.duration)
        for prefix, p in sorted(self.prefixes.items()):
            out.add("dbpulse_redis_prefix_keys", p.keys, prefix=prefix)
            out.add("dbpulse_redis_prefix_without_ttl_ratio", p.without_ttl_ratio, prefix=prefix)
            out.add("dbpulse_redis_prefix_mean_ttl_seconds", p.mean_ttl_seconds, prefix=prefix)
            out.add("dbpulse_redis_prefix_memory_bytes", p.memory_bytes, prefix=prefix)
