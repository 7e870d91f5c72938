"""The statement page's 6 h range in a real headless Chromium: a real Prometheus scrapes a real ``dbpulse run``
watching a real PostgreSQL. The chart is drawn from Prometheus, its points those Prometheus answers to the
dashboards' PromQL; with Prometheus stopped, the page falls back to the hour in memory and says so."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.web.detail import statement_path
from tests.integration.history_scenario import TARGET, Watched, drawn, watched
from tests.web.chromium import Browser, CdpPage

pytestmark = pytest.mark.slow

READ = """(function () {
  var svg = document.querySelector('svg.chart[data-chart="calls"]');
  var nav = document.querySelector('nav.ranges a[aria-current="page"]');
  var note = document.getElementById('history-fallback');
  return {attrs: {"data-source": svg.getAttribute('data-source'), "data-window": svg.getAttribute('data-window'),
                  "data-step": svg.getAttribute('data-step'), "data-values": svg.getAttribute('data-values'),
                  "data-points": svg.getAttribute('data-points')},
          polylines: svg.querySelectorAll('.series').length,
          caption: document.getElementById('charts-from').textContent,
          selected: nav ? nav.textContent : null,
          note: note ? note.textContent : null};
})()"""


@pytest.fixture
def scene(fresh_db: str, tmp_path: Path) -> Iterator[Watched]:
    with watched(fresh_db, tmp_path) as w:
        yield w


def test_statement_page_six_hours_from_prometheus_then_from_memory_when_it_stops(scene: Watched) -> None:
    path = "/" + statement_path(TARGET, scene.queryid)
    scene.svc.wait_for_page(path, 'data-chart="calls"')

    async def read(page: CdpPage) -> Any:
        return await page.evaluate(READ)

    # Clicking the range selector's "6 h", as a user does.
    async def six_hours(page: CdpPage) -> Any:
        await page.click('nav.ranges a[href="?range=6h"]')
        for _ in range(100):
            if await page.evaluate("location.search") == "?range=6h" and \
                    await page.evaluate("document.readyState") == "complete":
                break
            await asyncio.sleep(0.1)
        return await read(page)

    shown = Browser().run(scene.svc.base + path, six_hours)
    attrs = shown["attrs"]
    assert attrs["data-source"] == "prometheus" and shown["selected"] == "6 h" and shown["note"] is None, shown
    assert shown["caption"].startswith(f"Charts: the last 6 h from Prometheus at {scene.api.url}")
    sel = f'{{job="dbpulse", target="{TARGET}", queryid="{scene.queryid}"}}'
    answer = scene.answer(f"rate(dbpulse_pg_statement_calls_total{sel}[91s])", attrs)
    assert answer and answer[0] and drawn(attrs["data-values"]) == answer
    assert int(attrs["data-points"]) == len(answer[0]) and shown["polylines"] >= 1

    # The main page at 6 h: its script's refreshes (ui/sections) keep the range.
    async def refreshed(page: CdpPage) -> Any:
        for _ in range(300):
            if int(await page.evaluate("document.documentElement.getAttribute('data-refreshes') || 0")) >= 2:
                break
            await asyncio.sleep(0.1)
        return await page.evaluate("[document.documentElement.getAttribute('data-refreshes'), "
                                   "document.querySelector('svg.chart[data-chart$=\":tps\"]').getAttribute('data-source'),"
                                   " document.getElementById('charts-from').textContent]")

    refreshes, source, caption = Browser().run(scene.svc.base + "/?range=6h", refreshed)
    assert int(refreshes) >= 2 and source == "prometheus" and caption.startswith("Charts: the last 6 h from Prometheus")

    scene.prometheus.stop()  # 24 h: not asked before (6 h's answer is kept until its window moves by a step)
    fallback = Browser().run(scene.svc.base + path + "?range=24h", read)
    note = fallback["note"]
    assert note.startswith(f"Prometheus at {scene.api.url} could not be reached (") and \
        note.endswith("); showing the last hour kept in memory."), fallback
    assert fallback["attrs"]["data-source"] == "memory" and fallback["selected"] == "24 h"
    assert fallback["caption"] == "Charts: the last hour kept in memory."
    assert int(fallback["attrs"]["data-points"]) > 0  # the ring still draws
