"""Parsing ``INFO`` text. Never raises: unknown or malformed lines are skipped."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DbKeys:
    keys: float
    expires: float
    avg_ttl_seconds: float | None  # Redis reports 0 when it has no estimate


@dataclass(frozen=True)
class RedisInfo:
    fields: dict[str, str] = field(default_factory=dict)
    keyspace: dict[int, DbKeys] = field(default_factory=dict)

    def number(self, name: str) -> float | None:
        """A finite numeric field, or None if absent or not a number."""
        return to_number(self.fields.get(name))


def to_number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _keyspace_entry(value: str) -> DbKeys | None:
    """``keys=3,expires=1,avg_ttl=2500[,subexpiry=0]``."""
    parts: dict[str, float] = {}
    for item in value.split(","):
        key, sep, raw = item.partition("=")
        number = to_number(raw) if sep else None
        if number is not None:
            parts[key.strip()] = number
    if "keys" not in parts:
        return None
    avg_ttl_ms = parts.get("avg_ttl", 0.0)
    return DbKeys(
        keys=parts["keys"],
        expires=parts.get("expires", 0.0),
        avg_ttl_seconds=avg_ttl_ms / 1000 if avg_ttl_ms > 0 else None,
    )


def parse_info(text: str | bytes) -> RedisInfo:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    fields: dict[str, str] = {}
    keyspace: dict[int, DbKeys] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition(":")
        if not sep or not name:
            continue
        if name.startswith("db") and 2 < len(name) <= 8 and name[2:].isascii() and name[2:].isdigit():
            entry = _keyspace_entry(value)
            if entry is not None:
                keyspace[int(name[2:])] = entry
        else:
            fields[name] = value
    return RedisInfo(fields, keyspace)
