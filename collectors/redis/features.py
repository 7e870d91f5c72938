"""What a Redis server lets dbpulse read, with one log line when that changes.

Some reads depend on the server's version (``INFO errorstats`` from 6.2,
``latencystats`` from 7.0), its configuration (``latency-monitor-threshold``)
or the ACL of dbpulse's user (``SLOWLOG``, ``LATENCY``, ``MEMORY USAGE``,
``CONFIG GET``). A feature the server lacks is reported disabled
(``dbpulse_redis_feature_enabled{feature}`` 0) with one log line saying what
to do, and the rest of the poll goes on. A read that failed with an error
reply (no permission, a renamed command) is not sent again for
``RECHECK_SECONDS``, nor before a restart of the server: each try leaves an
error in the server's own errorstats, which dbpulse must not fill every poll.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("dbpulse.redis")

RECHECK_SECONDS = 600.0
FEATURES = ("errorstats", "latencystats", "slowlog", "latency_monitor", "memory_usage", "config_get", "queue_script")


@dataclass(frozen=True)
class FeatureState:
    enabled: bool
    reason: str = ""  # why it is disabled, and what to do
    failed_at: float | None = None  # when a command failed (monotonic): retried RECHECK_SECONDS later


class Features:
    def __init__(self, target: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.target = target
        self.clock = clock
        self.states: dict[str, FeatureState] = {}

    def set(self, name: str, enabled: bool, reason: str = "", *, failed: bool = False,
            level: int = logging.INFO) -> None:
        """Record what this poll found; log when it changed (``level`` for a newly disabled feature)."""
        old = self.states.get(name)
        self.states[name] = FeatureState(enabled, reason, self.clock() if failed else None)
        if enabled and old is not None and not old.enabled:
            log.info("%s: %s is available again", self.target, name)
        elif not enabled and (old is None or old.enabled or old.reason != reason):
            log.log(level, "%s: %s disabled: %s", self.target, name, reason)

    def failed(self, name: str, what: str, error: Exception, grant: str) -> None:
        """A read was refused: disabled until the next recheck, with the permission it needs."""
        self.set(name, False, f"{what} failed ({error}); {grant}", failed=True, level=logging.WARNING)

    def usable(self, name: str) -> bool:
        """Whether to send this feature's commands now: unless they failed less than RECHECK_SECONDS ago.

        A feature off for its configuration (a zero latency-monitor-threshold) is read on: that costs no
        error, and it is how dbpulse sees it switched on.
        """
        state = self.states.get(name)
        return state is None or state.failed_at is None or self.clock() - state.failed_at >= RECHECK_SECONDS

    def restarted(self) -> None:
        """The server restarted (a new run_id): what failed may work now."""
        for name, state in self.states.items():
            if state.failed_at is not None:
                self.states[name] = FeatureState(state.enabled, state.reason, -math.inf)

    def snapshot(self) -> dict[str, FeatureState]:
        return dict(self.states)
