"""Parsing ``INFO all`` text. Never raises: unknown or malformed lines are skipped.

Besides the plain ``name:value`` fields, four kinds of lines are read into
structures: ``cmdstat_<command>`` (commandstats), ``latency_percentiles_usec_<command>``
(latencystats, Redis 7.0+), ``errorstat_<ERROR>`` (errorstats, 6.2+) and a primary's
``slave<N>`` lines. ``sections`` holds the ``# Name`` headers seen, so a caller can
tell a section the server lacks (6.x has no latencystats) from an empty one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from collectors.base.topk import summed

MAX_NAME = 64  # command and error names longer than this are cut (they become label values)


@dataclass(frozen=True)
class DbKeys:
    keys: float
    expires: float
    avg_ttl_seconds: float | None  # Redis reports 0 when it has no estimate


@dataclass(frozen=True)
class CommandStat:
    """One ``cmdstat_`` line; 7.0+ name subcommands ``config|get``, 6.x only the container ``config``."""

    command: str
    calls: float = summed()
    usec: float = summed()
    rejected_calls: float | None = summed(None)  # 6.2+: refused before running (arity, ACL, OOM...)
    failed_calls: float | None = summed(None)  # 6.2+: failed while running (WRONGTYPE...)

    @property
    def seconds(self) -> float:
        return self.usec / 1e6

    @property
    def mean_seconds(self) -> float | None:
        return self.usec / self.calls / 1e6 if self.calls else None


@dataclass(frozen=True)
class ReplicaLine:
    """A primary's view of one replica (``slave0:ip=...,port=...,state=online,offset=...,lag=...``)."""

    name: str  # ip:port, as the replica announced itself
    state: str
    offset: float | None
    lag_seconds: float | None  # seconds since the replica's last acknowledgement (sent every second)


@dataclass(frozen=True)
class RedisInfo:
    fields: dict[str, str] = field(default_factory=dict)
    keyspace: dict[int, DbKeys] = field(default_factory=dict)
    sections: frozenset[str] = frozenset()  # lower-case section names
    commands: dict[str, CommandStat] = field(default_factory=dict)
    latency: dict[str, dict[str, float]] = field(default_factory=dict)  # command -> {"p99": usec}
    errors: dict[str, float] = field(default_factory=dict)  # error prefix (ERR, WRONGTYPE...) -> count
    replicas: tuple[ReplicaLine, ...] = ()

    def number(self, name: str) -> float | None:
        """A finite numeric field, or None if absent or not a number."""
        return to_number(self.fields.get(name))

    @property
    def server(self) -> str:
        """``redis`` or ``valkey`` (Valkey says so in server_name)."""
        return self.fields.get("server_name") or "redis"

    @property
    def version(self) -> str:
        """The server's own version: Valkey reports a fixed redis_version of 7.2.4 beside its valkey_version."""
        return self.fields.get("valkey_version") or self.fields.get("redis_version", "")

    @property
    def mode(self) -> str:
        return self.fields.get("redis_mode") or self.fields.get("server_mode", "")


def to_number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def pairs(value: str) -> dict[str, str]:
    """``k=v,k=v`` as a dict; items without ``=`` are skipped."""
    out = {}
    for item in value.split(","):
        key, sep, raw = item.partition("=")
        if sep and key.strip():
            out[key.strip()] = raw.strip()
    return out


def numbers(value: str) -> dict[str, float]:
    return {k: n for k, v in pairs(value).items() if (n := to_number(v)) is not None}


def _keyspace_entry(value: str) -> DbKeys | None:
    """``keys=3,expires=1,avg_ttl=2500[,subexpiry=0]``."""
    parts = numbers(value)
    if "keys" not in parts:
        return None
    avg_ttl_ms = parts.get("avg_ttl", 0.0)
    return DbKeys(
        keys=parts["keys"],
        expires=parts.get("expires", 0.0),
        avg_ttl_seconds=avg_ttl_ms / 1000 if avg_ttl_ms > 0 else None,
    )


def _command(name: str, value: str) -> CommandStat | None:
    parts = numbers(value)
    if "calls" not in parts or "usec" not in parts:
        return None
    return CommandStat(name[:MAX_NAME], parts["calls"], parts["usec"], parts.get("rejected_calls"),
                       parts.get("failed_calls"))


def _replica(value: str) -> ReplicaLine | None:
    parts = pairs(value)
    if "ip" not in parts or "port" not in parts:
        return None
    return ReplicaLine(f"{parts['ip']}:{parts['port']}"[:MAX_NAME], parts.get("state", ""),
                       to_number(parts.get("offset")), to_number(parts.get("lag")))


class _Builder:
    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.keyspace: dict[int, DbKeys] = {}
        self.sections: set[str] = set()
        self.commands: dict[str, CommandStat] = {}
        self.latency: dict[str, dict[str, float]] = {}
        self.errors: dict[str, float] = {}
        self.replicas: list[ReplicaLine] = []

    def line(self, name: str, value: str) -> None:
        if name.startswith("cmdstat_"):
            if (stat := _command(name.removeprefix("cmdstat_"), value)) is not None:
                self.commands[stat.command] = stat
        elif name.startswith("latency_percentiles_usec_"):
            self.latency[name.removeprefix("latency_percentiles_usec_")[:MAX_NAME]] = numbers(value)
        elif name.startswith("errorstat_"):
            count = numbers(value).get("count")
            if count is not None:
                self.errors[name.removeprefix("errorstat_")[:MAX_NAME]] = count
        elif name.startswith("slave") and name[5:].isascii() and name[5:].isdigit():
            if (replica := _replica(value)) is not None:
                self.replicas.append(replica)
        elif name.startswith("db") and 2 < len(name) <= 8 and name[2:].isascii() and name[2:].isdigit():
            if (entry := _keyspace_entry(value)) is not None:
                self.keyspace[int(name[2:])] = entry
        else:
            self.fields[name] = value

    def build(self) -> RedisInfo:
        return RedisInfo(self.fields, self.keyspace, frozenset(self.sections), self.commands, self.latency,
                         self.errors, tuple(self.replicas))


def parse_info(text: str | bytes) -> RedisInfo:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    out = _Builder()
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#"):
            out.sections.add(line.lstrip("#").strip().lower())
            continue
        name, sep, value = line.partition(":")
        if sep and name:
            out.line(name, value)
    return out.build()
