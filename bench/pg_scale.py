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
        common.wait_dbpulse_polls(ours.port, 3, timeout=180)  # the first, full, poll is behind
        common.fetch_metrics(peer.url)  # warm-up scrape
        start = common.dbpulse_polls(ours.port)
        common.wait_dbpulse_polls(ours.port, start + 1, timeout=60)
        stats0 = db.statement_stats()
        before = common.dbpulse_polls(ours.port)
        for _ in range(polls):
            common.fetch_metrics(peer.url)
        after = common.wait_dbpulse_polls(ours.port, before + polls, timeout=polls * interval * 4 + 60)
        delta = stats_delta(stats0, db.statement_stats())
        text = common.fetch_metrics(ours.url)
        errors = sum(common.metric_values(text, "dbpulse_pg_query_errors_total"))
    ms = {role: sum(float(q["total_ms"]) for q in rows) for role, rows in delta.items()}
    return {"database": db.counts(),
            "dbpulse": {"polls": after - before, "db_ms_per_poll": ms["dbpulse_bench"] / max(after - before, 1),
                        "query_errors": errors, "top_queries": delta["dbpulse_bench"][:5]},
            "postgres_exporter": {"polls": polls, "db_ms_per_poll": ms["pgexp_bench"] / polls,
                                  "top_queries": delta["pgexp_bench"][:3]}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default="100,10000", help="table counts, comma-separated, smallest first")
    parser.add_argument("--statements", type=int, default=1000)
    parser.add_argument("--polls", type=int, default=20, help="fast polls of dbpulse and scrapes of the peer")
    parser.add_argument("--interval", type=float, default=1.0, help="dbpulse poll interval during the run")
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
        with big_database(tables, args.statements) as db:
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
    common.print_table(["tables", "dbpulse DB ms per fast poll", "postgres_exporter DB ms per scrape"],
                       [[t, s["dbpulse"]["db_ms_per_poll"], s["postgres_exporter"]["db_ms_per_poll"]]
                        for t, s in sizes.items()])
    print(f"growth {counts[0]} -> {counts[-1]} tables: dbpulse x{growth['dbpulse'] or 0:.2f}, "
          f"postgres_exporter x{growth['postgres_exporter'] or 0:.2f}; target: {'met' if met else 'NOT met'}")
    report.publish("pg_scale", result, args.results_dir, docs=not args.no_docs)
    return result


if __name__ == "__main__":
    main()
