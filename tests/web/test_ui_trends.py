"""The main page's trend charts and sortable tables in a real headless Chromium, against real servers.

After a few polls every chart has points; when Redis is stopped its charts show the
gap (a shaded span, the line broken) and the section says the source is down instead
of presenting the last numbers as current. Screenshots are kept under artifacts/.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from harness.servers import LocalRedis
from tests.support import DbpulseProcess, StandInApp
from tests.web.chromium import Browser, CdpPage, dump_dom, element_screenshot, screenshot

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
            # the current value in the caption, in the chart's unit (the cache hit ratio of an idle interval is "-")
            assert re.search(r'<span class="chart-title">Response time</span> <span class="now">[^<]*\d ms', dom)
            hit_caption = r'<span class="chart-title">Cache hit ratio</span> <span class="now">(\d+\.\d %|\u2013)<'
            assert re.search(hit_caption, dom)
            assert re.search(r'<text class="axis"[^>]*>100.0 %</text>', dom)  # axes carry units
            assert 'class="threshold"' in dom and "alert PostgresCacheHitRatioLow" in dom
            assert "max_connections" in dom
            screenshot(svc.base + "/", "ui-trends.png")

            cache.stop()
            svc.wait_for("dbpulse_source_up", 0, source="redis", target="cache")
            after = _poll_page(svc, lambda f: f.get("redis:cache:memory", (0, 0))[1] >= 1)
            assert after["redis:cache:memory"][1] >= 1 and after["redis:cache:ops"][1] >= 1
            assert after["postgres:shop:cache-hit"][1] == 0, svc.log  # the others are untouched
            dom = dump_dom(svc.base + "/")
            redis_part = dom.split('id="redis-cache"', 1)[1].split("</section>", 1)[0]
            assert '<rect class="gap"' in redis_part
            assert "down: " in redis_part and "the charts show the gap" in redis_part
            shot = element_screenshot(svc.base + "/", "redis-cache", "ui-trends-redis-down.png")
            assert shot.stat().st_size > 20_000  # a drawn section, not a blank page
    finally:
        cache.cleanup()


def test_main_page_tables_sort_by_keyboard_and_stay_sorted_across_refreshes(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY)")
        for n in range(1, 6):  # five statements (one more condition each) with 1..5 calls: the order is known
            for _ in range(n):
                conn.execute("SELECT id FROM items WHERE id = %s" + " AND id >= %s" * (n - 1),  # type: ignore[arg-type]
                             (n,) * n)
    with DbpulseProcess("--postgres", f"shop={fresh_db}", "--interval", "2", "--advice-interval", "0") as svc:
        svc.wait_for("dbpulse_source_up", 1, source="postgres", target="shop")
        table = "document.querySelector('table.statements')"
        calls = (f"Array.from({table}.tBodies[0].rows).map(r => r.classList.contains('pinned') ? 'pinned' "
                 ": Number(r.cells[2].getAttribute('data-value')))")

        async def sort_then_refresh(page: CdpPage) -> list[Any]:
            await _until(page, "document.documentElement.getAttribute('data-ui') === 'ready'")
            await page.evaluate(f"{table}.tHead.rows[0].cells[2].querySelector('button').focus()")
            await page.press("Enter")
            seen = [await page.evaluate(calls), await page.evaluate(f"{table}.tHead.rows[0].cells[2].ariaSort")]
            refreshed = int(await page.evaluate("document.documentElement.getAttribute('data-refreshes')") or 0)
            await _until(page, f"Number(document.documentElement.getAttribute('data-refreshes')) > {refreshed}")
            seen += [await page.evaluate(calls), await page.evaluate(f"{table}.tHead.rows[0].cells[2].ariaSort")]
            return seen

        before, sort_before, after, sort_after = Browser().run(svc.base + "/", sort_then_refresh)
    for order in (before, after):
        numbers = [c for c in order if c != "pinned"]
        assert numbers == sorted(numbers) and len(numbers) >= 5, order
        assert "pinned" not in order or order[-1] == "pinned", order  # __other__ stays last
    assert sort_before == sort_after == "ascending"


async def _until(page: CdpPage, condition: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await page.evaluate(f"Boolean({condition})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {condition}")
        await asyncio.sleep(0.2)
