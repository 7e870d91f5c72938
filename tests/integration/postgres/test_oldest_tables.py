"""OLDEST_TABLES names a TOAST relation after its table, once: the greater age of the two, on every supported
major, so ``dbpulse_pg_table_frozen_age`` has one series per table and kind."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from collectors.postgres import queries
from harness.servers import SUPPORTED_MAJORS, LocalPostgres
from tests.support import pg_poller

TRUTH = """
SELECT c.relname, age(c.relfrozenxid)::float8 AS heap_age, age(t.relfrozenxid)::float8 AS toast_age,
       greatest(mxid_age(c.relminmxid), mxid_age(t.relminmxid))::float8 AS mxid_age
FROM pg_class c JOIN pg_class t ON t.oid = c.reltoastrelid
WHERE c.relname IN ('toast_older', 'heap_older')
"""


@pytest.fixture(scope="module", params=SUPPORTED_MAJORS)
def server(request: pytest.FixtureRequest) -> Iterator[tuple[int, str]]:
    """A server of one major with a table whose heap is older than its TOAST relation, and (14+, where VACUUM
    can leave the TOAST relation out) one whose TOAST relation is the older."""
    server = LocalPostgres(version=request.param)
    server.start()
    try:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            version = int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
            for table in ("toast_older", "heap_older"):
                conn.execute(f"CREATE TABLE {table} (id int, body text)")
                conn.execute(f"INSERT INTO {table} SELECT 1, string_agg(md5(i::text), '') "  # a TOASTed value
                             "FROM generate_series(1, 500) i")
            for _ in range(50):  # XIDs, so that the relations frozen next are younger
                conn.execute("SELECT txid_current()")
            toast = conn.execute("SELECT reltoastrelid::regclass::text FROM pg_class WHERE relname = 'heap_older'")
            conn.execute(f"VACUUM (FREEZE) {toast.fetchone()[0]}")  # type: ignore[index]
            if version >= 140000:
                conn.execute("VACUUM (FREEZE, PROCESS_TOAST false) toast_older")
        yield version, server.dsn()
    finally:
        server.cleanup()


def oldest(conn: psycopg.Connection[Any], version: int, limit: int) -> list[tuple[str, str, bool, float, float]]:
    sql = queries.OLDEST_TABLES.sql(version)
    assert sql is not None
    return [tuple(r) for r in conn.execute(sql.encode(), {"limit": limit}).fetchall()]  # type: ignore[misc]


def test_a_table_is_one_row_with_the_greater_age_of_it_and_its_toast_relation(server: tuple[int, str]) -> None:
    version, dsn = server
    with psycopg.connect(dsn) as conn:  # one transaction: the ages are read at one point
        truth = {r[0]: r[1:] for r in conn.execute(TRUTH).fetchall()}
        rows = [r for r in oldest(conn, version, 10_000) if r[0] == "public"]
    assert truth["heap_older"][0] > truth["heap_older"][1]
    assert version < 140000 or truth["toast_older"][1] > truth["toast_older"][0]
    expected = [("public", table, toast_age > heap_age, max(heap_age, toast_age), mxid_age)
                for table, (heap_age, toast_age, mxid_age) in truth.items()]
    assert sorted(rows) == sorted(expected)


def test_a_toast_relation_in_the_top_k_without_its_table_is_named_after_it(server: tuple[int, str]) -> None:
    version, dsn = server
    if version < 140000:
        pytest.skip("VACUUM freezes a table's TOAST relation with it before PostgreSQL 14 (no PROCESS_TOAST)")
    with psycopg.connect(dsn) as conn:
        _heap_age, toast_age, mxid_age = {r[0]: r[1:] for r in conn.execute(TRUTH).fetchall()}["toast_older"]
        k = conn.execute("SELECT count(*) FROM pg_class WHERE relkind IN ('r', 'm', 't') "
                         "AND age(relfrozenxid) >= %s", (toast_age,)).fetchone()[0]  # type: ignore[index]
        rows = oldest(conn, version, k)
    assert ("public", "toast_older", True, toast_age, mxid_age) in rows
    assert not any(r[1].startswith("pg_toast_") for r in rows)


def test_the_poller_exports_one_series_per_table_and_kind(server: tuple[int, str]) -> None:
    _version, dsn = server
    snap = asyncio.run(_poll(dsn))
    ages = [s.labels for s in snap.samples() if s.name == "dbpulse_pg_table_frozen_age" and "public" in s.labels]
    assert len(ages) == len(set(ages)) >= 2
    assert not any(label.startswith("pg_toast") for labels in ages for label in labels)


async def _poll(dsn: str) -> Any:
    poller = pg_poller(dsn, maintenance_interval=0, top_maintenance=10_000)
    try:
        return await poller.poll()
    finally:
        await poller.close()
