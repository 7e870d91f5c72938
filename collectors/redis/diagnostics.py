"""The slowlog and the latency monitor (``SLOWLOG GET``, ``LATENCY LATEST``), read from raw replies.

A slowlog entry holds the command's arguments verbatim (keys, values,
passwords on 6.0): only the command name is kept, with the subcommand of a
container command (``config|set``, named as commandstats names it), never an
argument. Replies are parsed by hand, not by redis-py's callbacks, so their
shape does not depend on redis-py's version; Valkey adds two fields to each
``LATENCY LATEST`` row (sum and count), which are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Commands whose first argument is a subcommand, never user data.
CONTAINERS = frozenset({"acl", "client", "cluster", "command", "config", "debug", "function", "latency",
                        "memory", "module", "object", "pubsub", "script", "slowlog", "xgroup", "xinfo"})
_NAME = re.compile(r"^[a-z][a-z0-9_.\-]{0,39}$")
MAX_CLIENT_NAME = 64


@dataclass(frozen=True)
class SlowEntry:
    id: int
    timestamp: float  # unix time the command started
    duration_seconds: float
    command: str  # the name only: arguments hold user data
    client_name: str


@dataclass(frozen=True)
class LatencyEvent:
    event: str  # "command", "fast-command", "fork", "aof-fsync-always", "expire-cycle"...
    timestamp: float  # unix time of the latest spike
    latest_seconds: float
    max_seconds: float  # since the server started or LATENCY RESET


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def command_name(argv: Sequence[Any]) -> str:
    """``config|set`` for ``CONFIG SET requirepass x``, ``get`` for ``GET user:42``; ``?`` if not a name."""
    if not argv:
        return "?"
    name = _text(argv[0]).lower()
    if not _NAME.match(name):
        return "?"
    if name in CONTAINERS and len(argv) > 1:
        sub = _text(argv[1]).lower()
        if _NAME.match(sub):
            return f"{name}|{sub}"
    return name


def parse_slowlog(reply: Any) -> list[SlowEntry]:
    """``[[id, ts, usec, [argv...], addr, name], ...]``, newest first; malformed rows are skipped."""
    out = []
    for row in reply if isinstance(reply, list) else []:
        if not isinstance(row, list | tuple) or len(row) < 4 or not isinstance(row[3], list | tuple):
            continue
        try:
            entry_id, started, usec = int(row[0]), float(row[1]), float(row[2])
        except (TypeError, ValueError):
            continue
        client = _text(row[5])[:MAX_CLIENT_NAME] if len(row) > 5 else ""
        out.append(SlowEntry(entry_id, started, usec / 1e6, command_name(row[3]), client))
    return out


def parse_latency_latest(reply: Any) -> list[LatencyEvent]:
    """``[[event, ts, latest_ms, max_ms(, sum_ms, count)], ...]``; malformed rows are skipped."""
    out = []
    for row in reply if isinstance(reply, list) else []:
        if not isinstance(row, list | tuple) or len(row) < 4:
            continue
        try:
            out.append(LatencyEvent(_text(row[0])[:40], float(row[1]), float(row[2]) / 1000, float(row[3]) / 1000))
        except (TypeError, ValueError):
            continue
    return out


def config_value(reply: Any) -> str | None:
    """The value of a one-parameter ``CONFIG GET``: ``[name, value]`` in RESP2, ``{name: value}`` in RESP3."""
    if isinstance(reply, dict) and len(reply) == 1:
        return _text(next(iter(reply.values())))
    if isinstance(reply, list | tuple) and len(reply) == 2:
        return _text(reply[1])
    return None
