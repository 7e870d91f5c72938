"""The main page's trend charts in a real headless Chromium, against real PostgreSQL, Redis and an app.

After a few polls every chart has points; when Redis is stopped its charts show the
gap (a shaded span, the line broken) and the section says the source is down instead
of presenting the last numbers as current. Screenshots are kept under artifacts/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from harness.servers import LocalRedis
from tests.support import DbpulseProcess, StandInApp
from tests.web.chromium import dump_dom, screenshot

CHART = re.compile(r'<svg class="chart"[^>]*data-chart="([^"]+)" data-points="(\d+)" data-gaps="(\d+)"')
EXPECTED = {
    "postgres:shop": {"cache-hit", "tps", "connections", "app-pools", "lock-waits"},
    "redis:cache": {"hit-ratio", "memory", "ops", "evictions"},
    "health:app": {"up", "latency", "pool-pool"},
}


def charts(html: str) -> dict[str, tuple[int, int]]:
    """chart key -> (points drawn, gaps drawn)."""
    return {key: (int(points), int(gaps)) for key, points, gaps in CHART.findall(html)}


def _poll_page(svc: DbpulseProcess, ok: Callable[[dict[str, tuple[int, int]]], bool],
               timeout: float = 30) -> dict[str, tuple[int, int]]:
    deadline = time.monotonic() + timeout
    found: dict[str, tuple[int, int]] = {}
    while time.monotonic() < deadline:
        status, body = svc.get("/ui/sections")
        found = charts(body.decode())
        if status == 200 and ok(found):
            return found
        time.sleep(0.5)
    raise AssertionError(f"charts not as expected within {timeout} s: {found}\n{svc.log}")


def every_chart_has_points(found: dict[str, tuple[int, int]]) -> bool:
    """Three polls drawn on every chart (two for rates); Redis' hit ratio needs lookups, which nothing makes."""
    keys = {f"{source}:{name}" for source, names in EXPECTED.items() for name in names} - {"redis:cache:hit-ratio"}
    rates = {"postgres:shop:tps", "redis:cache:ops", "redis:cache:evictions"}
    return all(found.get(k, (0, 0))[0] >= (2 if k in rates else 3) for k in keys)


def test_charts_fill_and_show_a_stopped_source_as_a_gap(fresh_db: str, stand_in_app: StandInApp,
                                                          tmp_path: Path) -> None:
    config = tmp_path / "dbpulse.yaml"
    config.write_text("postgres:\n  app_pools:\n    - application_name: dbpulse\n      capacity: 4\n")
    cache = LocalRedis()
    cache.start()
    try:
        with DbpulseProcess("--config", str(config), "--postgres", f"shop={fresh_db}", "--redis",
                            f"cache={cache.url()}", "--health-url", f"app={stand_in_app.url}",
                            "--interval", "1", "--advice-interval", "0") as svc:
            found = _poll_page(svc, every_chart_has_points)
            for source, names in EXPECTED.items():
                for name in names:
                    assert f"{source}:{name}" in found, (source, name, sorted(found))
            assert all(gaps == 0 for _, gaps in found.values()), found

            # In the browser: the charts are SVG elements with lines, captions with units and current values.
            dom = dump_dom(svc.base + "/")
            assert dom.count('<svg class="chart"') == len(found)
            assert "<polyline" in dom
            assert re.search(r'<span class="chart-title">Cache hit ratio</span> <span class="now">\d+\.\d %', dom)
            assert 'class="threshold"' in dom and "alert PostgresCacheHitRatioLow" in dom
            assert "max_connections" in dom
            screenshot(svc.base + "/", "ui-trends.png")

            cache.stop()
            svc.wait_for("dbpulse_source_up", 0, source="redis", target="cache")
            after = _poll_page(svc, lambda f: f.get("redis:cache:memory", (0, 0))[1] >= 1)
            assert after["redis:cache:memory"][1] >= 1 and after["redis:cache:ops"][1] >= 1
            assert after["postgres:shop:cache-hit"][1] == 0  # the others are untouched
            dom = dump_dom(svc.base + "/")
            redis_part = dom.split('id="redis-cache"', 1)[1].split("</section>", 1)[0]
            assert '<rect class="gap"' in redis_part
            assert "down: " in redis_part and "the charts show the gap" in redis_part
            screenshot(svc.base + "/#redis-cache", "ui-trends-redis-down.png")
    finally:
        cache.cleanup()
