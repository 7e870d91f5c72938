"""The alert thresholds the charts draw, each named after the shipped alert it mirrors.

A source's spec names a chart's alert (``ChartSpec.threshold``); its value is looked up here.

A chart's dashed line is where the matching alert in ``rules/dbpulse-alerts.rules.yml``
fires (its warning level where there are two), so an engineer sees how close a line is
to paging. ``tests/unit/web/test_thresholds.py`` checks each value against the rule's
expression, so a threshold changed in the rules cannot silently drift from the UI.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Threshold:
    alert: str  # the alert's name in the rules file
    value: float
    expr: str  # the comparison as written in the alert's expression (what the test looks for)

    @property
    def label(self) -> str:
        return f"alert {self.alert}"


PG_CACHE_HIT = Threshold("PostgresCacheHitRatioLow", 0.95, "< 0.95")
PG_CONNECTIONS = Threshold("PostgresConnectionsNearMax", 0.8, "> 0.8")  # share of max_connections
PG_APP_POOL = Threshold("PostgresAppPoolNearCapacity", 0.9, "> 0.9")
PG_LOCK_WAITS = Threshold("PostgresLockWaits", 3, "> 3")
PG_REPLICATION_LAG = Threshold("PostgresReplicationLag", 64 * 1024 * 1024, "> 64 * 1024 * 1024")
PG_REPLAY_LAG = Threshold("PostgresStandbyReplayLag", 300, "> 300")
REDIS_HIT = Threshold("RedisCacheHitRatioLow", 0.85, "< 0.85")
REDIS_MEMORY = Threshold("RedisMemoryNearMax", 0.9, "> 0.9")  # share of maxmemory
REDIS_EVICTIONS = Threshold("RedisEvictions", 0, "> 0")
HEALTH_SLOW = Threshold("AppHealthSlow", 1, "> 1")
APP_POOL = Threshold("AppPoolNearCapacity", 0.9, "> 0.9")  # share of the pool's capacity

ALL = (PG_CACHE_HIT, PG_CONNECTIONS, PG_APP_POOL, PG_LOCK_WAITS, PG_REPLICATION_LAG, PG_REPLAY_LAG, REDIS_HIT,
       REDIS_MEMORY, REDIS_EVICTIONS, HEALTH_SLOW, APP_POOL)
BY_ALERT = {t.alert: t for t in ALL}


def by_alert(alert: str) -> Threshold:
    """The threshold of the shipped alert a chart declares (``ChartSpec.threshold``)."""
    try:
        return BY_ALERT[alert]
    except KeyError:
        raise KeyError(f"no threshold for alert {alert!r} in monitor/web/thresholds.py") from None
