"""A scenario database shared by the advisor integration tests (built once per module)."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from harness.servers import LocalPostgres

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
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]
