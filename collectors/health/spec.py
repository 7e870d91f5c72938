"""The application's health endpoints as a registered source (``collectors/base/spec.py``)."""

from __future__ import annotations

from collectors.base.settings import named_url
from collectors.base.spec import ChartSpec, Degraded, Flag, SourceSpec
from collectors.health.poller import pollers
from collectors.health.settings import HealthSettings
from collectors.health.snapshot import HealthSnapshot

CHARTS = (
    ChartSpec("up", "Endpoints up", "count", "dbpulse_health_up", label="endpoint"),
    ChartSpec("latency", "Response time", "seconds", "dbpulse_health_duration_seconds", label="endpoint",
              threshold="AppHealthSlow"),
    ChartSpec("pool-{value}", "App pool {value}: checked out", "count", "dbpulse_app_pool_checked_out",
              line="checked out", each="pool", threshold="AppPoolNearCapacity", relative=True,
              ceiling="dbpulse_app_pool_capacity", ceiling_label="capacity"),
)


def degraded(snap: HealthSnapshot) -> Degraded | None:
    """Endpoints that fail while the probe itself worked: an application is not "up" because it answered."""
    failing = snap.failing
    if not failing:
        return None
    return Degraded(len(failing), len(snap.results), " · ".join(f"{r.path}: {r.problem}" for r in failing))


SPEC = SourceSpec(
    name="health", title="health", order=2, settings=HealthSettings, pollers=pollers, snapshot=HealthSnapshot,
    flags=(Flag("--health-url", "[NAME=]BASE_URL", "application base URL whose /health, /health/live and "
                "/health/ready to probe (repeatable; paths, headers and timeouts in the config file)",
                convert=named_url),),
    charts=CHARTS, degraded=degraded, links=HealthSnapshot.links,
    rule_groups=("dbpulse.app",), dashboards=("application",),  # the application its endpoints belong to
)
