"""The alert thresholds the charts draw, from each source's table (``collectors/<source>/thresholds.py``).

A chart's dashed line is where the matching alert fires (its warning level
where there are two), so an engineer sees how close a line is to paging. The
numbers live in the tables only; ``tests/rules/test_thresholds.py`` holds the
rules to them.
"""

from __future__ import annotations

from collectors.base.thresholds import Threshold as Threshold
from collectors.health import thresholds as health
from collectors.postgres import thresholds as postgres
from collectors.redis import thresholds as redis

PG_CACHE_HIT = postgres.CACHE_HIT
PG_CONNECTIONS = postgres.CONNECTIONS
PG_APP_POOL = postgres.APP_POOL
PG_LOCK_WAITS = postgres.LOCK_WAITS
PG_REPLICATION_LAG = postgres.REPLICATION_LAG
PG_REPLAY_LAG = postgres.REPLAY_LAG
REDIS_HIT = redis.CACHE_HIT
REDIS_MEMORY = redis.MEMORY
REDIS_EVICTIONS = redis.EVICTIONS
HEALTH_SLOW = health.SLOW
APP_POOL = health.APP_POOL
