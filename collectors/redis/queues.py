"""Queue lengths: each configured key gets only the command that suits its type, in one round trip.

A small read-only Lua script (``EVAL``) asks each key's ``TYPE`` and then the one length command that fits
(``LLEN``, ``XLEN``, ``SCARD``, ``ZCARD`` or ``HLEN``): one round trip, atomic (a key cannot change type in
between) and no error reply. Sending ``LLEN`` and ``XLEN`` to every key, as dbpulse did, left a ``WRONGTYPE``
in the server's errorstats for every queue on every poll. Why a script:

- no single command measures every type, so without one the lengths take two round trips (``TYPE``, then the
  length), and a key that changes type in between still fails;
- without a shebang the script runs the same on Redis 6.0 to 8.2 and Valkey (7.0's ``#!lua flags=no-writes``
  is a syntax error before 7.0), on a replica, under ``maxmemory`` and while writes are refused (``MISCONF``):
  it only reads; it is never replicated, and it is held to the user's ACL like every command it calls;
- ``EVAL``, not ``EVALSHA``: the server caches it by its SHA1 (one entry in ``number_of_cached_scripts``), and
  a ``SCRIPT FLUSH`` costs a recompile, not a ``NOSCRIPT`` error.

An ACL may refuse ``EVAL`` (``-@scripting``) or a command may be renamed away: that one refusal is logged and
the lengths are read in two round trips from then on, until the server restarts, since that costs no error;
a length command refused the same way is not sent again either.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoPermissionError, ResponseError

from collectors.redis.features import Features

log = logging.getLogger("dbpulse.redis")

# The length command of each type a queue may have (Celery: lists; Sidekiq: lists, sets and sorted sets;
# Celery's unacked: a hash and a sorted set; streams).
LENGTH_COMMANDS = {"list": "LLEN", "stream": "XLEN", "set": "SCARD", "zset": "ZCARD", "hash": "HLEN"}

SCRIPT = """
local lengths = {list = 'LLEN', stream = 'XLEN', set = 'SCARD', zset = 'ZCARD', hash = 'HLEN'}
local out = {}
for i, key in ipairs(KEYS) do
  local kind = redis.call('TYPE', key)['ok']
  local command = lengths[kind]
  out[i] = {kind, command and redis.call(command, key) or -1}
end
return out
"""

FEATURE = "queue_script"
# How a refusal reads (redis-py strips the ERR/NOPERM prefix): an ACL, on the command or on one the script
# calls, or a command renamed away. Anything else (a server busy or loading) fails the poll as every command does.
REFUSALS = ("unknown command", "no permissions", "can't run this command", "ACL failure")


def refused(error: ResponseError) -> bool:
    return isinstance(error, NoPermissionError) or any(words in str(error) for words in REFUSALS)


@dataclass
class QueueReading:
    lengths: dict[str, float] = field(default_factory=dict)  # 0 for a key that does not exist
    kinds: dict[str, str] = field(default_factory=dict)  # each key's type ("none" when it does not exist)
    hits: int = 0  # keyspace lookups this reading caused (TYPE and the length command each look the key up)
    misses: int = 0


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class QueueReader:
    def __init__(self, keys: tuple[str, ...], features: Features) -> None:
        self.keys = keys
        self.features = features
        self._script_refused = False
        self._refused: set[str] = set()  # commands refused with an error reply, until the server restarts

    def restarted(self) -> None:
        """The server restarted: what it refused may be allowed now."""
        self._script_refused = False
        self._refused.clear()

    async def read(self, client: aioredis.Redis) -> QueueReading:
        if not self.keys:
            return QueueReading()
        if not self._script_refused:
            try:
                replies = await client.eval(SCRIPT, len(self.keys), *self.keys)
            except ResponseError as exc:
                if not refused(exc):
                    raise
                self._script_refused = True
                self.features.failed(FEATURE, "EVAL", exc, "queue lengths are read in two round trips (TYPE, then "
                                     "the length) until Redis restarts; grant +eval to dbpulse's user for one")
            else:
                self.features.set(FEATURE, True)
                return self._reading([(_text(kind), n) for kind, n in replies])
        return await self._two_round_trips(client)

    def _reading(self, replies: list[tuple[str, Any]]) -> QueueReading:
        out = QueueReading()
        for key, (kind, length) in zip(self.keys, replies, strict=True):
            out.kinds[key] = kind
            if kind == "none":
                out.misses += 1
                out.lengths[key] = 0.0
                continue
            out.hits += 1
            if kind in LENGTH_COMMANDS and length is not None and int(length) >= 0:
                # Only a stream exists empty: 0 from another type is a key gone between two round trips.
                vanished = int(length) == 0 and kind != "stream"
                out.misses += vanished
                out.hits += not vanished
                out.lengths[key] = float(length)
        return out

    async def _two_round_trips(self, client: aioredis.Redis) -> QueueReading:
        if "TYPE" in self._refused:
            return QueueReading()
        pipe = client.pipeline(transaction=False)
        for key in self.keys:
            pipe.type(key)
        kinds = await pipe.execute(raise_on_error=False)
        if error := next((k for k in kinds if isinstance(k, ResponseError)), None):
            self._refuse("TYPE", error)
            return QueueReading()
        pipe = client.pipeline(transaction=False)
        asked: list[tuple[str, str]] = []
        for key, kind in zip(self.keys, map(_text, kinds), strict=True):
            command = LENGTH_COMMANDS.get(kind)
            if command is not None and command not in self._refused:
                pipe.execute_command(command, key)
                asked.append((key, command))
        lengths = dict(zip(asked, await pipe.execute(raise_on_error=False), strict=True)) if asked else {}
        replies: list[tuple[str, Any]] = []
        for key, kind in zip(self.keys, map(_text, kinds), strict=True):
            reply = lengths.get((key, LENGTH_COMMANDS.get(kind, "")))
            if isinstance(reply, ResponseError):
                self._refuse(LENGTH_COMMANDS[kind], reply)
                reply = None
            replies.append((kind, reply))
        return self._reading(replies)

    def _refuse(self, command: str, error: ResponseError) -> None:
        if not refused(error):
            raise error
        self._refused.add(command)
        log.warning("%s: %s failed (%s): not sent again until Redis restarts; grant +%s to dbpulse's user",
                    self.features.target, command, error, command.lower())
