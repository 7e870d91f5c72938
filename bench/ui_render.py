"""Benchmark 7: the web UI's main page with 100 statements and a full hour of history.

A throwaway PostgreSQL runs 100 distinct statements (plus Redis); dbpulse's real
pollers read them once, and each source's history ring is then filled to its
capacity (an hour at a 15 s interval: 241 polls) from those samples, the
counters growing poll by poll. The main page is rendered in process, as the
handler does, ``--renders`` times: server time per render, median and p95.

The comparison in the same run: the same snapshots with an empty history (the
page before charts existed), as a ratio. No peer serves such a page: PgHero's
charts need its own database of history; dbpulse keeps it in memory.

Memory: the bytes the history rings hold when full (``tracemalloc``), for the
main page's series and for 100 statements x 3 series x 241 points, which the
statement pages draw.

Usage: .venv/bin/python -m bench.ui_render [--statements 100] [--renders 200]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import tracemalloc
from pathlib import Path
from typing import Any

import psycopg

from bench import common, report
from collectors.base.samples import Sample
from collectors.postgres import poller as postgres
from collectors.postgres.settings import PostgresSettings
from collectors.redis import poller as redis
from collectors.redis.settings import RedisSettings
from harness.servers import LocalPostgres, LocalRedis
from monitor.core.history import History, capacity_for
from monitor.core.scheduler import Scheduler
from monitor.web import pages, trends

TARGET_MS = 50.0
INTERVAL = 15.0
HISTORY_SECONDS = 3600.0
STATEMENT_SERIES = ("dbpulse_pg_statement_calls_total", "dbpulse_pg_statement_exec_seconds_total",
                    "dbpulse_pg_statement_rows_total")


def workload(dsn: str, statements: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(statements):
            conn.execute(f"CREATE TABLE IF NOT EXISTS t{i} (id int PRIMARY KEY, v int)")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")
        for i in range(statements):
            for k in range(3):
                conn.execute(f"SELECT v FROM t{i} WHERE id = %s", (k,))


def grown(samples: list[Sample], step: int) -> list[Sample]:
    """The samples as they might read ``step`` polls later: counters grow, gauges wobble."""
    return [Sample(s.name, s.labels, s.value * (1 + 0.01 * step) if s.name.endswith("_total")
                   else s.value * (1 + 0.001 * (step % 7))) for s in samples]


def fill(scheduler: Scheduler) -> None:
    now = time.time()
    for state in scheduler.states:
        capacity = state.history.capacity
        for step in range(capacity):
            state.history.record(now - (capacity - step) * INTERVAL, grown(state.samples, step))


def render_ms(scheduler: Scheduler, renders: int) -> list[float]:
    out = []
    for _ in range(renders):
        started = time.perf_counter()
        pages.render_index(scheduler)
        out.append((time.perf_counter() - started) * 1000)
    return out


def history_bytes(samples: list[Sample], names: tuple[str, ...]) -> tuple[int, int]:
    """(bytes held, series) by one full ring of ``samples`` restricted to ``names``."""
    capacity = capacity_for(HISTORY_SECONDS, INTERVAL)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    history = History(capacity, names)
    for step in range(capacity):
        history.record(float(step), grown(samples, step))
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    held = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    return held, history.series_count


async def snapshots(pg: LocalPostgres, cache: LocalRedis, recorded: tuple[str, ...]) -> Scheduler:
    pg_settings = PostgresSettings.model_validate({"interval": INTERVAL, "targets": [
        {"name": "shop", "dsn": pg.dsn("postgres")}]})
    redis_settings = RedisSettings.model_validate({"interval": INTERVAL, "targets": [
        {"name": "cache", "url": cache.url()}]})
    scheduler = Scheduler([*postgres.pollers(pg_settings), *redis.pollers(redis_settings)],
                          history_seconds=HISTORY_SECONDS, recorded=recorded)
    for _ in range(2):  # the second poll has rates and ratios
        for state in scheduler.states:
            await scheduler.poll_once(state)
    for state in scheduler.states:
        await state.poller.close()
    return scheduler


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--statements", type=int, default=100)
    parser.add_argument("--renders", type=int, default=200)
    parser.add_argument("--results-dir", type=Path, default=None, help="default bench/results")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    common.dbpulse_version()
    recorded = (*trends.RECORDED, *STATEMENT_SERIES)
    with LocalPostgres() as pg, LocalRedis() as cache:
        workload(pg.dsn("postgres"), args.statements)
        scheduler = asyncio.run(snapshots(pg, cache, recorded))
    pg_state = next(s for s in scheduler.states if s.poller.source == "postgres")
    if any(not s.up for s in scheduler.states):
        raise SystemExit(f"a source did not poll: {[(s.key, s.last_error) for s in scheduler.states]}")
    statements = sum(1 for s in pg_state.samples if s.name == "dbpulse_pg_statement_calls_total")
    render_ms(scheduler, 5)  # warm-up: template compilation
    empty = render_ms(scheduler, args.renders)
    fill(scheduler)
    full = render_ms(scheduler, args.renders)
    page_bytes = len(pages.render_index(scheduler).encode())
    charts = pages.render_index(scheduler).count('<svg class="chart"')
    main_bytes, main_series = history_bytes(pg_state.samples, trends.RECORDED)
    statement_bytes, statement_series = history_bytes(pg_state.samples, STATEMENT_SERIES)
    median_full, median_empty = common.median(full), common.median(empty)
    result = {
        "benchmark": "ui_render", "when": time.strftime("%Y-%m-%d %H:%M"), "machine": common.machine(),
        "versions": {"dbpulse": common.dbpulse_version()},
        "params": {"statements": args.statements, "renders": args.renders, "interval": INTERVAL,
                   "history_seconds": HISTORY_SECONDS, "points": capacity_for(HISTORY_SECONDS, INTERVAL)},
        "statements_exported": statements,
        "charts": charts, "page_bytes": page_bytes,
        "render_ms": {"full": {"median": median_full, "p95": common.percentile(full, 95)},
                      "empty": {"median": median_empty, "p95": common.percentile(empty, 95)}},
        "charts_cost_ratio": median_full / median_empty if median_empty else None,
        "history": {"main_page": {"bytes": main_bytes, "series": main_series},
                    "statements": {"bytes": statement_bytes, "series": statement_series}},
        "target": {"what": f"main page renders in <= {TARGET_MS:g} ms (median) with {args.statements} "
                   "statements and a full buffer", "met": median_full <= TARGET_MS},
    }
    common.print_table(["history", "median ms", "p95 ms"],
                       [["full", f"{median_full:.2f}", f"{result['render_ms']['full']['p95']:.2f}"],
                        ["empty", f"{median_empty:.2f}", f"{result['render_ms']['empty']['p95']:.2f}"]])
    print(f"{charts} charts, page {page_bytes:,} bytes; history: main page {main_bytes:,} B in {main_series} "
          f"series, statements {statement_bytes:,} B in {statement_series} series")
    report.publish("ui_render", result, args.results_dir, docs=not args.no_docs)
    return result


if __name__ == "__main__":
    main()
