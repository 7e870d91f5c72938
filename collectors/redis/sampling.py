"""Sampling the keyspace with ``SCAN`` + ``PTTL`` (+ ``MEMORY USAGE``) under a per-poll time budget.

Cost is bounded by the budget and ``max_keys``, never by the keyspace: each
poll continues the ``SCAN`` cursor where the previous one stopped, so
successive polls see different slices, and a keyspace small enough to be
scanned in full within the budget is counted exactly.

``PTTL`` is a keyspace lookup: Redis counts it as a hit when the key exists
and as a miss when it does not (reply -2, also for a key expired but not yet
evicted). ``SCAN`` without ``TYPE`` counts nothing. So the lookups this
sampler causes are known exactly from the replies, and the poller subtracts
them from ``keyspace_hits``/``keyspace_misses``.

``MEMORY USAGE`` counts no hit or miss (on every version from 6.0) and does
not touch a key's LRU clock. It does not check expiry either: for a key that
expired but is not evicted yet it still returns a size, so its reply is used
only when the key's ``PTTL`` (sent just before it) said the key exists.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # redis-py is imported by the poller, only when Redis is watched
    from redis.exceptions import ResponseError

from collectors.base.samples import OTHER
from collectors.redis.prefixes import PrefixRules
from collectors.redis.settings import RedisSettings

MAX_KEY_CHARS = 120  # a key name shown in the UI is cut here


@dataclass
class PrefixStats:
    sampled: int = 0
    without_ttl: int = 0
    with_ttl: int = 0
    queues: int = 0  # configured queue keys: no TTL expected, so not counted without one
    ttl_seconds_sum: float = 0.0
    memory_keys: int = 0  # sampled keys whose MEMORY USAGE was read
    memory_bytes: float = 0.0
    largest: list[tuple[float, str]] = field(default_factory=list)  # (bytes, key) of the biggest, a min-heap

    def add(self, other: PrefixStats, keep: int) -> None:
        self.sampled += other.sampled
        self.without_ttl += other.without_ttl
        self.with_ttl += other.with_ttl
        self.queues += other.queues
        self.ttl_seconds_sum += other.ttl_seconds_sum
        self.memory_keys += other.memory_keys
        self.memory_bytes += other.memory_bytes
        for item in other.largest:
            _keep_largest(self.largest, item, keep)

    @property
    def mean_bytes(self) -> float | None:
        return self.memory_bytes / self.memory_keys if self.memory_keys else None

    def largest_keys(self) -> tuple[tuple[str, float], ...]:
        """(key, bytes), biggest first."""
        return tuple((key, size) for size, key in sorted(self.largest, key=lambda i: (-i[0], i[1])))

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
    memory_error: ResponseError | None = None  # MEMORY USAGE was refused: sampled without it


@dataclass(frozen=True)
class PrefixEstimate:
    """What the poll tells about one prefix."""

    keys: float  # estimated: share of the sample x DBSIZE (exact when the sample was complete)
    without_ttl_ratio: float
    mean_ttl_seconds: float | None
    memory_bytes: float | None  # estimated: mean MEMORY USAGE of its sampled keys x its keys
    largest: tuple[tuple[str, float], ...] = ()  # (key, bytes) of its largest sampled keys: the UI only
    queue_ratio: float = 0.0  # share of its sampled keys that are configured queues (exempt from the TTL check)


def _keep_largest(heap: list[tuple[float, str]], item: tuple[float, str], keep: int) -> None:
    if keep <= 0:
        return
    if len(heap) < keep:
        heapq.heappush(heap, item)
    elif item > heap[0]:
        heapq.heapreplace(heap, item)


async def sample_keys(
    client: Any, settings: RedisSettings, cursor: int = 0,
    clock: Callable[[], float] = time.perf_counter, memory: bool = False, probe: bool = False,
    queues: Collection[str] = (),
) -> KeySample:
    """Scan from ``cursor`` until the budget (``sample_budget_ms``), ``sample_max_keys`` or a full pass.

    With ``memory`` each key's ``MEMORY USAGE`` is read in the same pipeline as its ``PTTL``, inside the
    same budget. ``probe`` first sends it for one key alone, so that a refusal (ACL) costs the server one
    error reply rather than one per key of a batch. ``queues`` (the target's configured queue keys) need no
    TTL: they are sampled like any key but never counted as keys without one.
    """
    from redis.exceptions import ResponseError

    budget_seconds, max_keys = settings.sample_budget_ms / 1000, settings.sample_max_keys
    rules = settings.prefix_rules(queues)
    samples, keep = settings.memory_samples, settings.largest_keys
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
        if fresh and memory and probe:
            probe = False
            try:
                await client.memory_usage(fresh[0], samples=samples)
            except ResponseError as exc:
                out.memory_error, memory = exc, False
        if fresh:
            pipe = client.pipeline(transaction=False)
            for key in fresh:
                pipe.pttl(key)
                if memory:
                    pipe.memory_usage(key, samples=samples)
            replies = await pipe.execute(raise_on_error=False)
            step = 2 if memory else 1
            for i, key in enumerate(fresh):
                pttl, size = replies[i * step], replies[i * step + 1] if memory else None
                if isinstance(pttl, Exception):
                    raise pttl
                if isinstance(size, ResponseError):
                    out.memory_error, memory, size = size, False, None
                _record(out, rules, key, int(pttl), size if isinstance(size, int) else None, keep)
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


def _record(out: KeySample, rules: PrefixRules, key: bytes, pttl_ms: int, size: int | None, keep: int) -> None:
    if pttl_ms == -2:  # gone since SCAN returned it (deleted or expired): a miss, not a sample
        out.misses += 1
        return
    out.hits += 1
    out.sampled += 1
    name = key.decode("utf-8", errors="replace")
    prefix = rules.prefix_of(name)
    stats = out.prefixes.setdefault(prefix, PrefixStats())
    stats.sampled += 1
    if size is not None:  # None: not asked, or the key went away between PTTL and MEMORY USAGE
        stats.memory_keys += 1
        stats.memory_bytes += size
        _keep_largest(stats.largest, (float(size), name[:MAX_KEY_CHARS]), keep)
    if pttl_ms < 0 and name in rules.queues:
        stats.queues += 1
    elif pttl_ms < 0:
        stats.without_ttl += 1
    else:
        stats.with_ttl += 1
        stats.ttl_seconds_sum += pttl_ms / 1000


def top_prefixes(prefixes: dict[str, PrefixStats], k: int, keep: int = 0) -> dict[str, PrefixStats]:
    """The ``k`` most sampled prefixes, the rest folded into ``__other__`` (with its ``keep`` largest keys)."""
    ranked = sorted(((n, s) for n, s in prefixes.items() if n != OTHER), key=lambda i: (-i[1].sampled, i[0]))
    out = dict(ranked[:k])
    rest = [stats for name, stats in prefixes.items() if name not in out]
    if rest:
        other = PrefixStats()
        for stats in rest:
            other.add(stats, keep)
        out[OTHER] = other
    return out


def estimate(keys: KeySample, dbsize: float, k: int, keep: int) -> dict[str, PrefixEstimate]:
    """Per prefix of the top ``k``: keys (share of the sample x dbsize), TTL discipline, memory."""
    if not keys.sampled:
        return {}
    out = {}
    for prefix, stats in top_prefixes(keys.prefixes, k, keep).items():
        count = float(stats.sampled) if keys.complete else stats.sampled / keys.sampled * dbsize
        mean = stats.mean_bytes
        out[prefix] = PrefixEstimate(count, stats.without_ttl_ratio or 0.0, stats.mean_ttl_seconds,
                                     None if mean is None else mean * count, stats.largest_keys(),
                                     stats.queues / stats.sampled if stats.sampled else 0.0)
    return out
