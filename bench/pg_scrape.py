"""Benchmark 1: /metrics latency under concurrent scrapers, dbpulse vs postgres_exporter.

One throwaway PostgreSQL with ~2,000 tables, 4,000 indexes and 5,000 distinct
statements; three exporters watch it at once:

- ``dbpulse`` with its defaults (bounded top-K, polls every 15 s, scrapes served from the snapshot);
- ``dbpulse (all series)``: top-K raised so it exports every table, index and statement, like the peer;
- ``postgres_exporter`` with its statement collector on (its example queries, see
  bench/postgres_exporter_queries.yaml): every scrape queries the database.

The same Python client (aiohttp, N concurrent scrapers, fixed request count)
scrapes each in alternating rounds; we report median and p99 latency, and the
ratio peer / dbpulse (above 1: dbpulse is faster). Also the RSS of each after
the run (benchmark 4 measures RSS over many polls).

Usage: .venv/bin/python -m bench.pg_scrape [--tables 2000] [--statements 5000] [--requests 200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench import common, exporters, report
from bench.pgdata import big_database

TARGET_RATIO = 10.0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=2000)
    parser.add_argument("--statements", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=200, help="scrapes of each exporter (default 200)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent scrapers (default 8)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds the requests are split into")
    parser.add_argument("--results-dir", type=Path, default=None, help="default bench/results")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    common.dbpulse_version()  # the code about to run
    common.require(exporters.PG_EXPORTER, "postgres_exporter")

    with big_database(args.tables, args.statements) as db:
        counts = db.counts()
        print(f"database: {counts} (built in {sum(db.build_seconds.values()):.1f} s)")
        services = [
            exporters.dbpulse_pg("dbpulse", db.dsn("dbpulse_bench")),
            exporters.dbpulse_pg("dbpulse (all series)", db.dsn("dbpulse_bench"), **exporters.EXPORT_ALL),
            exporters.postgres_exporter("postgres_exporter", db.dsn("pgexp_bench")),
        ]
        with common.running(*services):
            for s in services:
                common.wait_http(s)
            for s in services[:2]:
                common.wait_dbpulse_polls(s.port, 1, timeout=120)
            for s in services:  # warm-up, not measured
                common.scrape(s.url, requests=args.concurrency, concurrency=args.concurrency)
            series = {s.name: common.series_count(common.fetch_metrics(s.url)) for s in services}

            latencies: dict[str, list[float]] = {s.name: [] for s in services}
            errors = dict.fromkeys(latencies, 0)
            walls = dict.fromkeys(latencies, 0.0)
            sizes = dict.fromkeys(latencies, 0)
            all_sizes: dict[str, list[int]] = {s.name: [] for s in services}
            per_round = max(1, args.requests // args.rounds)
            for r in range(args.rounds):
                order = services if r % 2 == 0 else list(reversed(services))
                for s in order:
                    res = common.scrape(s.url, per_round, args.concurrency)
                    latencies[s.name] += res.latencies
                    errors[s.name] += res.errors
                    walls[s.name] += res.wall
                    sizes[s.name] = res.bytes_last
                    all_sizes[s.name] += res.sizes
            rss = {s.name: s.rss_bytes() for s in services}
            # A dbpulse whose poll failed serves only its "down" series: count such short answers.
            ups = {s.name: common.metric_values(common.fetch_metrics(s.url), "dbpulse_source_up") for s in services[:2]}
            errors_total = {s.name: sum(common.metric_values(common.fetch_metrics(s.url),
                                                             "dbpulse_source_poll_errors_total")) for s in services[:2]}
            cpu = {s.name: s.cpu_seconds() for s in services}

        pg_version = db.version()

    exporters_out: dict[str, dict[str, Any]] = {}
    for name, lat in latencies.items():
        res = common.ScrapeResult(lat, errors[name], sizes[name], walls[name], all_sizes[name])
        exporters_out[name] = {**res.summary(), "series": series[name], "rss_mib": rss[name] / 2**20,
                               "cpu_seconds": cpu[name],
                               "short_responses": sum(1 for b in all_sizes[name] if b < 0.5 * max(all_sizes[name]))}
        if name in ups:
            exporters_out[name]["source_up_at_end"] = ups[name]
            exporters_out[name]["poll_errors_total"] = errors_total[name]
    peer = exporters_out["postgres_exporter"]
    ratios = {}
    for ours in ("dbpulse", "dbpulse (all series)"):
        ratios[ours] = {
            "median": common.ratio(peer["median_ms"], exporters_out[ours]["median_ms"]),
            "p99": common.ratio(peer["p99_ms"], exporters_out[ours]["p99_ms"]),
        }
    default = ratios["dbpulse"]
    met = all(v is not None and v >= TARGET_RATIO for v in default.values())
    result = {
        "params": vars(args) | {"results_dir": None},
        "database": counts,
        "versions": {"postgresql": pg_version, "postgres_exporter": common.pg_exporter_version(),
                     "dbpulse": common.dbpulse_version()},
        "exporters": exporters_out,
        "ratios_peer_over_dbpulse": ratios,
        "target": {"what": f"dbpulse scrapes at least {TARGET_RATIO:.0f}x faster (median and p99)", "met": met},
    }

    print()
    common.print_table(
        ["exporter", "median ms", "p99 ms", "max ms", "req/s", "errors", "short", "series", "max bytes", "RSS MiB"],
        [[n, e["median_ms"], e["p99_ms"], e["max_ms"], e["throughput_rps"], e["errors"], e["short_responses"],
          e["series"], e["response_bytes_max"], e["rss_mib"]] for n, e in exporters_out.items()],
    )
    for ours, r in ratios.items():
        print(f"postgres_exporter / {ours}: median {common.fmt_ratio(r['median'])}, p99 {common.fmt_ratio(r['p99'])}")
    print(f"target (>= {TARGET_RATIO:.0f}x): {'met' if met else 'NOT met'}")

    report.publish("pg_scrape", result, args.results_dir, docs=not args.no_docs)
    return result


if __name__ == "__main__":
    main()
