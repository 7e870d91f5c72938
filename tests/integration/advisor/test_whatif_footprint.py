"""The advisor's what-if plans must not flood pg_stat_statements (it keeps a bounded number
of entries and evicts the application's statements when full)."""

from __future__ import annotations

import psycopg

from monitor.advisor import Advisor, Thresholds


def test_what_if_plans_add_a_handful_of_entries(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        for i in range(10):
            conn.execute(f"CREATE TABLE t{i} (id int PRIMARY KEY, a int, b int)")
            conn.execute(f"INSERT INTO t{i} SELECT g, g % 100, g % 7 FROM generate_series(1, 5000) g")
            conn.execute(f"ANALYZE t{i}")
            for j in range(3):
                conn.execute(f"SELECT * FROM t{i} WHERE a = %s", (j,)).fetchall()
                conn.execute(f"SELECT * FROM t{i} WHERE b = %s ORDER BY a LIMIT 5", (j,)).fetchall()
    report = Advisor(fresh_db, "shop", Thresholds(min_table_rows=1000)).run()
    assert report.verification.explains >= 20
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT query FROM pg_stat_statements WHERE query LIKE 'EXPLAIN%' AND dbid = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())").fetchall()
    assert 1 <= len(rows) <= 5, [r[0] for r in rows]
