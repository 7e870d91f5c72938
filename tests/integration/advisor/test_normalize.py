"""Normalized texts that do not prepare, and the forms the advisor plans instead: a table of real cases.

Each row is sent with its literals to a real PostgreSQL; ``pg_stat_statements`` normalizes it (the
second column is what it really recorded), ``normalize.py`` rewrites it (third column), and the
server plans the result (fourth column: the plan's shape, with the generic plan of the rewritten text).
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from collectors.postgres.statements import StatementStat
from monitor.advisor import Advisor, Thresholds
from monitor.advisor.candidates import Workload
from monitor.advisor.plans import summary
from monitor.advisor.query_analysis import analyze
from monitor.advisor.selection import explain_statement
from monitor.advisor.whatif import Budget, PlanError, WhatIf

SCHEMA = """
CREATE TABLE orders (id int PRIMARY KEY, created_at timestamptz NOT NULL, day date NOT NULL, at time NOT NULL,
                     qty numeric NOT NULL, status text NOT NULL, ext uuid NOT NULL);
INSERT INTO orders SELECT g, now() - g * interval '1 minute', current_date - g % 100,
                          '08:00'::time + g * interval '1 s', g % 50, (ARRAY['new', 'paid'])[1 + g % 2],
                          md5(g::text)::uuid
                   FROM generate_series(1, 2000) g;
ANALYZE orders;
"""
SEQ = "Seq Scan on orders"
AGG = "Aggregate → Seq Scan on orders"
# (sent with literals, what pg_stat_statements records, what the advisor plans, the plan's shape)
CASES = [
    ("SELECT count(*) AS r1 FROM orders WHERE created_at > now() - interval '10 minutes'",
     "SELECT count(*) AS r1 FROM orders WHERE created_at > now() - interval $1",
     "SELECT count(*) AS r1 FROM orders WHERE created_at > now() - CAST($1 AS interval)", AGG),
    ("SELECT id AS r2 FROM orders WHERE day = date '2024-01-01'",
     "SELECT id AS r2 FROM orders WHERE day = date $1",
     "SELECT id AS r2 FROM orders WHERE day = CAST($1 AS date)", SEQ),
    ("SELECT id AS r3 FROM orders WHERE created_at < timestamp '2024-01-01 00:00'",
     "SELECT id AS r3 FROM orders WHERE created_at < timestamp $1",
     "SELECT id AS r3 FROM orders WHERE created_at < CAST($1 AS timestamp)", SEQ),
    ("SELECT id AS r4 FROM orders WHERE created_at >= timestamptz '2024-01-01 00:00+00'",
     "SELECT id AS r4 FROM orders WHERE created_at >= timestamptz $1",
     "SELECT id AS r4 FROM orders WHERE created_at >= CAST($1 AS timestamptz)", SEQ),
    ("SELECT id AS r5 FROM orders WHERE at > time '08:00'",
     "SELECT id AS r5 FROM orders WHERE at > time $1",
     "SELECT id AS r5 FROM orders WHERE at > CAST($1 AS time)", SEQ),
    ("SELECT id AS r6 FROM orders WHERE day < date '2024-01-01' + interval '3' month",
     "SELECT id AS r6 FROM orders WHERE day < date $1 + interval $2 month",
     "SELECT id AS r6 FROM orders WHERE day < CAST($1 AS date) + CAST($2 AS interval month)", SEQ),
    ("SELECT id AS r7 FROM orders WHERE created_at > timestamp with time zone '2024-01-01'",
     "SELECT id AS r7 FROM orders WHERE created_at > timestamp with time zone $1",
     "SELECT id AS r7 FROM orders WHERE created_at > CAST($1 AS timestamp with time zone)", SEQ),
    ("SELECT id AS r8 FROM orders WHERE ext = uuid 'c4ca4238-a0b9-3382-8dcc-509a6f75849b'",
     "SELECT id AS r8 FROM orders WHERE ext = uuid $1",
     "SELECT id AS r8 FROM orders WHERE ext = CAST($1 AS uuid)", SEQ),
    ("SELECT sum(qty) AS r9 FROM orders WHERE qty BETWEEN .06 - 0.01 AND .06 + 0.01",
     "SELECT sum(qty) AS r9 FROM orders WHERE qty BETWEEN $1 - $2 AND $3 + $4",
     "SELECT sum(qty) AS r9 FROM orders WHERE qty BETWEEN CAST($1 AS numeric) - CAST($2 AS numeric) "
     "AND CAST($3 AS numeric) + CAST($4 AS numeric)", AGG),
    ("SELECT sum(CASE WHEN status = 'new' THEN 1 ELSE 0 END) AS r10 FROM orders",
     "SELECT sum(CASE WHEN status = $1 THEN $2 ELSE $3 END) AS r10 FROM orders",
     "SELECT sum(CASE WHEN status = $1 THEN CAST($2 AS numeric) ELSE CAST($3 AS numeric) END) AS r10 FROM orders",
     AGG),
    # an explicit cast written by the application is left alone
    ("SELECT id AS r14 FROM orders WHERE 'x' IS NOT NULL AND qty = 3",
     "SELECT id AS r14 FROM orders WHERE $1 IS NOT NULL AND qty = $2",
     "SELECT id AS r14 FROM orders WHERE CAST($1 AS text) IS NOT NULL AND qty = $2", "Result → " + SEQ),
    # (pg_stat_statements ignores column aliases when it identifies statements: every row differs elsewhere)
    ("SELECT id AS r12 FROM orders WHERE day > '2024-01-01'::date",
     "SELECT id AS r12 FROM orders WHERE day > $1::date",
     "SELECT id AS r12 FROM orders WHERE day > $1::date", SEQ),
]
# Still unplannable, and why: the skipped list names it, its category counts it.
UNPLANNABLE = ("SELECT x AS r13 FROM generate_series(1, 3) x", "SELECT x AS r13 FROM generate_series($1, $2) x")


@pytest.fixture(scope="module")
def recorded(pg_server: object) -> Iterator[tuple[str, dict[str, StatementStat]]]:
    admin = pg_server.dsn()  # type: ignore[attr-defined]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE DATABASE normalize_cases")
    dsn = pg_server.dsn("normalize_cases")  # type: ignore[attr-defined]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("CREATE EXTENSION hypopg")
        conn.execute(SCHEMA)
        conn.execute("SELECT pg_stat_statements_reset()")
        for sent, *_ in [*CASES, UNPLANNABLE]:
            conn.execute(sent).fetchall()  # type: ignore[arg-type]
        rows = conn.execute("SELECT queryid, query FROM pg_stat_statements WHERE query LIKE '%AS r%'").fetchall()
    yield dsn, {q: StatementStat(int(i), q, 1) for i, q in rows}
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE normalize_cases WITH (FORCE)")


@pytest.mark.parametrize(("sent", "normalized", "planned", "shape"), CASES, ids=[c[1].split()[3] for c in CASES])
def test_normalized_text_is_planned_in_an_equivalent_form(
        recorded: tuple[str, dict[str, StatementStat]], sent: str, normalized: str, planned: str, shape: str) -> None:
    dsn, stats = recorded
    assert normalized in stats, sorted(stats)  # what pg_stat_statements really recorded
    stat = stats[normalized]
    analysis = analyze(stat.query)
    workload = Workload([(stat, analysis)])
    from monitor.advisor.normalize import planned_form

    first = planned_form(stat.query)
    if first.rewrites:
        workload.planned_texts[stat.queryid] = first.text
        workload.rewrites[stat.queryid] = first.rewrites
    with psycopg.connect(dsn, autocommit=True) as conn:
        if first.text == normalized and "::" not in normalized:  # as recorded, it must really fail
            conn.execute("SET plan_cache_mode = force_generic_plan")
            with pytest.raises(psycopg.Error):
                conn.execute(f"PREPARE p AS {normalized}")  # type: ignore[arg-type]
        whatif = WhatIf(conn, conn.info.server_version, Budget(10, 10))
        plan = explain_statement(whatif, workload, stat, analysis)
    assert workload.planned(stat, analysis)[0] == planned
    assert summary(plan) == shape


def test_what_still_cannot_be_planned_is_counted_by_reason(recorded: tuple[str, dict[str, StatementStat]]) -> None:
    dsn, stats = recorded
    stat = stats[UNPLANNABLE[1]]
    with psycopg.connect(dsn, autocommit=True) as conn:
        whatif = WhatIf(conn, conn.info.server_version, Budget(10, 10))
        with pytest.raises(PlanError):
            explain_statement(whatif, Workload([(stat, analyze(stat.query))]), stat, analyze(stat.query))
    report = Advisor(dsn, "normalize", Thresholds(min_table_rows=0)).run()
    skipped = {s.query: s for s in report.skipped if s.category != "utility"}
    assert set(skipped) == {UNPLANNABLE[1]}, skipped
    assert skipped[UNPLANNABLE[1]].category == "types"
    assert report.statements_rewritten == sum(1 for c in CASES if c[1] != c[2])
    assert any("parameter types" in n and "r13" in n for n in report.notes)
