"""Benchmark 2b: database time of a fast poll as the table count grows, dbpulse vs postgres_exporter.

For each table count (default 100 and 10,000; 2 indexes per table, the same
``--statements`` each), a database is built (``bench.pgdata``, one throwaway
server each), and dbpulse and postgres_exporter (statement collector on) run
against it, each with its own ``pg_monitor`` role. dbpulse's slow cadences
(sizes and the full read of every table and index, maintenance and sequence
reads) are set past the run: after its first poll, every poll measured is a
fast poll, which reads the top-K tables and indexes by oid and the statements'
counters. Database time per poll and per scrape comes from
``pg_stat_statements`` (top-level execution + planning time per role, the
difference of two readings), as in ``bench.pg_dbtime``.

Every size is measured in the same minutes, so the machine's load touches all
alike: the dbpulse of every size polls all along, and the run is cut into
``--rounds`` rounds; in each, the peer of every size is scraped in turns
(``--polls`` / ``--rounds`` scrapes each, the order of the sizes reversed
every other round) and each dbpulse makes as many polls. The figures are the
totals over the rounds (one window per size); the growth of each round (its
own ms at the largest size over the smallest) is given as well, with their
median.

The result is each one's cost at the largest count over its cost at the
smallest: dbpulse's fast poll is to stay within 2x from 100 to 10,000 tables
(issue 23); the peer reads every table and index on every scrape.

Usage: .venv/bin/python -m bench.pg_scale [--tables 100,10000] [--statements 1000] [--polls 30] [--rounds 6]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import time
from pathlib import Path
from typing import Any

from bench import common, exporters, report
from bench.pgdata import BigDatabase, big_database, stats_delta

SLOW = 86400.0  # seconds: the slow cadences never come round during the run
MAX_GROWTH = 2.0
ROLES = {"dbpulse": "dbpulse_bench", "postgres_exporter": "pgexp_bench"}


def _dbpulse(db: BigDatabase, interval: float) -> common.Service:
    return exporters.dbpulse("dbpulse", {  # the advisor off: it runs on its own cadence, not in a poll
        "postgres": {"interval": interval, "size_interval": SLOW, "maintenance_interval": SLOW,
                     "sequence_interval": SLOW, "targets": [{"name": "bench", "dsn": db.dsn("dbpulse_bench")}]},
        "advisor": {"enabled": False}})


def measure(dbs: dict[int, BigDatabase], polls: int, rounds: int, interval: float) -> dict[str, Any]:
    """Database ms per fast poll of dbpulse and per scrape of the peer at every size, over the same minutes."""
    ours = {t: _dbpulse(db, interval) for t, db in dbs.items()}
    peers = {t: exporters.postgres_exporter("postgres_exporter", db.dsn("pgexp_bench")) for t, db in dbs.items()}
    per_round = max(1, polls // rounds)
    with common.running(*ours.values(), *peers.values()):
        for t in dbs:
            common.wait_http(ours[t])
            common.wait_http(peers[t], timeout=300)
        for t in dbs:
            _wait_successful_polls(ours[t].url, 2, timeout=600)  # the first, full, read of every relation is behind
            common.fetch_metrics(peers[t].url)  # warm-up scrape
        errors_before = {t: _poll_errors(common.fetch_metrics(ours[t].url)) for t in dbs}
        # one reading per size at each round's edge: the rounds' windows follow on each other
        edges = [{t: (db.statement_stats(), common.dbpulse_polls(ours[t].port)) for t, db in dbs.items()}]
        for n in range(rounds):
            order = list(dbs) if n % 2 == 0 else list(reversed(dbs))
            for _ in range(per_round):
                for t in order:
                    common.fetch_metrics(peers[t].url)
            for t in order:
                common.wait_dbpulse_polls(ours[t].port, edges[-1][t][1] + per_round,
                                          timeout=per_round * interval * 4 + 60)
            edges.append({t: (db.statement_stats(), common.dbpulse_polls(ours[t].port)) for t, db in dbs.items()})
        texts = {t: common.fetch_metrics(ours[t].url) for t in dbs}
    out: dict[str, Any] = {}
    for t, db in dbs.items():
        delta = stats_delta(edges[0][t][0], edges[-1][t][0])
        ms = {name: sum(float(q["total_ms"]) for q in delta[role]) for name, role in ROLES.items()}
        calls = {name: sum(int(q["calls"]) for q in delta[role]) for name, role in ROLES.items()}
        ours_polls = max(edges[-1][t][1] - edges[0][t][1], 1)
        peer_scrapes = per_round * rounds
        round_ms = []
        for a, b in itertools.pairwise(edges):
            d = stats_delta(a[t][0], b[t][0])
            round_ms.append({"dbpulse": sum(float(q["total_ms"]) for q in d[ROLES["dbpulse"]])
                             / max(b[t][1] - a[t][1], 1),
                             "postgres_exporter": sum(float(q["total_ms"]) for q in d[ROLES["postgres_exporter"]])
                             / per_round})
        # statements per poll: a statement whose pg_stat_statements entry was evicted in between is missing from
        # the difference (and from the ms): the same count at every size says none was
        out[str(t)] = {
            "database": db.counts(),
            "dbpulse": {"polls": ours_polls, "db_ms_per_poll": ms["dbpulse"] / ours_polls,
                        "statements_per_poll": calls["dbpulse"] / ours_polls,
                        "query_errors": sum(common.metric_values(texts[t], "dbpulse_pg_query_errors_total")),
                        "poll_errors_in_window": _poll_errors(texts[t]) - errors_before[t],
                        "queries": delta[ROLES["dbpulse"]][:12]},
            "postgres_exporter": {"polls": peer_scrapes, "db_ms_per_poll": ms["postgres_exporter"] / peer_scrapes,
                                  "statements_per_poll": calls["postgres_exporter"] / peer_scrapes,
                                  "top_queries": delta[ROLES["postgres_exporter"]][:3]},
            "rounds_ms_per_poll": round_ms,
        }
    return out


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
    parser.add_argument("--polls", type=int, default=30, help="fast polls of dbpulse and scrapes of the peer, per size")
    parser.add_argument("--rounds", type=int, default=6, help="rounds the polls are cut into (sizes in turns)")
    parser.add_argument("--interval", type=float, default=3.0, help="dbpulse poll interval during the run")
    parser.add_argument("--results-dir", type=Path, default=None, help="default bench/results")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    common.dbpulse_version()
    common.require(exporters.PG_EXPORTER, "postgres_exporter")
    counts = [int(t) for t in args.tables.split(",")]
    started = time.perf_counter()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    with contextlib.ExitStack() as stack:
        # pg_stat_statements.max well above every entry the run makes: an entry evicted during the measurement
        # would drop out of the difference (statements per poll shows it)
        dbs = {t: stack.enter_context(big_database(t, args.statements, pgss_max=max(20000, 4 * t))) for t in counts}
        for db in dbs.values():
            print(f"database: {db.counts()} (built in {sum(db.build_seconds.values()):.1f} s)")
        sizes = measure(dbs, args.polls, args.rounds, args.interval)
        pg_version = dbs[counts[0]].version()
    small, large = sizes[str(counts[0])], sizes[str(counts[-1])]
    growth = {name: common.ratio(large[name]["db_ms_per_poll"], small[name]["db_ms_per_poll"])
              for name in ("dbpulse", "postgres_exporter")}
    # each round's own growth: its ms per poll at the largest size over the smallest, measured in the same minutes
    round_growth = {name: [common.ratio(b[name], a[name]) for a, b in
                           zip(small["rounds_ms_per_poll"], large["rounds_ms_per_poll"], strict=True)]
                    for name in ("dbpulse", "postgres_exporter")}
    median_round_growth = {name: common.median([g for g in gs if g is not None]) if any(gs) else None
                           for name, gs in round_growth.items()}
    met = growth["dbpulse"] is not None and growth["dbpulse"] <= MAX_GROWTH
    result = {
        "params": vars(args) | {"results_dir": None},
        "versions": {"postgresql": pg_version, "postgres_exporter": common.pg_exporter_version(),
                     "dbpulse": common.dbpulse_version()},
        "sizes": sizes,
        "growth": growth,
        "round_growth": round_growth,
        "median_round_growth": median_round_growth,
        "load_average_at_start": load_at_start,
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
    print("growth of each round, dbpulse: " + ", ".join(f"x{g or 0:.2f}" for g in round_growth["dbpulse"])
          + f" (median x{median_round_growth['dbpulse'] or 0:.2f}); load average at start {load_at_start}, "
          f"at end {[round(x, 2) for x in os.getloadavg()]}")
    print(f"growth {counts[0]} -> {counts[-1]} tables: dbpulse x{growth['dbpulse'] or 0:.2f}, "
          f"postgres_exporter x{growth['postgres_exporter'] or 0:.2f}; target: {'met' if met else 'NOT met'}")
    report.publish("pg_scale", result, args.results_dir, docs=not args.no_docs)
    return result


if __name__ == "__main__":
    main()
