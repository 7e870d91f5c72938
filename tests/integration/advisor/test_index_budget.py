"""``index_budget_mb``: the advice fits a storage budget, chosen by verified benefit per byte.

One table whose tenants' lists are read newest first (``WHERE tenant_id = $1 ORDER BY created_at DESC
LIMIT 20``): without a budget the advisor creates the composite ``(tenant_id, created_at)``, which also
removes the sort. Its leading column alone, ``(tenant_id)``, is a fifth of its size (20 tenants: the
deduplicated btree stores each once) and still finds a tenant's rows. A lookup on a second table needs an
index larger than the budget. Under the budget the plan creates ``(tenant_id)`` and holds the others back
with their sizes; above the total the plan is the one without a budget.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from harness.servers import LocalPostgres
from monitor.advisor import Advisor, Thresholds, render_json
from monitor.advisor.candidates import Candidate
from monitor.advisor.catalog import read_catalog
from monitor.advisor.query_analysis import Key
from tests.integration.advisor.conftest import new_database, reset_statistics

SCHEMA = """
CREATE TABLE orders (id bigint PRIMARY KEY, tenant_id int NOT NULL, created_at timestamptz NOT NULL, note text);
INSERT INTO orders SELECT g, g % 20, timestamptz '2026-01-01' - (g * 7919 % 60000) * interval '1 minute',
  repeat('x', 60) FROM generate_series(1, 60000) g;
CREATE TABLE events (id bigint PRIMARY KEY, ext_id text NOT NULL, payload text);
INSERT INTO events SELECT g, md5(g::text), '' FROM generate_series(1, 60000) g;
ANALYZE orders;
ANALYZE events;
"""
MB = 1024 * 1024
TIGHT_MB = 1.0  # (tenant_id) fits, (tenant_id, created_at) and events (ext_id) do not
ROOMY_FOR_TWO_MB = 4.5  # the btree on events (ext_id) fits with (tenant_id), not with the composite; its hash does
ALONE_FITS_MB = 1.6  # (created_at) fits, (tenant_id, created_at) does not


@pytest.fixture(scope="module")
def budget_db(pg_server: LocalPostgres) -> Iterator[str]:
    dsn = new_database(pg_server, "advisor_budget")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
    reset_statistics(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(300):
            conn.execute("SELECT id, created_at FROM orders WHERE tenant_id = %s ORDER BY created_at DESC LIMIT 20",
                         (i % 20,)).fetchall()
        for i in range(300):
            conn.execute("SELECT * FROM events WHERE ext_id = md5(%s)", (str(i * 7 + 1),)).fetchall()
    yield dsn
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS advisor_budget WITH (FORCE)")


def _advise(dsn: str, budget_mb: float) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(render_json(Advisor(dsn, "shop", Thresholds(index_budget_mb=budget_mb)).run()))
    return report


def _creates(report: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(n["table"], n["columns"]) for a in report["plan"]["actions"] for n in a["creates"]]


def _built_size(dsn: str, ddl: str) -> int:
    """The index built for real (it must build), its size, and gone again."""
    with psycopg.connect(dsn) as conn:
        assert ddl.startswith("CREATE INDEX CONCURRENTLY ON "), ddl
        conn.execute(ddl.replace("CREATE INDEX CONCURRENTLY ON ", "CREATE INDEX budget_probe ON "))  # type: ignore[arg-type]
        row = conn.execute("SELECT pg_relation_size('budget_probe')").fetchone()
        conn.rollback()
    assert row is not None
    return int(row[0])


def test_without_a_budget_the_composite_that_removes_the_sort(budget_db: str) -> None:
    creates = _creates(_advise(budget_db, 0))
    assert ("public.orders", ["tenant_id", "created_at"]) in creates, creates
    assert ("public.events", ["ext_id"]) in creates, creates
    roomy = _advise(budget_db, 100)  # more than everything needs: the same plan
    assert _creates(roomy) == creates
    assert not any(n.startswith("index budget") for n in roomy["notes"])


def test_under_the_budget_the_leading_column_alone(budget_db: str) -> None:
    report = _advise(budget_db, TIGHT_MB)
    assert _creates(report) == [("public.orders", ["tenant_id"])], _creates(report)
    ddl = report["plan"]["actions"][0]["creates"][0]["ddl"]
    assert _built_size(budget_db, ddl) <= TIGHT_MB * MB
    held = {h["subject"]: h["reason"] for h in report["plan"]["held_back"] if h["kind"] == "missing_index"}
    composite = held["public.orders (tenant_id, created_at)"]
    assert composite.startswith("over the index budget: its estimated ") and "1.0 MB of index_budget_mb" in composite
    assert "public.orders (tenant_id) is advised instead" in composite
    assert held["public.events (ext_id)"].startswith("over the index budget")
    # nothing left out can be copied: no finding carries its DDL
    advised = [f for f in report["findings"] if f["kind"] == "missing_index"]
    assert [f["columns"] for f in advised] == [["tenant_id"]]
    assert "leading columns of a composite that does not fit" in advised[0]["evidence"]
    note = next(n for n in report["notes"] if n.startswith("index budget"))
    assert "1 of them a narrower form of one that does not fit" in note
    statuses = {c["query"].split(" FROM ")[1].split()[0]: c["status"] for c in report["coverage"]}
    assert statuses == {"orders": "action", "events": "over_budget"}, report["coverage"]


def test_a_budget_nothing_fits_in_creates_nothing(budget_db: str) -> None:
    report = _advise(budget_db, 0.01)
    assert _creates(report) == []
    held = [h["subject"] for h in report["plan"]["held_back"] if h["kind"] == "missing_index"]
    assert "public.orders (tenant_id, created_at)" in held and "public.events (ext_id)" in held
    assert not [f for f in report["findings"] if f["kind"] == "missing_index"]


def test_a_hash_index_on_the_wide_key_leaves_room_for_the_composite(budget_db: str) -> None:
    """The btree on ``ext_id`` (33-byte md5 texts) does not fit beside the composite; a hash index, which
    stores 4-byte hash codes and serves the ``=`` lookup as well, does: both lookups are served, the sort too."""
    report = _advise(budget_db, ROOMY_FOR_TWO_MB)
    assert sorted(_creates(report)) == [("public.events", ["ext_id"]), ("public.orders", ["tenant_id", "created_at"])]
    ddls = {a["table"]: a["creates"][0]["ddl"] for a in report["plan"]["actions"]}
    assert ddls["public.events"] == "CREATE INDEX CONCURRENTLY ON public.events USING hash (ext_id);"
    assert "USING" not in ddls["public.orders"]
    built = sum(_built_size(budget_db, ddl) for ddl in ddls.values())
    assert built <= ROOMY_FOR_TWO_MB * MB
    advised = {f["table"]: f["evidence"] for f in report["findings"] if f["kind"] == "missing_index"}
    assert "a hash index, smaller than a btree on this wide key" in advised["public.events"]


def test_the_hash_size_estimate_is_close_to_the_built_index(budget_db: str) -> None:
    """What a hash index spends of the budget: within 10 % of the index built for real."""
    with psycopg.connect(budget_db, autocommit=True) as conn:
        cat = read_catalog(conn)
    table = next(t for t in cat.tables.values() if t.name == "events")
    cand = Candidate(table, ((Key("ext_id"), False),), 1, method="hash")
    built = _built_size(budget_db, cand.ddl())
    assert abs(cand.estimated_bytes() - built) <= 0.1 * built, (cand.estimated_bytes(), built)


SIZES = """
CREATE TABLE sized (id int, few_int int, few_char char(15), few_text text, few_numeric numeric(12, 2), ts timestamptz,
                    day date, quad int);
INSERT INTO sized
  SELECT g, g % 7, (g % 7)::text, 'value ' || g % 7, g % 7, timestamptz '2026-01-01' + g * interval '1 s',
         date '2020-01-01' + g / 700, g / 4
  FROM generate_series(1, 80000) g;
SET default_statistics_target = 10000;  -- every row sampled: the test measures the size model, not ANALYZE's sample
ANALYZE sized;
RESET default_statistics_target;
"""


@pytest.mark.parametrize("columns", [("few_int",), ("few_char",), ("few_text",), ("few_numeric",), ("ts",),
                                     ("day",), ("quad",), ("few_int", "ts"), ("few_char", "few_int")])
def test_the_size_estimate_is_close_to_the_built_index(budget_db: str, columns: tuple[str, ...]) -> None:
    """What the budget is spent by: within 10 % of the index built for real, deduplicated or not by type."""
    with psycopg.connect(budget_db, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('sized') IS NOT NULL").fetchone()
        if not (exists and exists[0]):
            conn.execute(SIZES)
        cat = read_catalog(conn)
    table = next(t for t in cat.tables.values() if t.name == "sized")
    assert [c for c in ("few_int", "few_char", "few_text", "few_numeric", "ts") if table.columns[c].deduplicates] \
        == ["few_int", "few_text", "ts"]
    cand = Candidate(table, tuple((Key(c), False) for c in columns), len(columns))
    built = _built_size(budget_db, f"CREATE INDEX CONCURRENTLY ON public.sized ({', '.join(columns)});")
    assert abs(cand.estimated_bytes() - built) <= 0.1 * built, (cand.estimated_bytes(), built)


def _hypo_cost(dsn: str, ddl: str, sql: str) -> float:
    """The generic plan's total cost of ``sql`` with ``ddl`` as a hypothetical index."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT hypopg_create_index(%s)", (ddl.replace(" CONCURRENTLY", "").rstrip(";"),))
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute(f"PREPARE probe(int) AS {sql}")  # type: ignore[arg-type]
        row = conn.execute("EXPLAIN (FORMAT JSON) EXECUTE probe(1)").fetchone()
        conn.execute("SELECT hypopg_reset()")
        conn.rollback()
    assert row is not None
    return float(row[0][0]["Plan"]["Total Cost"])


def test_the_sort_column_alone_when_it_removes_more_than_the_leading_one(budget_db: str) -> None:
    """Between the composite's two narrower forms that fit, the one that leaves the list cheaper: reading the
    dates in order and filtering on the tenant stops at the LIMIT, where (tenant_id) reads and sorts all of a
    tenant's rows."""
    sql = "SELECT id, created_at FROM orders WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT 20"
    alone = _hypo_cost(budget_db, "CREATE INDEX ON public.orders (created_at)", sql)
    leading = _hypo_cost(budget_db, "CREATE INDEX ON public.orders (tenant_id)", sql)
    assert alone < leading  # the premise: on this table the sort column alone serves the list better
    report = _advise(budget_db, ALONE_FITS_MB)
    assert _creates(report) == [("public.orders", ["created_at"])], _creates(report)
    ddl = report["plan"]["actions"][0]["creates"][0]["ddl"]
    assert _built_size(budget_db, ddl) <= ALONE_FITS_MB * MB
    advised = [f["evidence"] for f in report["findings"] if f["kind"] == "missing_index"]
    assert "one column of a composite that does not fit, the rows read in its order" in advised[0]
