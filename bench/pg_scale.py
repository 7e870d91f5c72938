"""Benchmark 2b: database time of a fast poll as the table count grows, dbpulse vs postgres_exporter.

For each table count (default 100 and 10,000; 2 indexes per table, the same
``--statements`` each), a database is built (``bench.pgdata``), and dbpulse and
postgres_exporter (statement collector on) run against it, each with its own
``pg_monitor`` role. dbpulse's slow cadences (sizes and the full read of every
table and index, maintenance and sequence reads) are set past the run: after
its first poll, every poll measured is a fast poll, which reads the top-K
tables and indexes by oid and the statements' counters. Database time per poll
and per scrape comes from ``pg_stat_statements`` (top-level execution + planning
time per role, the difference of two readings), as in ``bench.pg_dbtime``.

The result is each one's cost at the largest count over its cost at the
smallest: dbpulse's fast poll is to stay within 2x from 100 to 10,000 tables
(issue 23); the peer reads every table and index on every scrape.

Usage: .venv/bin/python -m bench.pg_scale [--tables 100,10000] [--statements 1000] [--polls 20]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench import common, exporters, report
from bench.pgdata import BigDatabase, big_database, stats_delta

SLOW = 86400.0  # seconds: the slow cadences never come round during the run
MAX_GROWTH = 2.0


def measure(db: BigDatabase, polls: int, interval: float) -> dict[str, Any]:
    """Database ms per fast poll of dbpulse and per scrape of the peer, measured over the same minutes."""
    ours = exporters.dbpulse("dbpulse", {  # the advisor off: it runs on its own cadence, not in a poll
        "postgres": {"interval": interval, "size_interval": SLOW, "maintenance_interval": SLOW,
                     "sequence_interval": SLOW, "targets": [{"name": "bench", "dsn": db.dsn("dbpulse_bench")}]},
        "advisor": {"enabled": False}})
    peer = exporters.postgres_exporter("postgres_exporter", db.dsn("pgexp_bench"))
    with common.running(ours, peer):
        common.wait_http(ours)
        common.wait_http(peer)
        _wait_successful_polls(ours.url, 2, timeout=600)  # the first, full, read of every relation is behind
        common.fetch_metrics(peer.url)  # warm-up scrape
        start = common.dbpulse_polls(ours.port)
        common.wait_dbpulse_polls(ours.port, start + 1, timeout=60)
        stats0 = db.statement_stats()
        before = common.dbpulse_polls(ours.port)
        errors_before = _poll_errors(common.fetch_metrics(ours.url))
        for _ in range(polls):
            common.fetch_metrics(peer.url)
        after = common.wait_dbpulse_polls(ours.port, before + polls, timeout=polls * interval * 4 + 60)
        delta = stats_delta(stats0, db.statement_stats())
        text = common.fetch_metrics(ours.url)
        errors = sum(common.metric_values(text, "dbpulse_pg_query_errors_total"))
        poll_errors = _poll_errors(text) - errors_before
    ms = {role: sum(float(q["total_ms"]) for q in rows) for role, rows in delta.items()}
    calls = {role: sum(int(q["calls"]) for q in rows) for role, rows in delta.items()}
    ours_polls = max(after - before, 1)
    # statements per poll: a statement whose pg_stat_statements entry was evicted in between is missing from the
    # difference (and from the ms): the same count at every size says none was
    return {"database": db.counts(),
            "dbpulse": {"polls": after - before, "db_ms_per_poll": ms["dbpulse_bench"] / ours_polls,
                        "statements_per_poll": calls["dbpulse_bench"] / ours_polls,
                        "query_errors": errors, "poll_errors_in_window": poll_errors,
                        "queries": delta["dbpulse_bench"][:12]},
            "postgres_exporter": {"polls": polls, "db_ms_per_poll": ms["pgexp_bench"] / polls,
                                  "statements_per_poll": calls["pgexp_bench"] / polls,
                                  "top_queries": delta["pgexp_bench"][:3]}}


def _poll_errors(text: str) -> float:
    return sum(common.metric_values(text, "dbpulse_source_poll_errors_total", source="postgres"))


def _wait_successful_polls(url: str, at_least: int, timeout: float) -> None:
    """Until ``at_least`` polls succeeded: the first (full) one may take more than a poll's timeout on 10,000
    tables of a loaded machine, and is tried again until it fits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = common.fetch_metrics(url)
        done = sum(common.metric_values(text, "dbpulse_source_polls_total", source="postgres")) - _poll_errors(text)
        if done >= at_least:
            return
        time.sleep(0.5)
    raise RuntimeError(f"dbpulse did not make {at_least} successful polls in {timeout:.0f} s")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default="100,10000", help="table counts, comma-separated, smallest first")
    parser.add_argument("--statements", type=int, default=1000)
    parser.add_argument("--polls", type=int, default=20, help="fast polls of dbpulse and scrapes of the peer")
    parser.add_argument("--interval", type=float, default=3.0, help="dbpulse poll interval during the run")
    parser.add_argument("--results-dir", type=Path, default=None, help="default bench/results")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    common.dbpulse_version()
    common.require(exporters.PG_EXPORTER, "postgres_exporter")
    counts = [int(t) for t in args.tables.split(",")]
    started = time.perf_counter()
    sizes: dict[str, Any] = {}
    pg_version = ""
    for tables in counts:
        # pg_stat_statements.max well above every entry the run makes: an entry evicted during the measurement
        # would drop out of the difference (statements per poll shows it)
        with big_database(tables, args.statements, pgss_max=max(20000, 4 * tables)) as db:
            print(f"database: {db.counts()} (built in {sum(db.build_seconds.values()):.1f} s)")
            sizes[str(tables)] = measure(db, args.polls, args.interval)
            pg_version = db.version()
    small, large = sizes[str(counts[0])], sizes[str(counts[-1])]
    growth = {name: common.ratio(large[name]["db_ms_per_poll"], small[name]["db_ms_per_poll"])
              for name in ("dbpulse", "postgres_exporter")}
    met = growth["dbpulse"] is not None and growth["dbpulse"] <= MAX_GROWTH
    result = {
        "params": vars(args) | {"results_dir": None},
        "versions": {"postgresql": pg_version, "postgres_exporter": common.pg_exporter_version(),
                     "dbpulse": common.dbpulse_version()},
        "sizes": sizes,
        "growth": growth,
        "wall_seconds": time.perf_counter() - started,
        "target": {"what": f"dbpulse's database time per fast poll at {counts[-1]:,} tables within "
                           f"{MAX_GROWTH:g}x that at {counts[0]:,}", "met": met},
    }
    print()
    common.print_table(["tables", "dbpulse DB ms per fast poll", "statements per poll",
                        "postgres_exporter DB ms per scrape", "statements per scrape"],
                       [[t, s["dbpulse"]["db_ms_per_poll"], s["dbpulse"]["statements_per_poll"],
                         s["postgres_exporter"]["db_ms_per_poll"], s["postgres_exporter"]["statements_per_poll"]]
                        for t, s in sizes.items()])
    for t, s in sizes.items():
        print(f"dbpulse's statements at {t} tables:")
        for q in s["dbpulse"]["queries"]:
            print(f"  {q['total_ms']:9.1f} ms  {q['calls']:5d} calls  {q['query']}")
    print(f"growth {counts[0]} -> {counts[-1]} tables: dbpulse x{growth['dbpulse'] or 0:.2f}, "
          f"postgres_exporter x{growth['postgres_exporter'] or 0:.2f}; target: {'met' if met else 'NOT met'}")
    report.publish("pg_scale", result, args.results_dir, docs=not args.no_docs)
    return result


if __name__ == "__main__":
    main()
