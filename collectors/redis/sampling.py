"""Sampling the keyspace with ``SCAN`` + ``PTTL`` under a per-poll time budget.

Cost is bounded by the budget and ``max_keys``, never by the keyspace: each
poll continues the ``SCAN`` cursor where the previous one stopped, so
successive polls see different slices, and a keyspace small enough to be
scanned in full within the budget is counted exactly.

``PTTL`` is a keyspace lookup: Redis counts it as a hit when the key exists
and as a miss when it does not (reply -2, also for a key expired but not yet
evicted). ``SCAN`` without ``TYPE`` counts nothing. So the lookups this
sampler causes are known exactly from the replies, and the poller subtracts
them from ``keyspace_hits``/``keyspace_misses``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from collectors.redis.prefixes import PrefixRules
from collectors.redis.settings import RedisSettings
from monitor.core.samples import OTHER


@dataclass
class PrefixStats:
    sampled: int = 0
    without_ttl: int = 0
    with_ttl: int = 0
    ttl_seconds_sum: float = 0.0

    def add(self, other: PrefixStats) -> None:
        self.sampled += other.sampled
        self.without_ttl += other.without_ttl
        self.with_ttl += other.with_ttl
        self.ttl_seconds_sum += other.ttl_seconds_sum

    @property
    def without_ttl_ratio(self) -> float | None:
        return self.without_ttl / self.sampled if self.sampled else None

    @property
    def mean_ttl_seconds(self) -> float | None:
        return self.ttl_seconds_sum / self.with_ttl if self.with_ttl else None


@dataclass
class KeySample:
    prefixes: dict[str, PrefixStats] = field(default_factory=dict)
    sampled: int = 0  # keys that existed when their TTL was read
    complete: bool = False  # a whole SCAN pass fitted in the budget: shares are exact
    duration: float = 0.0  # wall time of the SCAN/PTTL round-trips (bounds Redis time)
    hits: int = 0  # keyspace hits and misses this sampling caused
    misses: int = 0
    cursor: int = 0  # where the next poll continues


async def sample_keys(
    client: Any, settings: RedisSettings, cursor: int = 0,
    clock: Callable[[], float] = time.perf_counter,
) -> KeySample:
    """Scan from ``cursor`` until the budget (``sample_budget_ms``), ``sample_max_keys`` or a full pass."""
    budget_seconds, max_keys = settings.sample_budget_ms / 1000, settings.sample_max_keys
    rules = settings.prefix_rules()
    out = KeySample()
    seen: set[bytes] = set()
    started = clock()
    start_cursor = cursor
    truncated = False  # some keys of this pass were left out by max_keys: shares are an estimate
    while True:
        cursor, keys = await client.scan(cursor, count=settings.scan_count)
        cursor = int(cursor)
        new = [k for k in keys if k not in seen]
        fresh = new[: max(0, max_keys - len(seen))]
        truncated = truncated or len(fresh) < len(new)
        seen.update(fresh)
        if fresh:
            pipe = client.pipeline(transaction=False)
            for key in fresh:
                pipe.pttl(key)
            replies = await pipe.execute()
            for key, reply in zip(fresh, replies, strict=True):
                _record(out, rules, key, int(reply))
        if cursor == 0 and start_cursor == 0:
            out.complete = not truncated
            break
        if cursor == 0:
            start_cursor = 0  # wrapped around: one more pass from the start may complete
        if clock() - started >= budget_seconds or len(seen) >= max_keys:
            break
    out.cursor = cursor
    out.duration = clock() - started
    return out


def _record(out: KeySample, rules: PrefixRules, key: bytes, pttl_ms: int) -> None:
    if pttl_ms == -2:  # gone since SCAN returned it (deleted or expired): a miss, not a sample
        out.misses += 1
        return
    out.hits += 1
    out.sampled += 1
    prefix = rules.prefix_of(key.decode("utf-8", errors="replace"))
    stats = out.prefixes.setdefault(prefix, PrefixStats())
    stats.sampled += 1
    if pttl_ms < 0:
        stats.without_ttl += 1
    else:
        stats.with_ttl += 1
        stats.ttl_seconds_sum += pttl_ms / 1000


def top_prefixes(prefixes: dict[str, PrefixStats], k: int) -> dict[str, PrefixStats]:
    """The ``k`` most sampled prefixes, the rest folded into ``__other__``."""
    ranked = sorted(((n, s) for n, s in prefixes.items() if n != OTHER), key=lambda i: (-i[1].sampled, i[0]))
    out = dict(ranked[:k])
    rest = [stats for name, stats in prefixes.items() if name not in out]
    if rest:
        other = PrefixStats()
        for stats in rest:
            other.add(stats)
        out[OTHER] = other
    return out
