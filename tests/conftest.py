"""Test harness: throwaway PostgreSQL and Redis servers on free ports.

The servers are started once per test session and torn down at the end, so
tests never depend on whatever happens to run on the machine.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator

import psycopg
import pytest

from harness.servers import LocalPostgres, LocalRedis
from tests.support import StandInApp

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[LocalPostgres]:
    """PostgreSQL with pg_stat_statements preloaded and HypoPG available."""
    server = LocalPostgres()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def fresh_db(pg_server: LocalPostgres) -> Iterator[str]:
    """DSN (superuser) of a new, empty database with pg_stat_statements and hypopg created."""
    name = f"t{next(_db_counter)}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    dsn = pg_server.dsn(name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("CREATE EXTENSION hypopg")
    yield dsn
    drop_database(pg_server, name)


def drop_database(server: LocalPostgres, name: str) -> None:
    """Drop a test's database and its pg_stat_statements entries: they outlive the database, and a later test
    of the same worker that looks a statement up by its text would find this one's too (same text, other
    queryid: seen as a flaky test under xdist)."""
    with contextlib.suppress(psycopg.Error), psycopg.connect(server.dsn(name), autocommit=True) as conn:
        # from the database itself: the extension's functions are where it was created (a test may drop it)
        conn.execute("SELECT pg_stat_statements_reset(0::oid, oid, 0::bigint) FROM pg_database "
                     "WHERE datname = current_database()")
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    server = LocalRedis()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def stand_in_app() -> Iterator[StandInApp]:
    """An application serving the seeds' /health, /health/live, /health/ready (with a pool block)."""
    yield from StandInApp().serve()
