"""What the advisor holds back is said, with what to do: no privilege to EXPLAIN, no HypoPG, the
verification budget spent."""

from __future__ import annotations

import psycopg

from monitor.advisor import Advisor, Thresholds

SCHEMA = """
CREATE TABLE visits (id int PRIMARY KEY, ref text NOT NULL, note text);
INSERT INTO visits SELECT g, 'r' || g, 'n' FROM generate_series(1, 20000) g;
ANALYZE visits;
"""


def _workload(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(20):
            conn.execute("SELECT id FROM visits WHERE ref = %s", (f"r{i}",)).fetchall()


def test_no_select_privilege_is_named_with_the_grant_to_run(fresh_db: str, pg_server: object) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute("CREATE ROLE watcher LOGIN PASSWORD 'watcher-pw' IN ROLE pg_monitor")
    _workload(fresh_db)
    dsn = pg_server.dsn(fresh_db.rsplit("/", 1)[1], user="watcher", password="watcher-pw")  # type: ignore[attr-defined]
    report = Advisor(dsn, "no-select", Thresholds(min_table_rows=1000)).run()
    (skipped,) = [s for s in report.skipped if s.query.startswith("SELECT id FROM visits")]
    assert skipped.category == "privilege" and "permission denied" in skipped.reason
    assert "SELECT on table visits" in skipped.reason, skipped.reason
    (note,) = [n for n in report.notes if "lack of privilege" in n]
    assert "lacks SELECT on table visits" in note and "no write privilege is needed" in note, note
    assert not any(w in note for w in ("UPDATE", "INSERT", "DELETE", "ALL PRIVILEGES")), note
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("DROP OWNED BY watcher")
        conn.execute("DROP ROLE watcher")


def test_no_hypopg_and_a_spent_budget_are_said(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(SCHEMA)
    _workload(fresh_db)
    report = Advisor(fresh_db, "budget", Thresholds(min_table_rows=1000, verification_max_explains=1)).run()
    assert any(n.startswith("verification budget exhausted") and "raise verification_max_explains" in n
               for n in report.notes), report.notes
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("DROP EXTENSION hypopg")
    report = Advisor(fresh_db, "no-hypopg", Thresholds(min_table_rows=1000)).run()
    assert any("CREATE EXTENSION hypopg" in n for n in report.notes), report.notes
    assert [a.checked for a in report.plan.actions] == ["heuristic"]


def test_no_hypopg_is_asked_for_only_where_a_candidate_needs_it(fresh_db: str) -> None:
    """A database with tables but no statement that wants an index (or no tables at all) is not told to run
    CREATE EXTENSION hypopg: there is nothing it would verify."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute("DROP EXTENSION hypopg")
        conn.execute("SELECT pg_stat_statements_reset()")
        for i in range(20):
            conn.execute("SELECT ref FROM visits WHERE id = %s", (i,)).fetchall()  # the primary key serves it
    report = Advisor(fresh_db, "no-candidate", Thresholds(min_table_rows=1000)).run()
    assert not [f for f in report.findings if f.kind == "missing_index"], report.findings
    (note,) = [n for n in report.notes if n.startswith("HypoPG verification unavailable")]
    assert "CREATE EXTENSION" not in note and "no index candidate" in note, note

