"""The ``pool`` block an application adds to its health endpoint, read by dbpulse's health probes.

    from monitor.sqlalchemy_pool import pool_status

    @app.get("/health/ready")
    async def ready():
        result = await health_service.check_all()
        result["pool"] = pool_status(engine)  # the one line
        return JSONResponse(result, status_code=200 if result["is_ready"] else 503)

Works with an ``Engine`` or an ``AsyncEngine``; it only reads counters the pool
keeps in memory, so it never opens a connection nor waits for one.
"""

from __future__ import annotations

from typing import Any, Protocol


class _HasPool(Protocol):
    @property
    def pool(self) -> Any: ...


def pool_status(engine: _HasPool) -> dict[str, int]:
    """``size``, ``max_overflow``, ``checked_out``, ``checked_in``, ``overflow`` of the engine's pool.

    ``overflow`` counts connections open beyond ``size`` (SQLAlchemy's own
    ``overflow()`` is negative until the pool is full). ``max_overflow`` is -1
    when unlimited. Pools without a fixed size (NullPool, StaticPool...)
    report ``size`` 0 and whatever counters they have.
    """
    pool = engine.pool
    size = _call(pool, "size")
    checked_out = _call(pool, "checkedout")
    checked_in = _call(pool, "checkedin")
    raw_overflow = _call(pool, "overflow")
    max_overflow = getattr(pool, "_max_overflow", None)  # QueuePool has no public accessor
    out = {
        "size": size or 0,
        "max_overflow": int(max_overflow) if isinstance(max_overflow, int) else 0,
        "checked_out": checked_out or 0,
        "checked_in": checked_in or 0,
        "overflow": max(0, raw_overflow or 0),
    }
    return out


def _call(pool: Any, name: str) -> int | None:
    method = getattr(pool, name, None)
    if not callable(method):
        return None
    try:
        value = method()
    except Exception:  # a health endpoint must not fail because of its pool report
        return None
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None
