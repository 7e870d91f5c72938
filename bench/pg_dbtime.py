"""Benchmark 2: database time per poll, dbpulse vs postgres_exporter (statement collector on).

Same large database as benchmark 1. Each exporter logs in with its own
``pg_monitor`` role (``dbpulse_bench``, ``pgexp_bench``), so
``pg_stat_statements`` tells the database time of each (top-level
statements, execution + planning time, summed per ``userid``).

After both have warmed up, ``pg_stat_statements`` is reset; then dbpulse makes
``--polls`` polls (a short interval, counted from its own
``dbpulse_source_polls_total``) while postgres_exporter is scraped
``--polls`` times, one after the other (every peer scrape runs its queries).
We report the database milliseconds per poll / per scrape of each, and the
ratio peer / dbpulse (above 1: dbpulse costs the database less).

Usage: .venv/bin/python -m bench.pg_dbtime [--tables 2000] [--statements 5000] [--polls 30]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench import common, exporters, report
from bench.pgdata import big_database


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=2000)
    parser.add_argument("--statements", type=int, default=5000)
    parser.add_argument("--polls", type=int, default=30, help="polls of dbpulse and scrapes of the peer")
    parser.add_argument("--interval", type=float, default=1.0, help="dbpulse poll interval during the run")
    parser.add_argument("--results-dir", type=Path, default=None, help="default bench/results")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    common.require(exporters.PG_EXPORTER, "postgres_exporter")

    with big_database(args.tables, args.statements) as db:
        counts = db.counts()
        print(f"database: {counts} (built in {sum(db.build_seconds.values()):.1f} s)")
        ours = exporters.dbpulse_pg("dbpulse", db.dsn("dbpulse_bench"), interval=args.interval)
        peer = exporters.postgres_exporter("postgres_exporter", db.dsn("pgexp_bench"))
        with common.running(ours, peer):
            common.wait_http(ours)
            common.wait_http(peer)
            common.wait_dbpulse_polls(ours.port, 2, timeout=120)
            common.fetch_metrics(peer.url)  # warm-up scrape: the peer reads settings and versions once

            # dbpulse: count polls between two resets-separated readings.
            db.reset_statements()
            before = common.dbpulse_polls(ours.port)
            started = time.perf_counter()
            peer_scrape_s: list[float] = []
            for _ in range(args.polls):
                t0 = time.perf_counter()
                common.fetch_metrics(peer.url)
                peer_scrape_s.append(time.perf_counter() - t0)
            common.wait_dbpulse_polls(ours.port, before + args.polls, timeout=args.polls * args.interval * 4 + 60)
            time.sleep(0.2)  # let the last poll's statements be counted
            after = common.dbpulse_polls(ours.port)
            # The poll in flight at the reset may have run part of its queries before it:
            # count it as half a poll either way (it is small against --polls).
            dbpulse_polls = after - before
            by_role = db.db_time_by_role()
            tops = {role: db.top_queries_by_role(role) for role in ("dbpulse_bench", "pgexp_bench")}
            wall = time.perf_counter() - started
            ours_metrics = common.fetch_metrics(ours.url)
            poll_s = common.metric_values(ours_metrics, "dbpulse_source_poll_duration_seconds", source="postgres")
        pg_version = db.version()

    d = by_role.get("dbpulse_bench", {"ms": 0.0, "calls": 0.0, "entries": 0.0})
    p = by_role.get("pgexp_bench", {"ms": 0.0, "calls": 0.0, "entries": 0.0})
    ours_ms = d["ms"] / max(dbpulse_polls, 1)
    peer_ms = p["ms"] / args.polls
    r = common.ratio(peer_ms, ours_ms)
    met = r is not None and r >= 1.0
    result = {
        "params": vars(args) | {"results_dir": None},
        "database": counts,
        "versions": {"postgresql": pg_version, "postgres_exporter": common.pg_exporter_version(),
                     "dbpulse": common.dbpulse_version()},
        "exporters": {
            "dbpulse": {"polls": dbpulse_polls, "db_ms_total": d["ms"], "db_ms_per_poll": ours_ms,
                        "statements_per_poll": d["calls"] / max(dbpulse_polls, 1),
                        "last_poll_wall_ms": (poll_s[0] * 1000) if poll_s else None,
                        "top_queries": tops["dbpulse_bench"]},
            "postgres_exporter": {"polls": args.polls, "db_ms_total": p["ms"], "db_ms_per_poll": peer_ms,
                                  "statements_per_poll": p["calls"] / args.polls,
                                  "scrape_wall_ms_median": common.median(peer_scrape_s) * 1000,
                                  "top_queries": tops["pgexp_bench"]},
        },
        "wall_seconds": wall,
        "ratio_peer_over_dbpulse": r,
        "target": {"what": "dbpulse database time per poll no more than the peer's per scrape", "met": met},
    }

    print()
    common.print_table(
        ["exporter", "polls", "DB ms/poll", "statements/poll", "wall ms/poll"],
        [["dbpulse", dbpulse_polls, ours_ms, d["calls"] / max(dbpulse_polls, 1),
          result["exporters"]["dbpulse"]["last_poll_wall_ms"]],
         ["postgres_exporter", args.polls, peer_ms, p["calls"] / args.polls,
          result["exporters"]["postgres_exporter"]["scrape_wall_ms_median"]]],
    )
    for role, top in tops.items():
        print(f"\nmost expensive statements of {role}:")
        for q in top[:3]:
            print(f"  {q['total_ms']:9.1f} ms  {q['calls']:5d} calls  {q['query']}")
    print(f"\npostgres_exporter / dbpulse: {common.fmt_ratio(r)}; target (<= peer): {'met' if met else 'NOT met'}")

    path = common.write_result("pg_dbtime", result, args.results_dir)
    print(f"results: {path}")
    if not args.no_docs:
        report.update_docs()
    return result


if __name__ == "__main__":
    main()
