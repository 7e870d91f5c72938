"""Redis poller: PING, key sampling, queue lengths, then INFO; one small connection pool per target.

INFO is read last so that the lookups this poll caused (counted exactly from
the replies) are already in ``keyspace_hits``/``keyspace_misses`` when they are
subtracted: the exported counters and the hit ratio describe the application
only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import ConnectionPool, parse_url
from redis.exceptions import RedisError, ResponseError

from collectors.redis.info import RedisInfo, parse_info
from collectors.redis.sampling import KeySample, sample_keys, top_prefixes
from collectors.redis.settings import RedisSettings, RedisTarget
from collectors.redis.snapshot import RedisSnapshot
from monitor.core.poller import Poller
from monitor.core.samples import Sample, SampleList

log = logging.getLogger("dbpulse.redis")

CLIENT_NAME = "dbpulse"


def pollers(settings: RedisSettings) -> list[Poller]:
    """One poller per target."""
    return [RedisPoller(target, settings, target.password()) for target in settings.targets]


@dataclass
class _Counters:
    """Raw server counters of the previous poll, and dbpulse's own lookups since they last reset."""

    run_id: str | None = None
    raw_hits: float = 0.0
    raw_misses: float = 0.0
    own_hits: int = 0
    own_misses: int = 0
    hits: float | None = None  # adjusted, of the previous poll
    misses: float | None = None


class RedisPoller(Poller):
    source = "redis"

    def __init__(self, target: RedisTarget, settings: RedisSettings, password: str | None = None) -> None:
        self.target = target.target
        self.interval = settings.interval_of(target)
        self.timeout = settings.timeout_of(target)
        self.settings = settings
        self.queues = settings.queues_of(target)
        kwargs: dict[str, Any] = dict(parse_url(target.url))
        if target.username is not None:
            kwargs["username"] = target.username
        if password is not None:
            kwargs["password"] = password
        self.db = int(kwargs.get("db") or 0)
        self._pool_kwargs = kwargs
        self._client: aioredis.Redis | None = None
        self._counters = _Counters()
        self._cursor = 0
        self._unsubtracted = (0, 0)  # (hits, misses) of our own lookups not yet subtracted

    def _connect(self) -> aioredis.Redis:
        if self._client is None:
            pool = ConnectionPool(
                **self._pool_kwargs, socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
                client_name=CLIENT_NAME, max_connections=2,
            )
            client = aioredis.Redis(connection_pool=pool)
            client.set_response_callback("INFO", lambda response, **_: response)  # parsed by us
            self._client = client
        return self._client

    async def _drop(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.aclose(close_connection_pool=True), 1.0)

    async def close(self) -> None:
        await self._drop()

    def down_samples(self) -> list[Sample]:
        out = SampleList(target=self.target)
        out.add("dbpulse_redis_up", 0)
        return out.samples

    async def poll(self) -> RedisSnapshot:
        try:
            return await self._read(self._connect())
        except (asyncio.CancelledError, RedisError, OSError):
            await self._drop()  # a cut-off exchange leaves the connection in an unknown state
            raise

    async def _read(self, client: aioredis.Redis) -> RedisSnapshot:
        started = time.perf_counter()
        await client.ping()
        ping_seconds = time.perf_counter() - started
        keys: KeySample | None = None
        # Our lookups are kept as soon as their replies arrive: if this poll fails before
        # INFO, the next successful poll still subtracts them.
        if self.settings.sampling:
            keys = await sample_keys(client, self.settings, self._cursor)
            self._cursor = keys.cursor
            self._unsubtracted = (self._unsubtracted[0] + keys.hits, self._unsubtracted[1] + keys.misses)
        queues, queue_hits, queue_misses = await self._queues(client)
        self._unsubtracted = (self._unsubtracted[0] + queue_hits, self._unsubtracted[1] + queue_misses)
        raw_info: Any = await client.info()  # raw text: see _connect
        info = parse_info(raw_info)
        adjusted = self._adjust(info, *self._unsubtracted)
        self._unsubtracted = (0, 0)
        dbsize = info.keyspace[self.db].keys if self.db in info.keyspace else 0.0
        return RedisSnapshot(
            target=self.target, info=info, ping_seconds=ping_seconds,
            hits=adjusted[0], misses=adjusted[1], own_lookups=adjusted[2], hit_ratio=adjusted[3],
            db=self.db, dbsize=dbsize, keys=keys, prefixes=self._prefixes(keys, dbsize), queues=queues,
        )

    async def _queues(self, client: aioredis.Redis) -> tuple[dict[str, float], int, int]:
        """LLEN or XLEN of each configured key, with the lookups it costs.

        TYPE, LLEN and XLEN run in one MULTI/EXEC so the key cannot vanish in
        between: all three are hits if TYPE saw the key, all three misses if
        not (LLEN/XLEN look the key up before failing with WRONGTYPE).
        """
        if not self.queues:
            return {}, 0, 0
        pipe = client.pipeline(transaction=True)
        for key in self.queues:
            pipe.type(key)
            pipe.llen(key)
            pipe.xlen(key)
        replies = await pipe.execute(raise_on_error=False)
        lengths: dict[str, float] = {}
        hits = misses = 0
        for i, key in enumerate(self.queues):
            raw_kind, llen, xlen = replies[3 * i: 3 * i + 3]
            kind = raw_kind.decode() if isinstance(raw_kind, bytes) else str(raw_kind)
            if kind == "none":
                misses += 3
                lengths[key] = 0
                continue
            hits += 3
            if kind == "list" and not isinstance(llen, ResponseError):
                lengths[key] = float(llen)
            elif kind == "stream" and not isinstance(xlen, ResponseError):
                lengths[key] = float(xlen)
            else:
                log.debug("%s: queue key %s is a %s, not a list or stream", self.target, key, kind)
        return lengths, hits, misses

    def _adjust(self, info: RedisInfo, hits: int, misses: int) -> tuple[
            float | None, float | None, float, float | None]:
        """Subtract dbpulse's own lookups; hit ratio over the interval from the adjusted deltas."""
        c = self._counters
        raw_hits, raw_misses = info.number("keyspace_hits"), info.number("keyspace_misses")
        run_id = info.fields.get("run_id")
        if raw_hits is None or raw_misses is None:
            return None, None, float(c.own_hits + c.own_misses), None
        reset = (c.run_id is not None and run_id != c.run_id) or raw_hits < c.raw_hits \
            or raw_misses < c.raw_misses
        if reset:  # restart or CONFIG RESETSTAT: only this poll's lookups are in the new counters
            log.info("%s: Redis statistics were reset", self.target)
            c.own_hits, c.own_misses, c.hits, c.misses = 0, 0, None, None
        c.own_hits += hits
        c.own_misses += misses
        adj_hits = max(0.0, raw_hits - c.own_hits)
        adj_misses = max(0.0, raw_misses - c.own_misses)
        ratio = None
        if c.hits is not None and c.misses is not None:
            d_hits, d_misses = adj_hits - c.hits, adj_misses - c.misses
            if d_hits >= 0 and d_misses >= 0 and d_hits + d_misses > 0:
                ratio = d_hits / (d_hits + d_misses)
        c.run_id, c.raw_hits, c.raw_misses, c.hits, c.misses = run_id, raw_hits, raw_misses, adj_hits, adj_misses
        return adj_hits, adj_misses, float(c.own_hits + c.own_misses), ratio

    def _prefixes(self, keys: KeySample | None, dbsize: float) -> dict[str, tuple[float, float, float | None]]:
        """Per prefix: estimated keys (share of the sample x dbsize), share without TTL, mean TTL."""
        if keys is None or not keys.sampled:
            return {}
        out: dict[str, tuple[float, float, float | None]] = {}
        for prefix, stats in top_prefixes(keys.prefixes, self.settings.top_prefixes).items():
            count = float(stats.sampled) if keys.complete else stats.sampled / keys.sampled * dbsize
            out[prefix] = (count, stats.without_ttl_ratio or 0.0, stats.mean_ttl_seconds)
        return out
