"""The generic plan of each statement the advisor covers is kept in its report (bounded text), for the statement
page: planned this run or, in the service, kept from the run that planned it."""

from __future__ import annotations

import psycopg

from monitor.advisor import Advisor, Thresholds
from monitor.advisor.findings import STATEMENT_PLAN_CHARS


def _queryid(conn: psycopg.Connection[tuple[int]], fragment: str) -> int:
    row = conn.execute("SELECT queryid FROM pg_stat_statements WHERE query LIKE %s AND dbid = (SELECT oid FROM "
                       "pg_database WHERE datname = current_database())", (f"%{fragment}%",)).fetchone()
    assert row is not None
    return int(row[0])


def test_every_covered_statement_has_its_plan_text_in_the_report_across_runs(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, sku text NOT NULL, qty int)")
        conn.execute("INSERT INTO items SELECT g, 's' || g, g % 10 FROM generate_series(1, 5000) g")
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")  # no candidate: planned by coverage only
        conn.execute("INSERT INTO notes SELECT g, 'b' FROM generate_series(1, 5000) g")
        conn.execute("ANALYZE")
        for i in range(20):
            conn.execute("SELECT qty FROM items WHERE sku = %s", (f"s{i}",)).fetchall()
            conn.execute("SELECT sku FROM items WHERE id = %s", (i,)).fetchall()
            conn.execute("SELECT body FROM notes WHERE id = %s", (i,)).fetchall()
        by_sku, by_id = _queryid(conn, "WHERE sku ="), _queryid(conn, "FROM items WHERE id =")
        note = _queryid(conn, "FROM notes")
    advisor = Advisor(fresh_db, "t", Thresholds(min_table_rows=100))
    first = advisor.run()
    assert "Seq Scan on items" in first.statement_plans[by_sku]
    assert "Filter: (sku = $1)" in first.statement_plans[by_sku]
    assert "Index Scan using items_pkey on items" in first.statement_plans[by_id]
    assert all(len(text) <= STATEMENT_PLAN_CHARS for text in first.statement_plans.values())
    assert "statement_plans" not in first.to_json_dict()  # not part of the JSON contract
    assert "Index Scan using notes_pkey on notes" in first.statement_plans[note]
    second = advisor.run()  # a text covered before is not planned again: its plan is kept from the first run
    assert second.statement_plans[note] == first.statement_plans[note]
    assert second.statement_plans[by_id] == first.statement_plans[by_id]
    assert second.statement_plans[by_sku] == first.statement_plans[by_sku]
