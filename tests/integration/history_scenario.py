"""A real PostgreSQL with a statement running, a real ``dbpulse run`` watching it with ``prometheus.url`` set,
and a real Prometheus scraping that dbpulse every second: what the history tests (Prometheus-drawn ranges)
share."""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from harness.prometheus import LocalPrometheus, PrometheusAPI
from tests.support import DbpulseProcess, eventually

TARGET = "main"
STATEMENT = "SELECT code FROM orders WHERE id = $1"


@dataclass
class Watched:
    svc: DbpulseProcess
    prometheus: LocalPrometheus
    queryid: int
    dsn: str

    @property
    def api(self) -> PrometheusAPI:
        return self.prometheus.client

    def answer(self, expr: str, attrs: dict[str, str]) -> list[list[float]]:
        """Prometheus's own answer to ``expr`` over the window a chart says it drew: each series' finite values."""
        start, end = attrs["data-window"].split()
        result = self.api.api("query_range", query=expr, start=start, end=end, step=attrs["data-step"])["result"]
        return [[float(v) for _, v in series["values"] if v not in ("NaN", "+Inf", "-Inf")] for series in result]

    def scraped_at(self, attrs: dict[str, str]) -> bool:
        """Did the last scrape before the chart's window end succeed?"""
        end = attrs["data-window"].split()[1]
        up = self.api.api("query", query='up{job="dbpulse"}', time=end)["result"]
        return bool(up) and up[0]["value"][1] == "1"


def drawn(values: str) -> list[list[float]]:
    """A chart's ``data-values``: its lines' values (``|`` between lines)."""
    return [[float(v) for v in line.split()] for line in values.split("|")]


def chart_attrs(page: str) -> dict[str, dict[str, str]]:
    """Every chart's attributes on a page, by its ``data-chart`` key."""
    out = {}
    for tag in re.findall(r'<svg class="chart"([^>]*)>', page):
        attrs = dict(re.findall(r'([a-z-]+)="([^"]*)"', tag))
        out[attrs["data-chart"]] = attrs
    return out


def _workload(dsn: str, stop: threading.Event) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        i = 0
        while not stop.is_set():
            conn.execute("SELECT code FROM orders WHERE id = %s", (i % 2000,)).fetchall()
            i += 1
            time.sleep(0.02)


def _prepare(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, code text NOT NULL)")
        conn.execute("INSERT INTO orders SELECT g, 'c' || g FROM generate_series(1, 2000) g")
        conn.execute("ANALYZE orders")
        conn.execute("SELECT pg_stat_statements_reset()")
        conn.execute("SELECT code FROM orders WHERE id = %s", (1,)).fetchall()


def _queryid(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT queryid FROM pg_stat_statements WHERE query = %s", (STATEMENT,)).fetchone()
    assert row is not None
    return int(row[0])




STEP_6H = 90  # the 6 h range's step at scrape_interval 1


def window_end() -> int:
    """Where the pages' 6 h window ends now (``history_query.window_for``)."""
    return math.floor(time.time() - 1) // STEP_6H * STEP_6H


@contextmanager
def watched(dsn: str, tmp_path: Path, samples: int = 8) -> Iterator[Watched]:
    """Running until the statement's series has ``samples`` scrapes in Prometheus; the workload goes on meanwhile."""
    _prepare(dsn)
    queryid = _queryid(dsn)
    config = tmp_path / "dbpulse.yaml"
    svc = DbpulseProcess("--config", str(config), "--postgres", f"{TARGET}={dsn}", "--interval", "1",
                         "--advisor-interval", "0", log_dir=tmp_path)
    (tmp_path / "prom").mkdir()
    prometheus = LocalPrometheus([f"127.0.0.1:{svc.port}"], [], scrape_interval=1.0, workdir=tmp_path / "prom")
    config.write_text(f"prometheus:\n  url: {prometheus.client.url}\n  scrape_interval: 1\n"
                      "  labels: {job: dbpulse}\n")
    stop = threading.Event()
    worker = threading.Thread(target=_workload, args=(dsn, stop), daemon=True)
    worker.start()
    try:
        svc.start(timeout=90)  # a loaded machine (CI) may take a while to import and poll once
        with svc, prometheus:
            series = f'dbpulse_pg_statement_calls_total{{target="{TARGET}", queryid="{queryid}"}}'
            eventually(lambda: prometheus.client.query(f"count_over_time({series}[1m]) >= {samples}"), 60,
                       f"{samples} scrapes of {series}")
            size = f'dbpulse_pg_table_size_bytes{{target="{TARGET}", table="orders"}}'
            # sizes are read apart from the statistics: a few scrapes of them too
            eventually(lambda: prometheus.client.query(f"count_over_time({size}[1m]) >= 3"), 60, f"3 scrapes of {size}")
            # The pages' 6 h window ends on a multiple of its step (90 s): wait until it holds those scrapes too.
            for expr, count in ((series, samples), (size, 3)):
                eventually(lambda e=expr, c=count: prometheus.client.query(
                    f"count_over_time({e}[1m] @ {window_end()}) >= {c}"), 150, f"{count} scrapes of {expr} inside the "
                    f"6 h window")
            yield Watched(svc, prometheus, queryid, dsn)
    finally:
        stop.set()
        worker.join(10)
