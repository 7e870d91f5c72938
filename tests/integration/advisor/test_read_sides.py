"""Every read side the unit tests list plans on a real server as a role with SELECT only, where the write
itself cannot be planned: the transformation gives texts the server accepts, not just texts that parse. On
PostgreSQL 13 (PREPARE + EXPLAIN EXECUTE) and 18 (EXPLAIN (GENERIC_PLAN)) as on the harness's own."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from harness.servers import LocalPostgres
from monitor.advisor.normalize import Planned, fallback_form
from monitor.advisor.whatif import Budget, PlanError, WhatIf
from monitor.advisor.writes import read_side
from tests.unit.advisor.test_writes import READS

SCHEMA = """
CREATE SCHEMA s;
CREATE TABLE pgbench_accounts (aid int, bid int, abalance int, filler char(84));
CREATE TABLE u (id int, k int, t int, t_id int, a int, v int);
CREATE TABLE t (id int, u int, a int, b int, n int, x int, done boolean, created timestamptz);
CREATE TABLE s.t (id int, u int, a int, b int, created timestamptz);
CREATE TABLE jobs (id int, state text);
"""
ROLE, PASSWORD = "reads_only", "reads-only-pw"


def _plan(whatif: WhatIf, text: str, n_params: int) -> None:
    try:
        whatif.explain(text, n_params)
    except PlanError as exc:  # what the advisor does with a type refusal (normalize.py)
        fallback = fallback_form(Planned(text), exc.sqlstate, str(exc))
        if fallback is None:
            raise
        whatif.explain(fallback.text, n_params)


@pytest.fixture(scope="module", params=["13", "18"])
def other_server(request: pytest.FixtureRequest) -> Iterator[LocalPostgres]:
    with LocalPostgres(version=str(request.param)) as pg:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE shop")
        yield pg


def test_read_sides_plan_on_other_releases(other_server: LocalPostgres) -> None:
    check_read_sides(other_server.dsn("shop"), other_server)


def test_read_sides_plan_as_a_select_only_role(fresh_db: str, pg_server: LocalPostgres) -> None:
    check_read_sides(fresh_db, pg_server)


def check_read_sides(fresh_db: str, pg_server: LocalPostgres) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(SCHEMA)  # type: ignore[arg-type]
        conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}' IN ROLE pg_monitor")  # type: ignore[arg-type]
        for schema in ("public", "s"):
            conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {ROLE}")  # type: ignore[arg-type]
            conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {ROLE}")  # type: ignore[arg-type]
    dsn = pg_server.dsn(fresh_db.rsplit("/", 1)[1], user=ROLE, password=PASSWORD)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SET default_transaction_read_only = on")
            whatif = WhatIf(conn, conn.info.server_version, Budget(1000, 120))
            for write, _ in READS:
                n_params = max((p for p in range(1, 10) if f"${p}" in write), default=0)
                side = read_side(write)
                assert side is not None and side.text is not None
                _plan(whatif, side.text, n_params)  # raises PlanError when the server refuses it
                with pytest.raises(PlanError) as refused:  # the write itself: refused to this role
                    _plan(whatif, write, n_params)
                assert refused.value.sqlstate == "42501", (write, refused.value)
    finally:
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {ROLE}")  # type: ignore[arg-type]
            conn.execute(f"DROP ROLE {ROLE}")  # type: ignore[arg-type]
