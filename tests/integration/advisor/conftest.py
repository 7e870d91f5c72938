"""A scenario database shared by the advisor integration tests (built once per module)."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from harness.servers import LocalPostgres
from tests.conftest import drop_database

sys.path.insert(0, str(Path(__file__).parent))

from tests.integration.advisor.scenario import build, run_workload

_counter = itertools.count()


@pytest.fixture(scope="module")
def scenario_db(pg_server: LocalPostgres) -> Iterator[str]:
    """DSN of a database with the planted scenario built and its workload run once."""
    name = f"advisor_scenario_{next(_counter)}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    dsn = pg_server.dsn(name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("CREATE EXTENSION hypopg")
    build(dsn)
    run_workload(dsn)
    yield dsn
    drop_database(pg_server, name)


@pytest.fixture(scope="session")
def commit_ts_server() -> Iterator[LocalPostgres]:
    """track_commit_timestamp = on: an index's age is known from its pg_class row's commit time."""
    server = LocalPostgres(settings={"track_commit_timestamp": "on"})
    server.start()
    yield server
    server.cleanup()


def new_database(server: LocalPostgres, name: str) -> str:
    """DSN of a new database ``name`` (dropped first if left over) with pg_stat_statements and hypopg."""
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    dsn = server.dsn(name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("CREATE EXTENSION hypopg")
    return dsn


def reset_statistics(dsn: str, timeout: float = 30) -> None:
    """Reset the database's statistics once the seeding sessions' counters have reached them.

    A session flushes its table counters at most every second or when it exits, which can be after the
    next session started: reset too early and the seed's inserts come back as writes in the window."""
    import time

    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT coalesce(sum(s.n_tup_ins), 0) >= coalesce(sum(c.reltuples::bigint), 0) "
                "FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid").fetchone()
            if (row and row[0]) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        conn.execute("SELECT pg_stat_reset()")
        conn.execute("SELECT pg_stat_statements_reset()")
