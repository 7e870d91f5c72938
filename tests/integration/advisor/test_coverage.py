"""Coverage on a real database: an OR across columns gets one index per disjunct in one action, a
rare-value queue poll gets a partial or skew-first index, and a write-heavy table's low-benefit
candidate is rejected with its reason in the report."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from monitor.advisor import AdviceReport, Advisor, Thresholds
from tests.integration.advisor.conftest import reset_statistics

SETTINGS = Thresholds(min_table_rows=1000)


def _db(pg_server: Any, name: str, schema: str) -> Iterator[str]:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    dsn = pg_server.dsn(name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("CREATE EXTENSION hypopg")
        conn.execute(schema)  # type: ignore[arg-type]
    reset_statistics(dsn)
    yield dsn
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def or_report(pg_server: Any) -> Iterator[AdviceReport]:
    schema = """
    CREATE TABLE accounts (id int PRIMARY KEY, email text NOT NULL, phone text NOT NULL, name text);
    INSERT INTO accounts SELECT g, 'u' || g || '@example.com', '+34-' || (600000000 + g), 'n'
    FROM generate_series(1, 50000) g;
    ANALYZE accounts;
    """
    for dsn in _db(pg_server, "coverage_or", schema):
        with psycopg.connect(dsn, autocommit=True) as conn:
            for i in range(40):
                n = random.Random(i).randint(1, 50000)
                conn.execute("SELECT id, name FROM accounts WHERE email = %s OR phone = %s",
                             (f"u{n}@example.com", f"+34-{600000000 + n}")).fetchall()
        yield Advisor(dsn, "or", SETTINGS).run()


def test_an_or_across_columns_gets_one_index_per_disjunct_in_one_action(or_report: AdviceReport) -> None:
    missing = sorted((tuple(f.columns or []), f.action) for f in or_report.findings if f.kind == "missing_index")
    assert [cols for cols, _ in missing] == [("email",), ("phone",)]
    (action,) = [a for a in or_report.plan.actions if a.action == "create"]
    assert {order for _, order in missing} == {action.order}  # one action carries both
    assert action.steps == ["CREATE INDEX CONCURRENTLY ON public.accounts (email);",
                            "CREATE INDEX CONCURRENTLY ON public.accounts (phone);"]
    (served,) = action.creates[0].statements
    assert "BitmapOr" in served.plan_after and "BitmapOr" not in served.plan_before
    assert served.cost_after is not None and served.cost_after < served.cost_before / 10
    assert "BitmapOr needs an index on every branch" in action.creates[0].why_this_order


QUEUE = """
CREATE TABLE jobs (id int PRIMARY KEY, status text NOT NULL, created_at timestamptz NOT NULL, payload text);
INSERT INTO jobs SELECT g, CASE WHEN g % 100 = 0 THEN 'pending' WHEN g % 50 = 1 THEN 'failed' ELSE 'done' END,
                        now() - g * interval '1 second', 'p' FROM generate_series(1, 100000) g;
ANALYZE jobs;
"""


def _skew_first_or_partial(report: AdviceReport) -> Any:
    (new,) = [n for a in report.plan.actions for n in a.creates if n.table == "public.jobs"]
    assert new.predicate == "status = 'pending'" or new.columns[0] == "status", new
    return new


@pytest.fixture(scope="module")
def queue_report(pg_server: Any) -> Iterator[AdviceReport]:
    for dsn in _db(pg_server, "coverage_queue", QUEUE):
        with psycopg.connect(dsn, autocommit=True) as conn:
            for _ in range(40):  # the worker fetches what is pending: 1% of the table, every time
                conn.execute("SELECT id, payload FROM jobs WHERE status = %s", ("pending",)).fetchall()
        yield Advisor(dsn, "queue", SETTINGS).run()


def test_a_rare_value_queue_query_gets_a_partial_or_skew_first_index(queue_report: AdviceReport) -> None:
    new = _skew_first_or_partial(queue_report)
    assert re.search(r"status = 'pending' is [01]\.\d% of the rows \(pg_stats\) but 100% of this statement's calls "
                     r"\(rows per call\)", new.why_this_order), new.why_this_order
    (served,) = new.statements
    assert served.cost_after is not None and served.cost_after < served.cost_before / 5
    assert any("skewed column" in n for n in queue_report.notes)


def test_pg_qualstats_samples_tell_which_value_a_limited_poll_uses(tmp_path: Any) -> None:
    from harness.servers import LocalPostgres

    with LocalPostgres(preload=("pg_stat_statements", "pg_qualstats"),
                       settings={"pg_qualstats.sample_rate": "1", "pg_qualstats.track_constants": "on"}) as pg:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            for ext in ("pg_stat_statements", "pg_qualstats", "hypopg"):
                conn.execute(f"CREATE EXTENSION {ext}")  # type: ignore[arg-type]
            conn.execute(QUEUE)  # type: ignore[arg-type]
        reset_statistics(pg.dsn())
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("SELECT pg_qualstats_reset()")
            conn.prepare_threshold = None
            for _ in range(40):  # a LIMITed poll: rows per call say nothing, pg_qualstats' constants do
                conn.execute("SELECT id FROM jobs WHERE status = %s AND payload = %s LIMIT 10",
                             ("pending", "p")).fetchall()
        report = Advisor(pg.dsn(), "qualstats", SETTINGS).run()
    new = _skew_first_or_partial(report)
    assert "(pg_qualstats)" in new.why_this_order


WRITES = """
CREATE TABLE events (id bigint PRIMARY KEY, kind int NOT NULL, at timestamptz NOT NULL, body text);
CREATE TABLE events_archive (LIKE events INCLUDING ALL);
INSERT INTO events_archive SELECT g, g % 500, now(), 'b' FROM generate_series(1, 40000) g;
ANALYZE events_archive;
"""


@pytest.fixture(scope="module")
def write_report(pg_server: Any) -> Iterator[AdviceReport]:
    for dsn in _db(pg_server, "coverage_writes", WRITES):
        with psycopg.connect(dsn, autocommit=True) as conn:
            # the same rows as the archive, and much more written: an ingest table
            for start in range(0, 400000, 40000):
                conn.execute("DELETE FROM events")
                conn.execute("INSERT INTO events SELECT g, g %% 500, now(), 'b' FROM generate_series(%s, %s) g",
                             (start + 1, start + 40000))
            conn.execute("ANALYZE events")
            for kind in range(5):  # a rare lookup that an index would speed up a little
                conn.execute("SELECT count(*) FROM events WHERE kind = %s", (kind,)).fetchall()
                conn.execute("SELECT count(*) FROM events_archive WHERE kind = %s", (kind,)).fetchall()
            conn.execute("SELECT pg_stat_force_next_flush()")
        _wait_until_counted(dsn, "events", 400000)
        yield Advisor(dsn, "writes", SETTINGS).run()


def _wait_until_counted(dsn: str, table: str, inserts: int, timeout: float = 30) -> None:
    """A session's counters reach pg_stat_user_tables when it flushes them (at most every second, or at
    exit): wait for them, so the advisor reads what was written."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = %s", (table,)).fetchone()
            if row and row[0] >= inserts:
                return
            time.sleep(0.2)
    raise AssertionError(f"{table}: {inserts} inserts not counted within {timeout} s")


def test_a_write_heavy_tables_low_benefit_candidate_is_rejected_with_its_reason(write_report: AdviceReport) -> None:
    created = [n.table for a in write_report.plan.actions for n in a.creates]
    assert created == ["public.events_archive"]  # the same lookup on a table nobody writes to is advised
    (held,) = [h for h in write_report.plan.held_back if h.subject.startswith("public.events ")]
    assert held.kind == "missing_index" and "rows inserted on public.events" in held.reason
    assert "write_penalty_per_row" in held.reason
    assert "public.events (kind)" in render_md(write_report)


def render_md(report: AdviceReport) -> str:
    from monitor.advisor import render_markdown

    return render_markdown(report)
