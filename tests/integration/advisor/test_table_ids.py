"""A finding names its table by oid and (schema, name), so a schema whose name holds a dot is found as itself:
``"sales.eu".orders`` is not ``sales."eu.orders"``, though both read ``sales.eu.orders``."""

from __future__ import annotations

import json

import psycopg

from monitor.advisor.advisor import Advisor
from monitor.advisor.settings import Thresholds
from monitor.core.history import History
from monitor.web.detail import find_table, table_findings


def test_a_table_in_a_schema_whose_name_holds_a_dot(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute('CREATE SCHEMA "sales.eu"')
        conn.execute('CREATE TABLE "sales.eu".orders (id int PRIMARY KEY, customer int)')
        conn.execute('INSERT INTO "sales.eu".orders SELECT g, g % 100 FROM generate_series(1, 5000) g')
        conn.execute('CREATE INDEX orders_customer_a ON "sales.eu".orders (customer)')
        conn.execute('CREATE INDEX orders_customer_b ON "sales.eu".orders (customer)')  # a duplicate: a finding
        conn.execute("ANALYZE")
        relid = conn.execute("""SELECT '"sales.eu".orders'::regclass::oid::int""").fetchone()[0]  # type: ignore[index]
    report = Advisor(fresh_db, "dots", Thresholds(min_table_rows=100, unused_min_stats_age_seconds=0)).run()
    (dup,) = [f for f in report.findings if f.kind == "duplicate_index"]
    assert dup.table == "sales.eu.orders"  # the display text, as before
    assert dup.table_id is not None and (dup.table_id.relid, dup.table_id.schema, dup.table_id.name) == (
        relid, "sales.eu", "orders")
    as_json = json.loads(json.dumps(dup.to_json_dict()))
    assert {k: as_json[k] for k in ("table", "relid", "schema", "relname")} == {
        "table": "sales.eu.orders", "relid": relid, "schema": "sales.eu", "relname": "orders"}

    # The table page's lookup and its findings: by the pair the finding holds, never by splitting at a dot.
    assert find_table("sales.eu.orders", None, History(2, []), report) == ("sales.eu", "orders")
    assert dup in table_findings(report, "sales.eu", "orders")
    assert table_findings(report, "sales", "eu.orders") == []
