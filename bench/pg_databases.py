"""Benchmark: database time per poll with 10 databases against 1, dbpulse vs postgres_exporter (issue 23).

One throwaway cluster holds ``--databases`` databases (``db00``, ``db01``, ...), each a copy of one with
``--tables`` tables (2 indexes each) and ``--statements`` distinct statements run in it (each database's
own ``pg_stat_statements`` entries). Two phases, one after the other, in the same run:

- **one database**: dbpulse watches ``db00`` only (no ``databases`` setting); postgres_exporter
  connects to ``db00`` (its example queries: tables, statements);
- **every database**: dbpulse watches ``db00`` with ``databases: {include: [db*]}``; postgres_exporter
  runs with ``--auto-discover-databases`` (``postgres`` excluded), its per-database queries on each.

In each phase, as in ``bench.pg_dbtime``: dbpulse polls at least ``--polls`` times at ``--interval`` while
the peer is scraped ``--peer-scrapes`` times (one after the other; a scrape of 10 databases takes seconds),
each logged in as its own ``pg_monitor`` role, and the database time of each is the difference of two
``pg_stat_statements`` readings (top-level execution + planning time, every database): dbpulse's per poll
over the polls it made meanwhile, the peer's per scrape. dbpulse's failed polls (a poll past its timeout
is abandoned, and what it had not read yet is not counted) are recorded: a run with any is not clean.
dbpulse's slow cadences keep the ratio of the defaults (``--size-ratio``, 300 s / 15 s =
20): sizes, maintenance reads, and the other databases' refresh and discovery, so ``--polls 40`` hold two
rounds through the other databases and the per-poll figure spreads their cost as production does.

Not counted by ``pg_stat_statements``: the server's work to start a session. dbpulse opens one per other
database read (``databases.concurrency`` at most at once; 2 per database in 40 polls here) and closes it;
the peer keeps one per database open. The result records the median wall time of a read, connection included.

Goal (issue 23): dbpulse's database time per poll with every database at most 1.5x that with one.

Usage: .venv/bin/python -m bench.pg_databases [--databases 10] [--tables 1000] [--statements 1000] [--polls 40]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import yaml

from bench import common, exporters, report
from bench.common import PG_EXPORTER, Service
from bench.pgdata import BATCH, PASSWORD, ROLES, schema_block, statement_texts, stats_delta
from harness.servers import LocalPostgres, free_port

GOAL = 1.5


def name_of(i: int) -> str:
    return f"db{i:02d}"


@contextmanager
def cluster(databases: int, tables: int, statements: int) -> Iterator[tuple[LocalPostgres, dict[str, float]]]:
    """A started cluster of ``databases`` copies of one database; its build times."""
    server = LocalPostgres(settings={"pg_stat_statements.max": str(max(10000, 2 * databases * statements)),
                                     "shared_buffers": "'256MB'", "max_connections": "80"})
    server.start()
    try:
        times: dict[str, float] = {}
        started = time.perf_counter()
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name_of(0)}")
            for role in ROLES:
                conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
                conn.execute(f"GRANT pg_monitor TO {role}")
        with psycopg.connect(server.dsn(name_of(0)), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            for first in range(0, tables, BATCH):
                conn.execute(schema_block(first, min(first + BATCH, tables)).encode())
            conn.execute("VACUUM ANALYZE")
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            for i in range(1, databases):
                conn.execute(f"CREATE DATABASE {name_of(i)} TEMPLATE {name_of(0)}")
        times["schema"] = time.perf_counter() - started
        started = time.perf_counter()
        with psycopg.connect(server.dsn(name_of(0)), autocommit=True) as conn:
            conn.execute("SELECT pg_stat_statements_reset()")  # forget the DDL
        for i in range(databases):
            with psycopg.connect(server.dsn(name_of(i)), autocommit=True) as conn:
                conn.execute("SET application_name = 'bench_workload'")
                for sql in statement_texts(tables, statements):
                    conn.execute(sql.encode())
        times["workload"] = time.perf_counter() - started
        yield server, times
    finally:
        server.cleanup()


def statement_stats(server: LocalPostgres) -> dict[tuple[str, int], tuple[float, float, str]]:
    """Cumulative (ms, calls, text) of every top-level statement of the exporter roles, in every database."""
    with psycopg.connect(server.dsn(name_of(0)), autocommit=True) as conn:  # has the extension
        rows = conn.execute("""
            SELECT r.rolname, s.queryid, s.dbid::bigint, (s.total_exec_time + s.total_plan_time)::float8,
                   s.calls::float8, left(regexp_replace(s.query, '\\s+', ' ', 'g'), 90)
            FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
            WHERE s.toplevel AND r.rolname = ANY(%s)
        """, (list(ROLES),)).fetchall()
    # One entry per statement and database (a copied database's statements have the same queryids).
    return {(str(r[0]), hash((int(r[1]), int(r[2])))): (float(r[3]), float(r[4]), str(r[5])) for r in rows}


def cluster_wide_queries() -> Path:
    """The peer's example queries with each cluster-wide one marked ``master: true`` (run on one database
    only): with --auto-discover-databases, ``pg_process_idle`` (not marked in the example) is collected
    once per database and every scrape fails with "collected before with the same name and label values"."""
    queries = yaml.safe_load(exporters.PEER_QUERIES.read_text())
    for name, query in queries.items():
        if not name.startswith(("pg_stat_user_tables", "pg_statio_user_tables")):
            query["master"] = True
    path = Path(tempfile.mkstemp(prefix="bench-peer-queries-", suffix=".yaml")[1])
    path.write_text(yaml.safe_dump(queries))
    return path


def peer(server: LocalPostgres, every: bool) -> Service:
    """postgres_exporter on db00, or discovering every database but ``postgres``."""
    port = free_port()
    args = [str(PG_EXPORTER), f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    if every:
        args += [f"--extend.query-path={cluster_wide_queries()}", "--auto-discover-databases",
                 "--exclude-databases=postgres,template0,template1"]
    else:
        args.append(f"--extend.query-path={exporters.PEER_QUERIES}")
    dsn = server.dsn(name_of(0), user="pgexp_bench", password=PASSWORD)
    return Service("postgres_exporter", args, port, env={"DATA_SOURCE_NAME": dsn + "?sslmode=disable"})


def phase(server: LocalPostgres, every: bool, args: argparse.Namespace) -> dict[str, Any]:
    """One phase: dbpulse and the peer side by side, ``args.polls`` each; what each cost the database."""
    slow = args.interval * args.size_ratio
    target: dict[str, Any] = {"name": "bench", "dsn": server.dsn(name_of(0), user="dbpulse_bench",
                                                                 password=PASSWORD)}
    if every:
        target["databases"] = {"include": ["db*"], "refresh_interval": slow, "discovery_interval": slow}
    ours = exporters.dbpulse("dbpulse", {"postgres": {"interval": args.interval, "size_interval": slow,
                                                      "maintenance_interval": slow, "targets": [target]},
                                         "advisor": {"enabled": False}})
    theirs = peer(server, every)
    with common.running(ours, theirs):
        common.wait_http(ours)
        common.wait_http(theirs)
        common.wait_dbpulse_polls(ours.port, 2, timeout=120)
        common.fetch_metrics(theirs.url)  # warm-up scrape
        start = common.dbpulse_polls(ours.port)
        common.wait_dbpulse_polls(ours.port, start + 1, timeout=60)
        stats0 = statement_stats(server)
        before = common.dbpulse_polls(ours.port)
        scrape_s: list[float] = []
        for _ in range(args.peer_scrapes):
            t0 = time.perf_counter()
            common.fetch_metrics(theirs.url)
            scrape_s.append(time.perf_counter() - t0)
        after = common.wait_dbpulse_polls(ours.port, before + args.polls, timeout=args.polls * args.interval * 4 + 60)
        delta = stats_delta(stats0, statement_stats(server))
        metrics = common.fetch_metrics(ours.url)
    polls = after - before
    failed = sum(common.metric_values(metrics, "dbpulse_source_poll_errors_total", source="postgres"))
    d_ms = sum(float(q["total_ms"]) for q in delta["dbpulse_bench"])
    p_ms = sum(float(q["total_ms"]) for q in delta["pgexp_bench"])
    read_wall = common.metric_values(metrics, "dbpulse_pg_database_read_duration_seconds")
    return {
        "dbpulse": {"polls": polls, "db_ms_total": d_ms, "db_ms_per_poll": d_ms / max(polls, 1),
                    "statements_per_poll": sum(int(q["calls"]) for q in delta["dbpulse_bench"]) / max(polls, 1),
                    "databases_watched": sum(common.metric_values(metrics, "dbpulse_pg_databases_watched")) or 1,
                    "other_database_read_wall_ms_median": (common.median(read_wall) * 1000) if read_wall else None,
                    "query_errors": sum(common.metric_values(metrics, "dbpulse_pg_query_errors_total")),
                    "poll_errors_since_start": failed,
                    "top_queries": delta["dbpulse_bench"][:5]},
        "postgres_exporter": {"polls": args.peer_scrapes, "db_ms_total": p_ms,
                              "db_ms_per_poll": p_ms / args.peer_scrapes,
                              "scrape_wall_ms_median": common.median(scrape_s) * 1000,
                              "top_queries": delta["pgexp_bench"][:5]},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", type=int, default=10)
    parser.add_argument("--tables", type=int, default=1000, help="per database")
    parser.add_argument("--statements", type=int, default=1000, help="per database")
    parser.add_argument("--polls", type=int, default=40, help="dbpulse polls at least (2 rounds of the slow cadences)")
    parser.add_argument("--peer-scrapes", type=int, default=10)
    parser.add_argument("--interval", type=float, default=3.0, help="dbpulse's poll interval (its timeout 80%%)")
    parser.add_argument("--size-ratio", type=float, default=20.0)
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    version = common.dbpulse_version()
    common.require(PG_EXPORTER, "postgres_exporter")
    with cluster(args.databases, args.tables, args.statements) as (server, build):
        print(f"cluster: {args.databases} databases x {args.tables} tables, {args.statements} statements each "
              f"(built in {sum(build.values()):.1f} s)")
        one = phase(server, every=False, args=args)
        every = phase(server, every=True, args=args)
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        pg_version = str(row[0]) if row else "unknown"
    ours = common.ratio(every["dbpulse"]["db_ms_per_poll"], one["dbpulse"]["db_ms_per_poll"])
    theirs = common.ratio(every["postgres_exporter"]["db_ms_per_poll"], one["postgres_exporter"]["db_ms_per_poll"])
    result = {
        "params": vars(args) | {"results_dir": None},
        "database": {"databases": args.databases, "tables_each": args.tables, "statements_each": args.statements},
        "versions": {"postgresql": pg_version, "postgres_exporter": common.pg_exporter_version(), "dbpulse": version},
        "phases": {"one": one, "every": every},
        "dbpulse_every_over_one": ours,
        "peer_every_over_one": theirs,
        "target": {"what": f"dbpulse's database time per poll with {args.databases} databases at most {GOAL}x "
                   "that with one", "met": ours is not None and ours <= GOAL},
    }
    common.print_table(["phase", "exporter", "DB ms per poll", "wall ms"], [
        [name, exporter, r[exporter]["db_ms_per_poll"],
         r[exporter].get("scrape_wall_ms_median", r[exporter].get("other_database_read_wall_ms_median"))]
        for name, r in (("one database", one), (f"{args.databases} databases", every))
        for exporter in ("dbpulse", "postgres_exporter")])
    print(f"\nevery / one: dbpulse {ours or 0:.2f}x, postgres_exporter {theirs or 0:.2f}x; "
          f"target (dbpulse <= {GOAL}x): {'met' if result['target']['met'] else 'NOT met'}")
    report.publish("pg_databases", result, args.results_dir, docs=not args.no_docs)
    return result


if __name__ == "__main__":
    main()
