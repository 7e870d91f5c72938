"""History from Prometheus against real parts: a real Prometheus scrapes a real ``dbpulse run`` watching a real
PostgreSQL; the statement and table pages' 6 h range must draw exactly what Prometheus answers to the dashboards'
PromQL over the same window. A Prometheus that is not there (a closed port) or never answers (a socket that
accepts and stays silent) leaves the page on the hour kept in memory, saying so."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from harness.servers import free_port
from monitor.web.detail import statement_path, table_path
from tests.integration.history_scenario import TARGET, Watched, chart_attrs, drawn, watched
from tests.support import DbpulseProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def scene(fresh_db: str, tmp_path: Path) -> Iterator[Watched]:
    with watched(fresh_db, tmp_path) as w:
        yield w


def test_ranges_are_drawn_from_prometheus_exactly(scene: Watched) -> None:
    svc, q = scene.svc, scene.queryid
    # The default range is the ring, as without Prometheus; the ranges are offered.
    page = svc.wait_for_page("/" + statement_path(TARGET, q), 'data-chart="calls"')
    assert chart_attrs(page)["calls"]["data-source"] == "memory"
    assert 'href="?range=6h"' in page and "Charts: the last hour kept in memory." in page

    status, raw = svc.get("/" + statement_path(TARGET, q) + "?range=6h")
    page = raw.decode()
    assert status == 200 and 'id="history-fallback"' not in page, page[:3000]
    assert f"from Prometheus at {scene.api.url}, a point every 90 s." in page
    charts = chart_attrs(page)
    sel = f'{{job="dbpulse", target="{TARGET}", queryid="{q}"}}'
    calls = f"rate(dbpulse_pg_statement_calls_total{sel}[91s])"
    expected = {"calls": calls,
                "mean": f"rate(dbpulse_pg_statement_exec_seconds_total{sel}[91s]) / {calls}",
                "rows": f"rate(dbpulse_pg_statement_rows_total{sel}[91s]) / {calls}"}
    for key, expr in expected.items():
        attrs = charts[key]
        assert attrs["data-source"] == "prometheus" and attrs["data-step"] == "90", attrs
        start, end = (int(t) for t in attrs["data-window"].split())
        assert end - start == 6 * 3600
        answer = scene.answer(expr, attrs)
        assert answer and answer[0], f"Prometheus has no {key} point in the window: {attrs}"
        assert drawn(attrs["data-values"]) == answer, key
        assert int(attrs["data-points"]) == len(answer[0])
    assert drawn(charts["calls"]["data-values"])[0][-1] > 1  # the workload runs tens of calls a second
    # one row per call, as Prometheus computes it: rate() extrapolates each counter over its own first and last
    # samples in the window, so the ratio of two series is 1 only to within that (0.9995 seen in CI)
    assert drawn(charts["rows"]["data-values"])[0][-1] == pytest.approx(1.0, rel=0.01)

    # The table page: a gauge (size) and two rates on one chart (sequential and index scans). At 6 h: the
    # scenario's scrapes are inside its window (a 24 h window ends on a multiple of 6 min, before them).
    status, raw = svc.get("/" + table_path(TARGET, "public", "orders") + "?range=6h")
    charts = chart_attrs(raw.decode())
    sel = f'{{job="dbpulse", target="{TARGET}", schema="public", table="orders"'
    size = scene.answer(f"dbpulse_pg_table_size_bytes{sel}}}", charts["size"])
    assert charts["size"]["data-step"] == "90"
    # A gauge's newest point (the window's end) is missing when the scrape just before failed (Prometheus marks every
    # series stale then; a loaded machine misses a 1 s scrape now and then): it must then be missing on both sides.
    assert size or not scene.scraped_at(charts["size"]), charts["size"]
    assert drawn(charts["size"]["data-values"]) == (size or [[]])
    assert not size or size[0][-1] > 8192
    scans = [scene.answer(f"rate(dbpulse_pg_table_{kind}_scans_total{sel}}}[91s])", charts["scans"])[0]
             for kind in ("seq", "index")]
    assert drawn(charts["scans"]["data-values"]) == scans and scans[1][-1] > 0

    # The main page: each source's declared charts, the same lines the ring draws (a counter per second, lines
    # added up per label value) from the dashboards' series.
    datname = scene.dsn.rsplit("/", 1)[1]
    status, raw = svc.get("/?range=6h")
    page = raw.decode()
    assert 'id="history-fallback"' not in page and 'aria-current="page">6 h</a>' in page
    charts = chart_attrs(page)
    sel = f'job="dbpulse", target="{TARGET}"'
    tps = scene.answer(f'sum(rate(dbpulse_pg_database_xact_commit_total{{{sel}, datname="{datname}"}}[91s])) + '
                       f'sum(rate(dbpulse_pg_database_xact_rollback_total{{{sel}, datname="{datname}"}}[91s]))',
                       charts[f"postgres:{TARGET}:tps"])
    tps_drawn = drawn(charts[f"postgres:{TARGET}:tps"]["data-values"])
    assert len(tps) == len(tps_drawn) == 1 and tps[0][-1] > 1 and tps_drawn[0] == pytest.approx(tps[0], rel=1e-12)
    connections = charts[f"postgres:{TARGET}:connections"]
    by_state = scene.answer(f"sum by (state) (dbpulse_pg_connections{{{sel}}})", connections)
    assert by_state or not scene.scraped_at(connections), connections
    assert drawn(connections["data-values"]) == (by_state or [[]])  # states in label order
    assert all(c["data-source"] == "prometheus" for c in charts.values())
    status, raw = svc.get("/ui/sections?range=6h")  # what the page's script re-fetches keeps the range
    refreshed = chart_attrs(raw.decode())[f"postgres:{TARGET}:tps"]
    assert refreshed["data-source"] == "prometheus"
    # the refresh asks Prometheus again only if its window moved by a step since the page (else the kept answer)
    moved = refreshed["data-window"] != charts[f"postgres:{TARGET}:tps"]["data-window"]
    assert moved or refreshed["data-values"] == charts[f"postgres:{TARGET}:tps"]["data-values"]

    svc.wait_for("dbpulse_history_reads_total", 3 + moved, target=TARGET)  # read with the process metrics
    assert svc.value("dbpulse_history_read_failures_total", target=TARGET) == 0


def _statement_seen(svc: DbpulseProcess, dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int)")
        conn.execute("SELECT pg_stat_statements_reset()")
        conn.execute("SELECT count(*) FROM t").fetchall()
        queryid = conn.execute("SELECT queryid FROM pg_stat_statements WHERE query = 'SELECT count(*) FROM t'"
                               ).fetchone()
    assert queryid is not None
    path = "/" + statement_path(TARGET, int(queryid[0]))
    svc.wait_for_page(path, 'data-chart="calls"')
    return path


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A port that accepts connections (the kernel completes them) and never answers a byte."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


@pytest.mark.parametrize("case", ["silent", "closed"])
def test_prometheus_silent_or_down_falls_back_to_memory_and_says_so(fresh_db: str, blackhole: int,
                                                                    case: str) -> None:
    port = blackhole if case == "silent" else free_port()
    with DbpulseProcess("--postgres", f"{TARGET}={fresh_db}", "--interval", "1", "--advisor-interval", "0",
                        "--prometheus-url", f"http://127.0.0.1:{port}") as svc:
        path = _statement_seen(svc, fresh_db)
        started = time.monotonic()
        status, raw = svc.get(path + "?range=7d")
        elapsed = time.monotonic() - started
        page = raw.decode()
        assert status == 200
        why = "did not answer within 2 s" if case == "silent" else "could not be reached"
        assert f'id="history-fallback">Prometheus at http://127.0.0.1:{port} {why}' in page, page[:4000]
        assert "; showing the last hour kept in memory.</p>" in page
        assert chart_attrs(page)["calls"]["data-source"] == "memory"
        assert 'aria-current="page">7 d</a>' in page  # the range asked for stays selected
        svc.wait_for("dbpulse_history_read_failures_total", 1, target=TARGET)
        print(f"{case}: statement page with the fallback in {elapsed:.2f} s")

        status, raw = svc.get("/?range=24h")  # the main page too
        page = raw.decode()
        assert f'id="history-fallback">Prometheus at http://127.0.0.1:{port} {why}' in page, page[:4000]
        assert chart_attrs(page)[f"postgres:{TARGET}:tps"]["data-source"] == "memory"
        svc.wait_for("dbpulse_history_read_failures_total", 2, target=TARGET)
