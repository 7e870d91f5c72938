"""What one round of health probes saw, and how it becomes samples."""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.base.chain import AppPool
from collectors.base.samples import Sample, SampleList
from collectors.health.body import PoolBlock
from collectors.health.probe import ProbeResult


def _flag(value: bool | None) -> float | None:
    return None if value is None else float(value)


@dataclass
class HealthSnapshot:
    target: str
    results: list[ProbeResult]
    parse_errors: dict[str, int]  # cumulative per endpoint path
    oversized: dict[str, int]
    pools: dict[str, PoolBlock] = field(default_factory=dict)  # by dotted path in the body

    def links(self) -> list[AppPool]:
        """The application's pools, for views that join sources (the PgBouncer pool chain)."""
        return [AppPool(self.target, path, pool.checked_out, pool.capacity)
                for path, pool in sorted(self.pools.items())]

    @property
    def failing(self) -> list[ProbeResult]:
        """The endpoints that are not up: the poll ran, but the application is not (all) healthy."""
        return [r for r in self.results if not r.up]

    def samples(self) -> list[Sample]:
        out = SampleList(target=self.target)
        for r in self.results:
            ep = {"endpoint": r.path}
            out.add("dbpulse_health_up", float(r.up), **ep)
            out.add("dbpulse_health_reachable", float(r.reachable), **ep)
            out.add("dbpulse_health_status_code", r.status_code, **ep)
            out.add("dbpulse_health_duration_seconds", r.duration, **ep)
            out.add("dbpulse_health_parse_errors_total", self.parse_errors.get(r.path, 0), **ep)
            out.add("dbpulse_health_body_too_large_total", self.oversized.get(r.path, 0), **ep)
            if r.body is not None:
                out.add("dbpulse_health_body_status_up", _flag(r.body.status_up), **ep)
                out.add("dbpulse_health_body_ready", _flag(r.body.ready), **ep)
                for component, up in sorted(r.body.components.items()):
                    out.add("dbpulse_health_component_up", float(up), **ep, component=component)
        for path, pool in sorted(self.pools.items()):
            labels = {"pool": path}
            capacity = pool.capacity
            out.add("dbpulse_app_pool_size", pool.size, **labels)
            out.add("dbpulse_app_pool_max_overflow", pool.max_overflow, **labels)
            out.add("dbpulse_app_pool_checked_out", pool.checked_out, **labels)
            out.add("dbpulse_app_pool_checked_in", pool.checked_in, **labels)
            out.add("dbpulse_app_pool_overflow", pool.overflow, **labels)
            out.add("dbpulse_app_pool_capacity", capacity, **labels)
            if capacity and pool.checked_out is not None:
                out.add("dbpulse_app_pool_usage_ratio", pool.checked_out / capacity, **labels)
        return out.samples
