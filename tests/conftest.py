"""Test harness: throwaway PostgreSQL and Redis servers on free ports.

The servers are started once per test session and torn down at the end, so
tests never depend on whatever happens to run on the machine.
"""

from __future__ import annotations

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
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
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
