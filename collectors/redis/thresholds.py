"""Redis's alert thresholds (``collectors/base/thresholds.py``): the charts read them here;
``tests/rules/test_thresholds.py`` holds the rules to them."""

from __future__ import annotations

from collectors.base.thresholds import Threshold

CACHE_HIT = Threshold("cache_hit", 0.85, "ratio", "RedisCacheHitRatioLow", "< #")
MEMORY = Threshold("memory", 0.9, "ratio", "RedisMemoryNearMax")  # share of maxmemory
EVICTIONS = Threshold("evictions", 0, "/s", "RedisEvictions")

ALL = (CACHE_HIT, MEMORY, EVICTIONS)
