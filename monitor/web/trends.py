"""The charts on the main page: what each source's recent past looks like, from its ``History``.

One builder per source turns the ring of recorded samples into ``charts.Chart``
values; ``RECORDED`` names every metric they read, and is what the scheduler
keeps (``monitor/service.py``). Adding a chart is one builder line here plus,
if it reads a new metric, its name in ``RECORDED``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from monitor.core.history import History, Series, rate
from monitor.core.scheduler import SourceState
from monitor.web import thresholds
from monitor.web.charts import Chart, Line, gaps
from monitor.web.thresholds import Threshold

MIN_WINDOW_POLLS = 20  # a young buffer is drawn over at least this many intervals, not stretched across the chart

RECORDED = (
    "dbpulse_pg_database_cache_hit_ratio",
    "dbpulse_pg_database_xact_commit_total",
    "dbpulse_pg_database_xact_rollback_total",
    "dbpulse_pg_connections",
    "dbpulse_pg_max_connections",
    "dbpulse_pg_app_pool_usage_ratio",
    "dbpulse_pg_lock_waiting_sessions",
    "dbpulse_pg_replication_lag_bytes",
    "dbpulse_pg_replay_lag_seconds",
    "dbpulse_redis_cache_hit_ratio",
    "dbpulse_redis_memory_used_bytes",
    "dbpulse_redis_memory_max_bytes",
    "dbpulse_redis_commands_processed_total",
    "dbpulse_redis_evicted_keys_total",
    "dbpulse_health_up",
    "dbpulse_health_duration_seconds",
    "dbpulse_app_pool_checked_out",
    "dbpulse_app_pool_capacity",
)


class Frame:
    """What every chart of one source shares: its window, its gaps and its history."""

    def __init__(self, state: SourceState) -> None:
        self.history: History = state.history
        self.key = f"{state.poller.source}:{state.poller.target}"
        times = self.history.times()
        self.times = times
        if times:
            full = self.history.capacity * state.poller.interval
            end = times[-1]
            shortest = MIN_WINDOW_POLLS * state.poller.interval
            self.window = (max(end - full, min(times[0], end - shortest)), end)
        else:
            self.window = (0.0, 1.0)
        self.down = gaps(times, self.history.ups()) if times else []

    def chart(self, key: str, title: str, unit: str, lines: Iterable[Line], threshold: Threshold | None = None,
              threshold_value: float | None = None, ceiling: float | None = None, ceiling_label: str = "") -> Chart:
        value = threshold_value if threshold_value is not None else threshold.value if threshold else None
        return Chart(title=title, unit=unit, lines=list(lines), window=self.window, threshold=value,
                     threshold_label=threshold.label if threshold else "", ceiling=ceiling,
                     ceiling_label=ceiling_label, key=f"{self.key}:{key}", down=self.down)

    def lines(self, name: str, label: Callable[[Series], str], **match: str) -> list[Line]:
        return [Line(label(s), s.times, s.values) for s in self.history.series(name, **match)]

    def latest(self, name: str, **match: str) -> float | None:
        """The newest recorded value of a single series."""
        series = self.history.one(name, **match)
        if series is None:
            return None
        return next((v for v in reversed(series.values) if v is not None), None)


def summed(label: str, series: Sequence[Series]) -> Line:
    """Several series added up per poll; a poll where none has a value stays a gap."""
    if not series:
        return Line(label, [], [])
    values: list[float | None] = []
    for i in range(len(series[0].values)):
        present = [s.values[i] for s in series if s.values[i] is not None]
        values.append(sum(v for v in present if v is not None) if present else None)
    return Line(label, series[0].times, values)


def scaled(line: Line, factor: float | None) -> Line:
    return Line(line.label, line.times, [None if v is None or factor is None else v * factor
                                         for v in line.values])


# --- one builder per source --------------------------------------------------------------------
def postgres_charts(state: SourceState, datname: str | None) -> list[Chart]:
    f = Frame(state)
    db = {"datname": datname} if datname else {}
    out = [f.chart("cache-hit", "Cache hit ratio", "ratio",
                   f.lines("dbpulse_pg_database_cache_hit_ratio", lambda s: s.labels["datname"], **db),
                   thresholds.PG_CACHE_HIT)]
    xacts = [rate(s) for name in ("dbpulse_pg_database_xact_commit_total", "dbpulse_pg_database_xact_rollback_total")
             for s in f.history.series(name, **db)]
    out.append(f.chart("tps", "Transactions per second", "/s", [summed("commits + rollbacks", xacts)]))
    by_state: dict[str, list[Series]] = {}
    for s in f.history.series("dbpulse_pg_connections"):
        by_state.setdefault(s.labels["state"], []).append(s)
    max_conn = f.latest("dbpulse_pg_max_connections")
    out.append(f.chart("connections", "Connections by state", "count",
                       [summed(st, group) for st, group in sorted(by_state.items())], thresholds.PG_CONNECTIONS,
                       threshold_value=max_conn * thresholds.PG_CONNECTIONS.value if max_conn else None,
                       ceiling=max_conn, ceiling_label="max_connections"))
    pools = f.lines("dbpulse_pg_app_pool_usage_ratio", lambda s: s.labels["application_name"])
    if pools:
        out.append(f.chart("app-pools", "Server-side pool use per application", "ratio", pools,
                           thresholds.PG_APP_POOL, ceiling=1.0, ceiling_label="capacity"))
    out.append(f.chart("lock-waits", "Sessions waiting on a lock", "count",
                       f.lines("dbpulse_pg_lock_waiting_sessions", lambda s: "waiting"), thresholds.PG_LOCK_WAITS))
    lag = f.lines("dbpulse_pg_replication_lag_bytes", lambda s: s.labels["standby"], stage="replay")
    if lag:
        out.append(f.chart("replication-lag", "Replication lag (replay, per standby)", "bytes", lag,
                           thresholds.PG_REPLICATION_LAG))
    replay = f.lines("dbpulse_pg_replay_lag_seconds", lambda s: "replay lag")
    if replay:
        out.append(f.chart("replay-lag", "Standby replay lag", "seconds", replay, thresholds.PG_REPLAY_LAG))
    return out


def redis_charts(state: SourceState) -> list[Chart]:
    f = Frame(state)
    out = [f.chart("hit-ratio", "Keyspace hit ratio", "ratio",
                   f.lines("dbpulse_redis_cache_hit_ratio", lambda s: "hit ratio"), thresholds.REDIS_HIT)]
    max_memory = f.latest("dbpulse_redis_memory_max_bytes") or None  # 0 means no limit
    out.append(f.chart("memory", "Memory used", "bytes", f.lines("dbpulse_redis_memory_used_bytes", lambda s: "used"),
                       thresholds.REDIS_MEMORY if max_memory else None,
                       threshold_value=max_memory * thresholds.REDIS_MEMORY.value if max_memory else None,
                       ceiling=max_memory, ceiling_label="maxmemory"))
    out.append(f.chart("ops", "Commands per second", "/s",
                       [Line("commands", s.times, rate(s).values)
                        for s in f.history.series("dbpulse_redis_commands_processed_total")]))
    out.append(f.chart("evictions", "Evictions per second", "/s",
                       [Line("evicted", s.times, rate(s).values)
                        for s in f.history.series("dbpulse_redis_evicted_keys_total")], thresholds.REDIS_EVICTIONS))
    return out


def health_charts(state: SourceState) -> list[Chart]:
    f = Frame(state)
    out = [f.chart("up", "Endpoints up", "count", f.lines("dbpulse_health_up", lambda s: s.labels["endpoint"])),
           f.chart("latency", "Response time", "seconds",
                   f.lines("dbpulse_health_duration_seconds", lambda s: s.labels["endpoint"]), thresholds.HEALTH_SLOW)]
    for s in f.history.series("dbpulse_app_pool_checked_out"):
        pool = s.labels["pool"]
        capacity = f.latest("dbpulse_app_pool_capacity", pool=pool)
        out.append(f.chart(f"pool-{pool}", f"App pool {pool}: checked out", "count", [Line("checked out", s.times,
                           s.values)], thresholds.APP_POOL,
                           threshold_value=capacity * thresholds.APP_POOL.value if capacity else None,
                           ceiling=capacity, ceiling_label="capacity"))
    return out


def charts_of(state: SourceState, datname: str | None = None) -> list[Chart]:
    """The charts of one source's section on the main page."""
    source = state.poller.source
    if source == "postgres":
        return postgres_charts(state, datname)
    if source == "redis":
        return redis_charts(state)
    if source == "health":
        return health_charts(state)
    return []
