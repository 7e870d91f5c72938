"""Health probes against a real aiohttp application."""

from __future__ import annotations

import asyncio
import logging

import pytest

from collectors.base.samples import OTHER, Sample
from collectors.health.poller import HealthPoller
from collectors.health.snapshot import HealthSnapshot
from harness.servers import free_port
from monitor.core.scheduler import Scheduler
from tests.support import health_poller


def metric(samples: list[Sample], name: str, *labels: str) -> float | None:
    return {(s.name, s.labels): s.value for s in samples}.get((name, ("app", *labels)))


def poller(url: str, *paths: str, timeout: float = 1.0, **settings: object) -> HealthPoller:
    return health_poller(url, [(p, timeout) for p in paths], **settings)


async def test_healthy_app_with_seed_shapes_and_pool_block(app_url: str) -> None:
    p = poller(app_url, "/health", "/health/live", "/health/ready")
    s = (await p.poll()).samples()
    for path in ("/health", "/health/live", "/health/ready"):
        assert metric(s, "dbpulse_health_up", path) == 1
        assert metric(s, "dbpulse_health_reachable", path) == 1
        assert metric(s, "dbpulse_health_status_code", path) == 200
        assert metric(s, "dbpulse_health_body_status_up", path) == 1  # healthy, alive, ready
        duration = metric(s, "dbpulse_health_duration_seconds", path)
        assert duration is not None and duration > 0
        assert metric(s, "dbpulse_health_parse_errors_total", path) == 0
        assert metric(s, "dbpulse_health_body_too_large_total", path) == 0
    assert metric(s, "dbpulse_health_body_ready", "/health/ready") == 1
    assert metric(s, "dbpulse_health_body_ready", "/health") is None
    assert metric(s, "dbpulse_health_component_up", "/health/ready", "database") == 1
    assert metric(s, "dbpulse_health_component_up", "/health/ready", "redis") == 1
    assert metric(s, "dbpulse_app_pool_size", "pool") == 20
    assert metric(s, "dbpulse_app_pool_max_overflow", "pool") == 10
    assert metric(s, "dbpulse_app_pool_capacity", "pool") == 30
    assert metric(s, "dbpulse_app_pool_checked_out", "pool") == 24
    assert metric(s, "dbpulse_app_pool_checked_in", "pool") == 0
    assert metric(s, "dbpulse_app_pool_overflow", "pool") == 4
    assert metric(s, "dbpulse_app_pool_usage_ratio", "pool") == pytest.approx(0.8)
    await p.close()


async def test_not_ready_is_reachable_but_down_with_the_unhealthy_component(app_url: str) -> None:
    p = poller(app_url + "/down", "/health/ready")
    s = (await p.poll()).samples()
    assert metric(s, "dbpulse_health_up", "/health/ready") == 0
    assert metric(s, "dbpulse_health_reachable", "/health/ready") == 1
    assert metric(s, "dbpulse_health_status_code", "/health/ready") == 503
    assert metric(s, "dbpulse_health_body_ready", "/health/ready") == 0
    assert metric(s, "dbpulse_health_body_status_up", "/health/ready") == 0
    assert metric(s, "dbpulse_health_component_up", "/health/ready", "database") == 1
    assert metric(s, "dbpulse_health_component_up", "/health/ready", "redis") == 0
    await p.close()


async def test_refused_app_is_unreachable_without_status_code() -> None:
    p = poller(f"http://127.0.0.1:{free_port()}", "/health", "/health/ready")
    s = (await p.poll()).samples()
    for path in ("/health", "/health/ready"):
        assert metric(s, "dbpulse_health_up", path) == 0
        assert metric(s, "dbpulse_health_reachable", path) == 0
        assert metric(s, "dbpulse_health_status_code", path) is None
    await p.close()


async def test_hanging_endpoint_is_cut_at_its_timeout_and_others_still_report(app_url: str) -> None:
    p = poller(app_url, "/hang", "/together/a", "/together/b", "/slow", timeout=1.0)
    s = (await p.poll()).samples()
    # Probed concurrently: /together/a and /together/b answer only once both requests are in.
    assert metric(s, "dbpulse_health_up", "/together/a") == 1
    assert metric(s, "dbpulse_health_up", "/together/b") == 1
    assert metric(s, "dbpulse_health_reachable", "/hang") == 0
    assert metric(s, "dbpulse_health_up", "/hang") == 0
    assert (metric(s, "dbpulse_health_duration_seconds", "/hang") or 0) >= 1.0  # cut at its timeout, not before
    assert metric(s, "dbpulse_health_up", "/slow") == 1
    assert (metric(s, "dbpulse_health_duration_seconds", "/slow") or 0) >= 0.3  # the endpoint's own delay
    await p.close()


async def test_endpoint_timeout_is_kept_below_the_poll_timeout(app_url: str) -> None:
    p = health_poller(app_url, [("/hang", 30.0)], interval=1.0, timeout=0.5)
    assert p.endpoints[0].timeout == pytest.approx(0.45)
    s = (await p.poll()).samples()  # reported as unreachable, not cut off by the scheduler's bound
    assert metric(s, "dbpulse_health_reachable", "/hang") == 0
    assert (metric(s, "dbpulse_health_duration_seconds", "/hang") or 0) >= 0.45
    await p.close()


async def test_non_json_body_is_a_parse_error_and_huge_body_is_cut(app_url: str) -> None:
    p = poller(app_url, "/text", "/huge", max_body_bytes=65536)
    for polls in (1, 2):
        s = (await p.poll()).samples()
        assert metric(s, "dbpulse_health_up", "/text") == 1  # a 200 "OK" from a liveness route: it answered
        assert metric(s, "dbpulse_health_reachable", "/text") == 1
        assert metric(s, "dbpulse_health_parse_errors_total", "/text") == polls  # but JSON was expected
        assert metric(s, "dbpulse_health_body_status_up", "/text") is None
        assert metric(s, "dbpulse_health_up", "/huge") == 1  # answered 2xx, JSON too large to read
        assert metric(s, "dbpulse_health_status_code", "/huge") == 200
        assert metric(s, "dbpulse_health_body_too_large_total", "/huge") == polls
        assert metric(s, "dbpulse_health_parse_errors_total", "/huge") == 0
        assert metric(s, "dbpulse_health_body_status_up", "/huge") is None
    relaxed = health_poller(app_url, [("/text", 1.0)], json_body=False)
    s = (await relaxed.poll()).samples()
    assert metric(s, "dbpulse_health_parse_errors_total", "/text") == 0
    assert metric(s, "dbpulse_health_up", "/text") == 1
    await p.close()
    await relaxed.close()


async def test_what_is_not_a_health_response_says_its_status_and_where_it_redirects(
        app_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """nginx's welcome page (200, HTML) is not up; a 500 or a 302 is logged and shown with its status, a
    redirect with where it points (never its query), and neither is a parse error."""
    caplog.set_level(logging.INFO, logger="dbpulse.health")
    p = poller(app_url, "/nginx", "/error", "/moved")
    snap = await p.poll()
    await p.poll()  # a problem is logged once, not every poll
    s = snap.samples()
    for path, code in (("/nginx", 200), ("/error", 500), ("/moved", 302)):
        assert metric(s, "dbpulse_health_up", path) == 0, path
        assert metric(s, "dbpulse_health_reachable", path) == 1, path
        assert metric(s, "dbpulse_health_status_code", path) == code, path
    assert metric(s, "dbpulse_health_parse_errors_total", "/nginx") == 1
    assert metric(s, "dbpulse_health_parse_errors_total", "/error") == 0  # the status is the problem
    assert metric(s, "dbpulse_health_parse_errors_total", "/moved") == 0
    port = app_url.rsplit(":", 1)[1]
    expected = {
        "/nginx": "HTTP 200 OK, an HTML page (text/html): not a health response",
        "/error": "HTTP 500 Internal Server Error",
        "/moved": f"HTTP 302 Found, redirect to http://127.0.0.1:{port}/login",
    }
    assert {r.path: r.problem for r in snap.results} == expected
    assert sorted(r.message for r in caplog.records) == sorted(f"app {path}: {text}" for path, text in expected.items())
    assert "s3cret-state" not in caplog.text
    await p.close()


async def test_a_target_whose_endpoints_all_fail_is_polled_but_failing(app_url: str) -> None:
    """The poll ran (the source is up: dbpulse could probe), and the snapshot says every endpoint fails."""
    p = health_poller(app_url + "/broken")
    scheduler = Scheduler([p])
    await scheduler.poll_once(scheduler.states[0])
    state = scheduler.states[0]
    assert state.up
    assert isinstance(state.snapshot, HealthSnapshot)
    assert [r.path for r in state.snapshot.failing] == ["/health", "/health/live", "/health/ready"]
    assert {r.problem for r in state.snapshot.failing} == {"HTTP 500 Internal Server Error"}
    await scheduler.stop()


async def test_hanging_health_target_never_delays_another_source(app_url: str) -> None:
    hanging = health_poller(app_url, [("/hang", 5.0)], name="slowapp", interval=2.0, timeout=1.5)
    healthy = health_poller(app_url, [("/health", 1.0)], interval=0.5, timeout=0.4)
    scheduler = Scheduler([hanging, healthy])
    scheduler.start()
    by_target = {s.poller.target: s for s in scheduler.states}
    for _ in range(200):  # until the hanging endpoint is cut (at 0.9 x 1.5 s)
        if by_target["slowapp"].polls:
            break
        await asyncio.sleep(0.05)
    during = by_target["app"].polls  # both started together: these polls ran while the other hung
    await scheduler.stop()
    assert during >= 2, during
    assert by_target["app"].up and by_target["app"].errors == 0
    assert by_target["slowapp"].polls == 1 and by_target["slowapp"].up  # reported, not failed
    reachable = {(s.name, s.labels): s.value for s in by_target["slowapp"].samples}
    assert reachable[("dbpulse_health_reachable", ("slowapp", "/hang"))] == 0


async def test_components_beyond_the_limit_fold_into_other(app_url: str) -> None:
    p = poller(app_url, "/health/ready", max_components=1)
    s = (await p.poll()).samples()
    assert metric(s, "dbpulse_health_component_up", "/health/ready", "database") == 1
    assert metric(s, "dbpulse_health_component_up", "/health/ready", OTHER) == 1
    assert metric(s, "dbpulse_health_component_up", "/health/ready", "redis") is None
    await p.close()
