"""``dbpulse advise`` as text for a terminal (monitor/advisor/terminal.py), against a snapshot.

The report is built by hand with every part the text has (notes, a plan with a create and a drop, what was
held back, an outcome, findings carried out by the plan or not, utility statements and one that could not be
planned), with the texts that used to come out wrong: Markdown escapes, a "then" before the first column,
"0.0 ms", "100% less", byte counts. ``UPDATE_SNAPSHOTS=1`` rewrites the snapshot after a deliberate change.
"""

from __future__ import annotations

import difflib
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from monitor.advisor.actions import Action, HeldBack, NewIndex, Plan, ServedStatement
from monitor.advisor.candidates import Candidate
from monitor.advisor.catalog import Column, Table
from monitor.advisor.findings import AdviceReport, Finding, Skipped
from monitor.advisor.outcomes import Outcome, StatementOutcome, Window
from monitor.advisor.query_analysis import Key
from monitor.advisor.report import render_markdown, statement_type, utility_counts
from monitor.advisor.terminal import render_text

SNAPSHOT = Path(__file__).parent / "snapshots" / "advise.txt"
WHEN = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SLOW_QUERY = "SELECT * FROM orders WHERE created_at > $1 ORDER BY created_at LIMIT $2"


def report() -> AdviceReport:
    served = [
        ServedStatement(101, SLOW_QUERY, 5_400, 0.042, 5_000.0, 2.0, saved_seconds_per_hour=226.7),
        ServedStatement(102, "SELECT count(*) FROM orders WHERE created_at > $1", 90, 0.000_012, 900.0, 450.0,
                        saved_seconds_per_hour=0.000_5),
    ]
    create = Action(1, "create", "public.orders", "2 statement(s) on public.orders (5490 calls) would go from a "
                    "weighted generic-plan cost of 27081000 to 51300 (99.8% less) with this index (estimated size "
                    "12.0 MB), checked with HypoPG.", ["missing_index"], "hypopg",
                    creates=[NewIndex("public.orders", ["created_at"],
                                      "CREATE INDEX CONCURRENTLY ON public.orders (created_at);",
                                      why_this_order=order_reason(), index_size_bytes=12_533_760, verified="hypopg",
                                      statements=served, table_writes_per_hour=1_200.0, write_overhead_ratio=0.25,
                                      saved_seconds_per_hour=226.7)])
    drop = Action(2, "drop", "public.[bold]users[/bold]", "Index public.users_email_idx2 has the same columns as "
                  "public.users_email_idx; it doubles write cost and storage (8.0 kB) for nothing.",
                  ["duplicate_index"], "catalog and statements", drops=["public.users_email_idx2"],
                  drop_ddl=["DROP INDEX CONCURRENTLY public.users_email_idx2;"], replaced_by="public.users_email_idx",
                  relies_on=["public.users_email_idx"])
    plan = Plan([create, drop], [HeldBack("public.orders_status_idx", "unused_index",
                                          "statistics are 2 days old, 7 days are needed")],
                checked_as_whole=True, statements_checked=12)
    outcome = Outcome("public.payments", "public.payments_ref_idx", "created", WHEN, advised=True,
                      statements=[StatementOutcome(301, "SELECT * FROM payments WHERE ref = $1",
                                                   Window(1_000, 24.0, 1_000, 40_000),
                                                   Window(1_100, 0.11, 1_100, 3_300), "improvement")])
    findings = [
        Finding("missing_index", "public.orders", create.reason, columns=["created_at"], ddl=create.steps[0],
                queryids=[101, 102], verified="hypopg", index_size_bytes=12_533_760, action=1),
        Finding("slow_statement", "public.orders", "Statement 101 takes 42 ms per call on average.",
                queryids=[101], calls=5_400, mean_exec_seconds=0.042, query=SLOW_QUERY),
        Finding("slow_statement", "public.events", "Statement 205 takes 600 ms per call on average.",
                queryids=[205], calls=30, mean_exec_seconds=0.6, query="SELECT * FROM events WHERE kind || $1 = $2"),
        Finding("n_plus_one", "public.users", "Statement 206 looks up public.users by its key 9000 times.",
                queryids=[206], calls=9_000, mean_exec_seconds=0.000_021, rows_per_call=1.0,
                query="SELECT * FROM users WHERE id = $1"),
        Finding("duplicate_index", "public.[bold]users[/bold]", drop.reason, index="public.users_email_idx2",
                ddl=drop.drop_ddl[0], duplicate_of="public.users_email_idx", action=2),
        Finding("unused_index", "public.orders", "Index public.orders_status_idx has not been scanned.",
                index="public.orders_status_idx", ddl="DROP INDEX CONCURRENTLY public.orders_status_idx;",
                held_back="statistics are 2 days old, 7 days are needed"),
    ]
    skipped = [Skipped(1, "BEGIN", "utility statement (no plan)", 400), Skipped(2, "BEGIN", "utility statement", 9),
               Skipped(3, "COMMIT", "utility statement", 400),
               Skipped(4, "CREATE TABLE audit (id int)", "utility statement", 1),
               Skipped(5, "GRANT SELECT ON pg_stat_statements TO app", "utility statement", 1),
               Skipped(6, "SELECT secret FROM vault", "no privilege: permission denied for table vault", 12)]
    served[1].variants = [103, 104]  # the same statement with IN lists of other lengths
    return AdviceReport("shop", WHEN, None, findings=findings, skipped=skipped, plan=plan, outcomes=[outcome],
                        time_base="per hour: calls since pg_stat_statements' counters began at 2026-03-01 09:30",
                        notes=["3 statement(s) could not be planned (pg_stat_statements' texts with || and `x`)"],
                        statements_analyzed=42)


def order_reason() -> str:
    """What the candidate says of a one-column index on an ORDER BY column (no "then" before it)."""
    table = Table(1, "public", "orders", 50_000, 0, 0, 0, 0, columns={"created_at": Column("created_at")})
    return Candidate(table, ((Key("created_at"), False),), 0, roles=("order",)).order_reason()


def test_the_text_report_matches_its_snapshot() -> None:
    text = render_text(report(), width=110)
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(text)
    expected = SNAPSHOT.read_text()
    assert text == expected, "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True)))


def test_the_text_reads_as_printed() -> None:
    text = render_text(report())
    assert "\\" not in text  # no Markdown escapes: pg_stat_statements, (s), || and `x` as they are
    assert "pg_stat_statements' texts with || and `x`" in text
    assert "public.[bold]users[/bold]" in text  # a name is never taken as rich markup
    assert "column order: created_at (the ORDER BY" in text and "then created_at" not in text
    assert "0.0 ms" not in text and "12 µs" in text and "21 µs" in text
    assert "100% less" not in text and "(99.9% less)" in text
    assert "12.0 MB" in text and "12533760" not in text and "bytes" not in text
    # utility statements are counted by type, never listed; a statement that could not be planned is
    assert "by type: BEGIN 2, COMMIT 1, CREATE TABLE 1, GRANT 1" in text
    assert "CREATE TABLE audit" not in text and "pg_stat_statements TO app" not in text
    assert "SELECT secret FROM vault" in text
    # a finding the plan carries out, or whose statement a new index serves, points at the action
    assert "Slow statement public.orders: statement 101, served by plan action 1" in text
    assert "Duplicate index public.users_email_idx2 on public.[bold]users[/bold]: plan action 2" in text
    assert "SELECT * FROM events WHERE kind || $1 = $2" in text  # an unserved one keeps its statement
    # a held-back finding prints no DDL to run
    assert "DROP INDEX CONCURRENTLY public.orders_status_idx" not in text
    assert "\x1b[" not in text


def test_colour_only_when_asked() -> None:
    coloured = render_text(report(), color=True)
    assert "\x1b[32m" in coloured or "\x1b[1;32m" in coloured  # create is green
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured).replace(" \n", "\n").split() == \
        render_text(report()).split()


def test_markdown_counts_utility_statements_and_speaks_plainly() -> None:
    md = render_markdown(report())
    assert "counted by type: BEGIN 2, COMMIT 1, CREATE TABLE 1, GRANT 1" in md
    assert "CREATE TABLE audit" not in md and "SELECT secret FROM vault" in md
    assert "12.0 MB" in md and "12533760" not in md
    assert "12 µs mean" in md and "0.0 ms" not in md and "100% less" not in md and "99.9% less" in md
    assert "then created_at" not in md


def test_statement_types() -> None:
    cases = {"BEGIN": "BEGIN", "commit;": "COMMIT", "CREATE TABLE x (a int)": "CREATE TABLE",
             "CREATE UNIQUE INDEX CONCURRENTLY i ON t (a)": "CREATE INDEX",
             "create or replace function f() returns int": "CREATE FUNCTION",
             "CREATE MATERIALIZED VIEW v AS SELECT 1": "CREATE MATERIALIZED VIEW", "GRANT SELECT ON t TO r": "GRANT",
             "ALTER TABLE IF EXISTS t ADD c int": "ALTER TABLE", "DROP INDEX CONCURRENTLY IF EXISTS i": "DROP INDEX",
             "CREATE EXTENSION IF NOT EXISTS hypopg": "CREATE EXTENSION", "/* c */ VACUUM": "VACUUM",
             "-- planted\nCREATE INDEX i ON t (a)": "CREATE INDEX", "-- only a comment": "other", "": "other",
             "(SELECT 1)": "SELECT"}
    assert {q: statement_type(q) for q in cases} == cases
    assert utility_counts(report().skipped) == [("BEGIN", 2), ("COMMIT", 1), ("CREATE TABLE", 1), ("GRANT", 1)]
