"""Benchmark 2: database time per poll, dbpulse vs postgres_exporter (statement collector on).

Same large database as benchmark 1. Each exporter logs in with its own
``pg_monitor`` role (``dbpulse_bench``, ``pgexp_bench``), so
``pg_stat_statements`` tells the database time of each (top-level
statements, execution + planning time, summed per ``userid``).

After both have warmed up, ``pg_stat_statements`` is read; then dbpulse makes
``--polls`` polls (a short interval, counted from its own
``dbpulse_source_polls_total``) while postgres_exporter is scraped
``--polls`` times, one after the other (every peer scrape runs its queries).
``pg_stat_statements`` is read again, and the difference (not a reset, which
would drop the 5,000 statements under test) gives the database milliseconds
per poll / per scrape of each, and the
ratio peer / dbpulse (above 1: dbpulse costs the database less).

dbpulse reads relation and database sizes, and its expensive health estimates
(oldest tables by frozen XID age, sequences, bloat), on their own slower
cadences (``postgres.size_interval`` and ``postgres.maintenance_interval``,
300 s each, against a 15 s poll interval): the run keeps that ratio
(``--size-ratio 20``: 1 s and 20 s), so ``--polls 40`` include two reads of
each and the per-poll figure is their cost spread over the polls, as it is in
production.

The previous result (``bench/results/pg_dbtime.json``, before it is
overwritten) is the baseline: the result records dbpulse's cost against it,
in milliseconds and relative to the peer measured in the same run (the peer's
queries did not change, so that ratio cancels the machine's load).

Usage: .venv/bin/python -m bench.pg_dbtime [--tables 2000] [--statements 5000] [--polls 40]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import common, exporters, report
from bench.pgdata import BigDatabase, big_database, stats_delta
from collectors.postgres import queries
from collectors.postgres.query import Query
from collectors.postgres.settings import PostgresSettings

# dbpulse's statistics reads, each with the raw view(s) or function(s) it reads (its floor: what reading them
# alone costs) and its cadence. ``{tables}``/``{indexes}``: the oids of a top-K (50 tables, 100 indexes, the
# defaults). The advisor's read is listed for reference: it runs once per advisor run, not per poll.
FLOORS = {
    "pg_stat_user_tables": "SELECT * FROM pg_stat_user_tables",
    "pg_stat_user_tables, top-K": "SELECT * FROM pg_stat_user_tables WHERE relid = ANY('{tables}'::oid[])",
    "pg_stat_user_indexes": "SELECT * FROM pg_stat_user_indexes",
    "pg_stat_user_indexes, top-K": "SELECT * FROM pg_stat_user_indexes WHERE indexrelid = ANY('{indexes}'::oid[])",
    "pg_stat_statements": "SELECT * FROM pg_stat_statements",
    "pg_stat_statements(false)": "SELECT * FROM pg_stat_statements(false)",
    "pg_stat_activity": "SELECT * FROM pg_stat_activity",
    "pg_stat_database": "SELECT * FROM pg_stat_database",
    "pg_total_relation_size() of every table, pg_relation_size() of every index":
        "SELECT pg_total_relation_size(relid) FROM pg_stat_user_tables UNION ALL "
        "SELECT pg_relation_size(indexrelid) FROM pg_stat_user_indexes",
    "pg_database_size() of every database": "SELECT pg_database_size(oid) FROM pg_database WHERE datallowconn",
    "pg_stat_user_tables, pg_class": "SELECT * FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid",
    "pg_class, pg_namespace": "SELECT * FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace",
    "pg_sequences": "SELECT * FROM pg_sequences",
}
READS = (  # (query, cadence, floor)
    ("TABLES", "size", "pg_stat_user_tables"),
    ("TABLES_TOP", "poll", "pg_stat_user_tables, top-K"),
    ("INDEXES", "size", "pg_stat_user_indexes"),
    ("INDEXES_TOP", "poll", "pg_stat_user_indexes, top-K"),
    ("STATEMENT_COUNTERS", "poll", "pg_stat_statements(false)"),
    ("STATEMENT_LABELS", "new statements", "pg_stat_statements"),
    ("ACTIVITY", "poll", "pg_stat_activity"),
    ("DATABASES", "poll", "pg_stat_database"),
    ("SIZES", "size", "pg_total_relation_size() of every table, pg_relation_size() of every index"),
    ("DATABASE_SIZES", "size", "pg_database_size() of every database"),
    ("AUTOVACUUM_THRESHOLDS", "maintenance", "pg_stat_user_tables, pg_class"),
    ("OLDEST_TABLES", "maintenance", "pg_class, pg_namespace"),
    ("SEQUENCES", "sequence", "pg_sequences"),
    ("STATEMENTS", "advisor run", "pg_stat_statements"),
)
PEER_RATIO = 2.0  # the peer's database time per scrape over dbpulse's per poll: at least this
MIN_JUDGED_MS = 0.5  # a read below this is not held to the ratio: timer noise is of its order
MAX_READ_RATIO = 1.5


def _sql(name: str, params: dict[str, str]) -> str | None:
    query = getattr(queries, name, None)
    sql = query.sql(150000) if isinstance(query, Query) else None
    if sql is None:
        return None
    for key, value in params.items():
        sql = sql.replace(f"%({key})s", value)
    return sql


def breakdown(db: BigDatabase, repeat: int = 21) -> list[dict[str, Any]]:
    """Median server execution ms of each of dbpulse's statistics reads and of its floor, and their paired ratio.

    Run as dbpulse's role after the measurement (nothing else polling). Each round runs every read next to its
    floor, the pairs in a shuffled order and the two of a pair in turns (read first in one round, floor first in
    the next): a change of the machine's load touches both alike, and neither always runs on caches the other
    warmed. The ratio is the median of the rounds' ratios (each from the same moment), not the ratio of the
    medians. dbpulse's SQL is taken from ``collectors.postgres.queries`` as it is now.
    """
    with psycopg.connect(db.dsn("dbpulse_bench"), autocommit=True) as conn:
        def oids(sql: str) -> str:
            row = conn.execute(sql.encode()).fetchone()
            return "{" + ",".join(str(o) for o in (row[0] if row and row[0] else [])) + "}"

        def execution_ms(sql: str) -> float:  # the server's own execution time, without sending rows
            rows = conn.execute(f"EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) {sql}".encode()).fetchall()
            return sum(float(str(r[0]).split(":")[1].split()[0]) for r in rows
                       if str(r[0]).startswith("Execution Time"))

        top = {"tables": oids("SELECT array_agg(relid) FROM (SELECT relid FROM pg_stat_user_tables "
                              "ORDER BY relid LIMIT 50) t"),
               "indexes": oids("SELECT array_agg(indexrelid) FROM (SELECT indexrelid FROM pg_stat_user_indexes "
                               "ORDER BY indexrelid LIMIT 100) i")}
        params = {"text_length": "80", "limit": "5000", "every": "true", "ids": "'{}'"}
        overrides = {"TABLES_TOP": {"ids": f"'{top['tables']}'"}, "INDEXES_TOP": {"ids": f"'{top['indexes']}'"},
                     "STATEMENTS": {"text_length": "1000000"},  # the advisor's: whole texts, 5,000 statements
                     "OLDEST_TABLES": {"limit": str(PostgresSettings().top_maintenance)}}  # as the poller asks
        pairs: dict[str, tuple[str, str]] = {}  # read: (its SQL, its floor's SQL)
        for name, _, floor in READS:
            sql = _sql(name, params | overrides.get(name, {}))
            if sql is not None:
                pairs[name] = (sql, FLOORS[floor].format(**top))
        for sql, floor_sql in pairs.values():  # one warm-up of each: catalog caches, plans of the views
            execution_ms(sql)
            execution_ms(floor_sql)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in pairs}
        order = random.Random(23)
        for n in range(repeat):
            for name in order.sample(list(pairs), len(pairs)):
                sql, floor_sql = pairs[name]
                if n % 2:
                    floor_ms = execution_ms(floor_sql)
                    times[name].append((execution_ms(sql), floor_ms))
                else:
                    times[name].append((execution_ms(sql), execution_ms(floor_sql)))
    out = []
    for name, cadence, floor in READS:
        if name not in times:
            continue
        read_ms = common.median([t for t, _ in times[name]])
        floor_ms = common.median([f for _, f in times[name]])
        paired = [t / f for t, f in times[name] if f > 0]
        ratio = common.median(paired) if paired else None
        judged = cadence != "advisor run" and read_ms >= MIN_JUDGED_MS
        out.append({"read": name, "cadence": cadence, "ms": read_ms, "floor": floor, "floor_ms": floor_ms,
                    "ratio": ratio, "rounds": len(paired), "judged": judged,
                    "met": (ratio is not None and ratio <= MAX_READ_RATIO) if judged else None})
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=2000)
    parser.add_argument("--statements", type=int, default=5000)
    parser.add_argument("--polls", type=int, default=40, help="polls of dbpulse and scrapes of the peer")
    parser.add_argument("--interval", type=float, default=1.0, help="dbpulse poll interval during the run")
    parser.add_argument("--size-ratio", type=float, default=20.0,
                        help="dbpulse's postgres.size_interval as a multiple of its interval; the defaults "
                        "(300 s / 15 s) make 20: sizes are read on 1 poll in 20 and their cost is spread")
    parser.add_argument("--results-dir", type=Path, default=None, help="default bench/results")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    common.dbpulse_version()  # the code about to run
    common.require(exporters.PG_EXPORTER, "postgres_exporter")

    load_at_start = [round(x, 2) for x in os.getloadavg()]
    with big_database(args.tables, args.statements) as db:
        counts = db.counts()
        print(f"database: {counts} (built in {sum(db.build_seconds.values()):.1f} s)")
        ours = exporters.dbpulse_pg("dbpulse", db.dsn("dbpulse_bench"), interval=args.interval,
                                    size_interval=args.interval * args.size_ratio,
                                    maintenance_interval=args.interval * args.size_ratio)
        peer = exporters.postgres_exporter("postgres_exporter", db.dsn("pgexp_bench"))
        with common.running(ours, peer):
            common.wait_http(ours)
            common.wait_http(peer, timeout=300)  # its first scrape reads everything: slow on a loaded machine
            common.wait_dbpulse_polls(ours.port, 2, timeout=120)
            common.fetch_metrics(peer.url)  # warm-up scrape: the peer reads settings and versions once

            # Start right after a dbpulse poll ends (the counter moves at the end of a poll), so no
            # poll is cut in half; read again right after the last counted poll ends. No reset:
            # it would drop the 5,000 statements the exporters are to read.
            start = common.dbpulse_polls(ours.port)
            common.wait_dbpulse_polls(ours.port, start + 1, timeout=60)
            stats0 = db.statement_stats()
            before = common.dbpulse_polls(ours.port)
            started = time.perf_counter()
            peer_scrape_s: list[float] = []
            for _ in range(args.polls):
                t0 = time.perf_counter()
                common.fetch_metrics(peer.url)
                peer_scrape_s.append(time.perf_counter() - t0)
            after = common.wait_dbpulse_polls(ours.port, before + args.polls,
                                              timeout=args.polls * args.interval * 4 + 60)
            delta = stats_delta(stats0, db.statement_stats())
            dbpulse_polls = after - before
            by_role = {role: {"ms": sum(float(q["total_ms"]) for q in rows),
                              "calls": float(sum(int(q["calls"]) for q in rows))}
                       for role, rows in delta.items()}
            tops = {role: rows[:5] for role, rows in delta.items()}
            size_reads = sum(int(q["calls"]) for q in delta["dbpulse_bench"]
                             if "relation_size" in str(q["query"]) or "pg_locks" in str(q["query"]))
            # OLDEST_TABLES runs once per maintenance read; matched inside the text, which starts with dbpulse's
            # tag and is cut at 90 characters (pgdata.statement_stats)
            maintenance_reads = sum(int(q["calls"]) for q in delta["dbpulse_bench"]
                                    if "oldest_relations AS" in str(q["query"]))
            wall = time.perf_counter() - started
            ours_metrics = common.fetch_metrics(ours.url)
            poll_s = common.metric_values(ours_metrics, "dbpulse_source_poll_duration_seconds", source="postgres")
            # A loaded machine can push queries past statement_timeout: then fewer ran, and the figure is low.
            failures = {"query_errors": sum(common.metric_values(ours_metrics, "dbpulse_pg_query_errors_total")),
                        "poll_errors": sum(common.metric_values(ours_metrics, "dbpulse_source_poll_errors_total",
                                                                source="postgres"))}
        parts = breakdown(db)
        pg_version = db.version()

    d, p = by_role["dbpulse_bench"], by_role["pgexp_bench"]
    ours_ms = d["ms"] / max(dbpulse_polls, 1)
    peer_ms = p["ms"] / args.polls
    r = common.ratio(peer_ms, ours_ms)
    reads_met = all(p["met"] for p in parts if p["judged"])
    met = r is not None and r >= PEER_RATIO and reads_met
    baseline = _baseline(args.results_dir)
    result = {
        "params": vars(args) | {"results_dir": None},
        "database": counts,
        "versions": {"postgresql": pg_version, "postgres_exporter": common.pg_exporter_version(),
                     "dbpulse": common.dbpulse_version()},
        "exporters": {
            "dbpulse": {"polls": dbpulse_polls, "size_reads": size_reads, "maintenance_reads": maintenance_reads,
                        **failures,
                        "size_interval_s": args.interval * args.size_ratio,
                        "db_ms_total": d["ms"], "db_ms_per_poll": ours_ms,
                        "statements_per_poll": d["calls"] / max(dbpulse_polls, 1),
                        "last_poll_wall_ms": (poll_s[0] * 1000) if poll_s else None,
                        "top_queries": tops["dbpulse_bench"]},
            "postgres_exporter": {"polls": args.polls, "db_ms_total": p["ms"], "db_ms_per_poll": peer_ms,
                                  "statements_per_poll": p["calls"] / args.polls,
                                  "scrape_wall_ms_median": common.median(peer_scrape_s) * 1000,
                                  "top_queries": tops["pgexp_bench"]},
        },
        "wall_seconds": wall,
        "load_average_at_start": load_at_start,
        "dbpulse_reads": parts,
        "ratio_peer_over_dbpulse": r,
        "target": {"what": f"dbpulse database time per poll at most {1 / PEER_RATIO:g}x the peer's per scrape, "
                           f"and each statistics read of {MIN_JUDGED_MS:g} ms or more at most {MAX_READ_RATIO:g}x "
                           "the raw view(s) it reads", "met": met,
                   "peer_ratio_met": r is not None and r >= PEER_RATIO, "reads_met": reads_met},
    }
    if baseline is not None:
        # Cost against the baseline: in ms, and relative to the peer measured alongside each time.
        b_ours, b_ratio = baseline["db_ms_per_poll"], baseline["ratio_peer_over_dbpulse"]
        result["baseline"] = baseline | {
            "cost_ratio_ms": common.ratio(ours_ms, b_ours),
            "cost_ratio_peer_relative": common.ratio(b_ratio, r) if r and b_ratio else None,
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
    print(f"\ndbpulse read sizes {size_reads} times in its {dbpulse_polls} polls")
    print("\ndbpulse's statistics reads against the raw views they read (server execution ms, median of 21 "
          "rounds; ratio: median of the rounds' paired ratios):")
    common.print_table(["read", "cadence", "ms", "floor", "floor ms", "ratio", "judged", "met"],
                       [[p["read"], p["cadence"], p["ms"], p["floor"], p["floor_ms"], p["ratio"], p["judged"],
                         p["met"]] for p in parts])
    print(f"\npostgres_exporter / dbpulse: {common.fmt_ratio(r)}; target (dbpulse <= {1 / PEER_RATIO:g}x the peer, "
          f"each read <= {MAX_READ_RATIO:g}x its views): {'met' if met else 'NOT met'}")

    if "baseline" in result:
        b = result["baseline"]
        print(f"against the baseline ({b['when']}, {b['dbpulse']}): {b['db_ms_per_poll']:.1f} ms per poll before, "
              f"x{b['cost_ratio_ms'] or 0:.2f} in ms, x{b['cost_ratio_peer_relative'] or 0:.2f} relative to the peer")

    report.publish("pg_dbtime", result, args.results_dir, docs=not args.no_docs)
    return result


def _baseline(results_dir: Path | None) -> dict[str, Any] | None:
    """The previous result of this benchmark, if any: what dbpulse cost then."""
    path = (results_dir or common.RESULTS) / "pg_dbtime.json"
    if not path.exists():
        return None
    previous = json.loads(path.read_text())
    if previous.get("params", {}).get("tables") is None:
        return None
    return {"when": previous["when"], "dbpulse": previous["versions"]["dbpulse"],
            "db_ms_per_poll": previous["exporters"]["dbpulse"]["db_ms_per_poll"],
            "ratio_peer_over_dbpulse": previous["ratio_peer_over_dbpulse"],
            "peer_db_ms_per_scrape": previous["exporters"]["postgres_exporter"]["db_ms_per_poll"]}


if __name__ == "__main__":
    main()
