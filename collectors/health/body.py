"""Reading the JSON shapes of the seeds' health endpoints. Never raises.

``{"status": "ready", "is_ready": true, "components": {"database": {"status": "healthy"}},
"pool": {"size": 20, "max_overflow": 10, "checked_out": 3, "checked_in": 17, "overflow": 0}}``
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from collectors.base.samples import OTHER

UP_WORDS = frozenset({"healthy", "ok", "up", "pass", "passing", "ready", "alive", "connected"})
MAX_NAME_LENGTH = 64


@dataclass(frozen=True)
class PoolBlock:
    size: float | None = None
    max_overflow: float | None = None
    checked_out: float | None = None
    checked_in: float | None = None
    overflow: float | None = None

    @property
    def capacity(self) -> float | None:
        """size + max_overflow; unknown when either is missing or overflow is unlimited (-1)."""
        if self.size is None or self.max_overflow is None or self.max_overflow < 0:
            return None
        return self.size + self.max_overflow


@dataclass(frozen=True)
class BodyInfo:
    status_up: bool | None = None  # top-level "status" is one of UP_WORDS
    ready: bool | None = None  # top-level "is_ready"
    components: dict[str, bool] = field(default_factory=dict)
    pools: dict[str, PoolBlock] = field(default_factory=dict)  # by dotted path


def is_up_word(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in UP_WORDS
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _at(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def _components(raw: Any, limit: int) -> dict[str, bool]:
    """``components.<name>.status`` (or a bare status string); beyond ``limit``, one __other__
    that is up only if all the rest are."""
    if not isinstance(raw, dict):
        return {}
    found: list[tuple[str, bool]] = []
    for name, value in raw.items():
        status = value.get("status") if isinstance(value, dict) else value
        up = is_up_word(status)
        if up is not None and isinstance(name, str):
            found.append((name[:MAX_NAME_LENGTH] or "_", up))
    found.sort()
    out = dict(found[:limit])
    rest = [up for _, up in found[limit:]]
    if rest:
        out[OTHER] = all(rest)
    return out


def _pool(raw: Any) -> PoolBlock | None:
    if not isinstance(raw, dict):
        return None
    block = PoolBlock(**{name: _number(raw.get(name)) for name in
                         ("size", "max_overflow", "checked_out", "checked_in", "overflow")})
    return block if block != PoolBlock() else None


def interpret(doc: Any, pool_paths: tuple[str, ...] = ("pool",), max_components: int = 20) -> BodyInfo:
    if not isinstance(doc, dict):
        return BodyInfo()
    ready = doc.get("is_ready")
    pools = {path: block for path in pool_paths if (block := _pool(_at(doc, path))) is not None}
    return BodyInfo(
        status_up=is_up_word(doc.get("status")),
        ready=ready if isinstance(ready, bool) else None,
        components=_components(doc.get("components"), max_components),
        pools=pools,
    )
