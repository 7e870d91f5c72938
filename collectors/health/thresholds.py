"""The application health endpoints' alert thresholds (``collectors/base/thresholds.py``): the charts read
them here; ``tests/rules/test_thresholds.py`` holds the rules to them."""

from __future__ import annotations

from collectors.base.thresholds import Threshold

SLOW = Threshold("slow", 1, "seconds", "AppHealthSlow")
APP_POOL = Threshold("app_pool", 0.9, "ratio", "AppPoolNearCapacity")  # share of the pool's capacity

ALL = (SLOW, APP_POOL)
