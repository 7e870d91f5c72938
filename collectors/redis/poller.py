"""Redis poller: PING, key sampling, queue lengths (queues.py), INFO, then the slowlog and latency monitor.

INFO is read after every lookup this poll makes, so that those lookups
(counted exactly from the replies) are already in ``keyspace_hits``/
``keyspace_misses`` when they are subtracted: the exported counters and the
hit ratio describe the application only.

dbpulse must not pollute what it measures: its connections skip redis-py's
``CLIENT SETINFO`` and maintenance-notification handshake (each failing call
left an error in the server's errorstats on every new connection, before
7.2), and a read the server refuses is not retried every poll (features.py).
A PING refused with ``MISCONF`` is a server that is up but cannot persist and
refuses writes: reported as such, not as down.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection, ConnectionPool, parse_url
from redis.exceptions import RedisError, ResponseError

from collectors.base.poller import Poller
from collectors.redis.diagnostics import LatencyEvent, SlowEntry, config_value, parse_latency_latest, parse_slowlog
from collectors.redis.features import Features
from collectors.redis.info import RedisInfo, parse_info
from collectors.redis.queues import QueueReader
from collectors.redis.sampling import KeySample, estimate, sample_keys
from collectors.redis.settings import RedisSettings, RedisTarget
from collectors.redis.snapshot import RedisSnapshot

log = logging.getLogger("dbpulse.redis")

CLIENT_NAME = "dbpulse"
# Read with CONFIG GET (one name per call: 6.x takes one pattern) to tell whether the slowlog and the
# latency monitor record anything.
CONFIG_NAMES = ("latency-monitor-threshold", "slowlog-log-slower-than", "slowlog-max-len")


def quiet_handshake() -> dict[str, Any]:
    """Connection options that keep redis-py from sending what fails on some servers.

    redis-py 5+ sends ``CLIENT SETINFO`` (unknown before Redis 7.2) and 7+ ``CLIENT
    MAINT_NOTIFICATIONS`` (unknown to every open-source server so far) on each new
    connection; both failures are counted in the server's errorstats. RESP2 keeps the
    replies in the shapes this collector parses whatever redis-py's default.
    """
    params = inspect.signature(AbstractConnection.__init__).parameters
    options: dict[str, Any] = {"protocol": 2}
    if "driver_info" in params:
        options["driver_info"] = None
    else:
        options.update(lib_name=None, lib_version=None)
    if "maint_notifications_config" in params:
        from redis.maint_notifications import MaintNotificationsConfig

        options["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
    return options


async def _close(client: aioredis.Redis) -> None:
    """Close a client and its connections without waiting on the server. (asyncio.timeout, not wait_for: Python
    3.11's wait_for can drop a cancellation of the caller that arrives just as the close ends.)"""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1.0):
            await client.aclose(close_connection_pool=True)


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


@dataclass
class _Diagnostics:
    """What SLOWLOG, LATENCY LATEST and CONFIG GET said this poll."""

    slowlog_length: float | None = None
    slowlog: list[SlowEntry] = field(default_factory=list)
    latency_events: list[LatencyEvent] = field(default_factory=list)
    config: dict[str, str] = field(default_factory=dict)


class RedisPoller(Poller):
    source = "redis"
    up_metric = "dbpulse_redis_up"

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
        self.features = Features(self.target)
        self._queues = QueueReader(self.queues, self.features)
        self._run_id: str | None = None
        self._slowlog_next_id: float | None = None  # newest slowlog id + 1 seen on this run of the server

    def _checkout(self) -> aioredis.Redis:
        """The kept client, taken out of the poller for this poll (see ``Poller.poll``), or a new one."""
        client, self._client = self._client, None
        if client is not None:
            return client
        # Ours win over the same options in the URL's query string (?protocol=3&socket_timeout=...).
        options = {**self._pool_kwargs, "socket_timeout": self.timeout, "socket_connect_timeout": self.timeout,
                   "client_name": CLIENT_NAME, "max_connections": 2, **quiet_handshake()}
        client = aioredis.Redis(connection_pool=ConnectionPool(**options))
        client.set_response_callback("INFO", lambda response, **_: response)  # parsed by us
        return client

    async def _checkin(self, client: aioredis.Redis) -> None:
        """Keep the client for the next poll, unless a newer poll has already made one."""
        if self._client is None:
            self._client = client
        elif self._client is not client:
            await _close(client)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await _close(client)

    async def poll(self) -> RedisSnapshot:
        client = self._checkout()
        try:
            snapshot = await self._read(client)
        except (asyncio.CancelledError, RedisError, OSError):
            await _close(client)  # a cut-off (abandoned) exchange leaves the connection in an unknown state
            raise
        except Exception:
            await self._checkin(client)
            raise
        await self._checkin(client)
        return snapshot

    async def _read(self, client: aioredis.Redis) -> RedisSnapshot:
        started = time.perf_counter()
        writes_refused = False
        try:
            await client.ping()
        except ResponseError as exc:
            if not str(exc).startswith("MISCONF"):
                raise
            writes_refused = True  # a failing save or AOF write: the server answers, but refuses writes and PING
        ping_seconds = time.perf_counter() - started
        keys: KeySample | None = None
        # Our lookups are kept as soon as their replies arrive: if this poll fails before
        # INFO, the next successful poll still subtracts them.
        if self.settings.sampling:
            keys = await self._sample(client)
            self._cursor = keys.cursor
            self._unsubtracted = (self._unsubtracted[0] + keys.hits, self._unsubtracted[1] + keys.misses)
        queues = await self._queues.read(client)
        self._unsubtracted = (self._unsubtracted[0] + queues.hits, self._unsubtracted[1] + queues.misses)
        raw_info: Any = await client.info("all")  # raw text: see _checkout
        info = parse_info(raw_info)
        adjusted = self._adjust(info, *self._unsubtracted)
        self._unsubtracted = (0, 0)
        self._check_restart(info)
        self._info_features(info)
        diagnostics = await self._diagnostics(client)
        dbsize = info.keyspace[self.db].keys if self.db in info.keyspace else 0.0
        prefixes = estimate(keys, dbsize, self.settings.top_prefixes, self.settings.largest_keys) if keys else {}
        return RedisSnapshot(
            target=self.target, info=info, ping_seconds=ping_seconds,
            hits=adjusted[0], misses=adjusted[1], own_lookups=adjusted[2], hit_ratio=adjusted[3],
            db=self.db, dbsize=dbsize, keys=keys, prefixes=prefixes, queues=queues.lengths, queue_kinds=queues.kinds,
            writes_refused=writes_refused, top_commands=self.settings.top_commands,
            top_errors=self.settings.top_errors, slowlog_length=diagnostics.slowlog_length,
            slowlog_entries_total=self._slowlog_next_id if diagnostics.slowlog_length is not None else None,
            slowlog=diagnostics.slowlog[: self.settings.slowlog_entries],
            latency_events=diagnostics.latency_events, config=diagnostics.config, features=self.features.snapshot(),
        )

    async def _sample(self, client: aioredis.Redis) -> KeySample:
        """SCAN + PTTL, with MEMORY USAGE unless it is off or was refused."""
        state = self.features.states.get("memory_usage")
        memory = self.settings.memory and self.features.usable("memory_usage")
        probe = memory and (state is None or not state.enabled)  # not known to work: one key alone first
        keys = await sample_keys(client, self.settings, self._cursor, memory=memory, probe=probe, queues=self.queues)
        if not self.settings.memory:
            self.features.set("memory_usage", False, "redis.memory is off in dbpulse's configuration")
        elif keys.memory_error is not None:
            self.features.failed("memory_usage", "MEMORY USAGE", keys.memory_error,
                                 "grant +memory|usage to dbpulse's user for memory per key prefix")
        elif memory and keys.sampled:
            self.features.set("memory_usage", True)
        return keys

    def _check_restart(self, info: RedisInfo) -> None:
        run_id = info.fields.get("run_id")
        if self._run_id is not None and run_id != self._run_id:
            self.features.restarted()
            self._queues.restarted()
            self._slowlog_next_id = None
        self._run_id = run_id

    def _info_features(self, info: RedisInfo) -> None:
        """Features INFO itself shows: a section the server's version lacks, or one its configuration empties."""
        server = f"{info.server} {info.version}".strip()
        if "errorstats" in info.sections:
            self.features.set("errorstats", True)
        else:
            self.features.set("errorstats", False, f"{server} has no INFO errorstats (Redis 6.2 or later): no "
                              "error counts, nor rejected and failed calls per command")
        if "latencystats" not in info.sections:
            self.features.set("latencystats", False, f"{server} has no INFO latencystats (Redis 7.0 or later): "
                              "no latency percentiles per command")
        elif not any(info.latency.values()):
            self.features.set("latencystats", False, "INFO latencystats is empty: latency-tracking is off or "
                              "latency-tracking-info-percentiles is empty (CONFIG SET latency-tracking yes)")
        else:
            self.features.set("latencystats", True)

    async def _diagnostics(self, client: aioredis.Redis) -> _Diagnostics:
        """SLOWLOG LEN/GET, LATENCY LATEST and CONFIG GET in one round trip; a refused read disables its feature."""
        f, out = self.features, _Diagnostics()
        asks: list[str] = []
        pipe = client.pipeline(transaction=False)
        if f.usable("slowlog"):
            pipe.execute_command("SLOWLOG", "LEN")
            pipe.execute_command("SLOWLOG", "GET", max(1, self.settings.slowlog_entries))
            asks += ["slowlog len", "slowlog get"]
        if f.usable("latency_monitor"):
            pipe.execute_command("LATENCY", "LATEST")
            asks.append("latency")
        if f.usable("config_get"):
            for name in CONFIG_NAMES:
                pipe.execute_command("CONFIG", "GET", name)
                asks.append(f"config {name}")
        replies = dict(zip(asks, await pipe.execute(raise_on_error=False), strict=True)) if asks else {}
        self._config(out, replies)
        self._slowlog(out, replies)
        if "latency" in replies:
            reply = replies["latency"]
            if isinstance(reply, ResponseError):
                f.failed("latency_monitor", "LATENCY LATEST", reply, "grant +latency|latest to dbpulse's user")
            else:
                out.latency_events = parse_latency_latest(reply)
                threshold = out.config.get("latency-monitor-threshold")
                if threshold == "0":
                    f.set("latency_monitor", False, "latency-monitor-threshold is 0, so Redis records no latency "
                          "spikes: CONFIG SET latency-monitor-threshold 100 records events slower than 100 ms")
                else:
                    f.set("latency_monitor", True)
        return out

    def _config(self, out: _Diagnostics, replies: dict[str, Any]) -> None:
        asked = [name for name in CONFIG_NAMES if f"config {name}" in replies]
        for name in asked:
            reply = replies[f"config {name}"]
            if isinstance(reply, ResponseError):
                self.features.failed("config_get", "CONFIG GET", reply, "grant +config|get to dbpulse's user, so "
                                     "that it can tell whether the slowlog and the latency monitor are on")
                out.config = {}
                return
            value = config_value(reply)
            if value is not None:
                out.config[name] = value
        if asked:
            self.features.set("config_get", True)

    def _slowlog(self, out: _Diagnostics, replies: dict[str, Any]) -> None:
        if "slowlog len" not in replies:
            return
        length, entries = replies["slowlog len"], replies["slowlog get"]
        error = next((r for r in (length, entries) if isinstance(r, ResponseError)), None)
        if error is not None:
            self.features.failed("slowlog", "SLOWLOG", error, "grant +slowlog|len +slowlog|get to dbpulse's user")
            return
        out.slowlog_length = float(length)
        out.slowlog = parse_slowlog(entries)
        if out.slowlog:
            self._slowlog_next_id = float(out.slowlog[0].id + 1)
        elif self._slowlog_next_id is None:
            self._slowlog_next_id = 0.0  # nothing logged, or a SLOWLOG RESET before dbpulse first looked
        slower_than = out.config.get("slowlog-log-slower-than", "")
        if slower_than.startswith("-"):
            self.features.set("slowlog", False, "slowlog-log-slower-than is negative, so Redis logs no slow "
                              "commands: CONFIG SET slowlog-log-slower-than 10000 logs those over 10 ms")
        else:
            self.features.set("slowlog", True)

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
