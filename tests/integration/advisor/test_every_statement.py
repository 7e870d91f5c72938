"""Every candidate is considered, and every statement with 1 % of the time or more ends in an action or a reason.

One table needs three indexes (a range column; ``(customer_id, created_at)`` for an equality with an
``ORDER BY ... DESC LIMIT``; an occasional but heavy lookup on a third column) and a join filters on the other
table (``products.category_id``): the plan creates each of them. Then the same property over the demo's
workload and TPC-H (the benchmark's own loaders, at a small scale).
"""

from __future__ import annotations

import html as html_lib
import random
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from collectors.postgres.statements import read_statements
from harness.servers import LocalPostgres
from monitor.advisor import AdviceReport, Advisor, Thresholds, render_json, render_markdown
from monitor.advisor.actions import COVERAGE_STATUSES
from monitor.advisor.terminal import render_text
from monitor.advisor.variants import StatementVariants
from monitor.web.pages import render_advice_report
from tests.integration.advisor.conftest import new_database, reset_statistics

SCHEMA = """
CREATE TABLE products (id int PRIMARY KEY, category_id int NOT NULL, name text NOT NULL);
INSERT INTO products SELECT g, g % 3000, 'p' || g FROM generate_series(1, 300000) g;
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL, product_id int NOT NULL,
                     created_at timestamptz NOT NULL, ref text NOT NULL, amount numeric NOT NULL);
INSERT INTO orders SELECT g, (g::bigint * 7919) % 4000, 1 + (g::bigint * 104729) % 300000,
                          now() - g * interval '1 minute', 'R' || g, g % 1000 FROM generate_series(1, 200000) g;
ANALYZE products; ANALYZE orders;
"""


def _workload(dsn: str) -> None:
    rnd = random.Random(7)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(200):  # the hot one: a day of orders
            days = rnd.randint(1, 130)
            conn.execute("SELECT count(*), sum(amount) FROM orders WHERE created_at >= now() - %s * interval '1 day' "
                         "AND created_at < now() - (%s - 1) * interval '1 day'", (days, days)).fetchall()
        for _ in range(150):  # a customer's latest orders
            conn.execute("SELECT id, amount FROM orders WHERE customer_id = %s ORDER BY created_at DESC LIMIT %s",
                         (rnd.randrange(4000), 10)).fetchall()
        for _ in range(12):  # occasional, heavy: an order by its reference
            conn.execute("SELECT id, amount FROM orders WHERE ref = %s", (f"R{rnd.randint(1, 200000)}",)).fetchall()
        for _ in range(15):  # a total no index serves
            conn.execute("SELECT sum(amount) FROM orders").fetchall()
        for _ in range(40):  # orders of one category's products
            conn.execute("SELECT o.id, o.amount FROM orders o JOIN products p ON p.id = o.product_id "
                         "WHERE p.category_id = %s", (rnd.randrange(3000),)).fetchall()


@pytest.fixture(scope="module")
def shop(pg_server: LocalPostgres) -> Iterator[tuple[str, AdviceReport]]:
    dsn = new_database(pg_server, "every_statement")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)  # type: ignore[arg-type]
    reset_statistics(dsn)
    _workload(dsn)
    yield dsn, Advisor(dsn, "shop", Thresholds(min_table_rows=1000)).run()


def _created(report: AdviceReport) -> set[tuple[str, tuple[str, ...]]]:
    return {(n.table, tuple(n.columns)) for a in report.plan.actions for n in a.creates}


def test_one_table_gets_every_index_that_pays(shop: tuple[str, AdviceReport]) -> None:
    created = _created(shop[1])
    assert ("public.orders", ("created_at",)) in created
    assert ("public.orders", ("customer_id", "created_at")) in created  # a backward scan serves the DESC
    assert ("public.orders", ("ref",)) in created
    assert ("public.products", ("category_id",)) in created  # the join's filter on the other table


def _grouped_shares(dsn: str) -> dict[int, float]:
    """Each statement group's share of the time, read from pg_stat_statements as the advisor reads it."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        version = conn.info.server_version
        stats = read_statements(conn, version, 5000)
    grouped = StatementVariants.of(stats).grouped(stats)
    total = sum(s.exec_seconds for s in grouped)
    return {s.queryid: s.exec_seconds / total for s in grouped}


def _check_every_statement(dsn: str, report: AdviceReport) -> dict[str, int]:
    heavy = {q for q, share in _grouped_shares(dsn).items() if share >= 0.01}
    by_id = {c.queryid: c for c in report.coverage}
    utility = {sk.queryid for sk in report.skipped if sk.category == "utility"}  # counted by type instead
    assert heavy and heavy <= set(by_id) | utility, heavy - set(by_id)
    served = report.plan.served_by()
    for c in report.coverage:
        assert c.status in COVERAGE_STATUSES and c.reason, c
        assert (c.status == "action") == (c.queryid in served), c
        if c.status == "action":
            assert c.action == served[c.queryid].order
    statuses: dict[str, int] = {}
    for c in report.coverage:
        statuses[c.status] = statuses.get(c.status, 0) + 1
    return statuses


def test_every_statement_at_one_percent_has_an_action_or_a_reason(shop: tuple[str, AdviceReport]) -> None:
    dsn, report = shop
    statuses = _check_every_statement(dsn, report)
    assert statuses.get("action", 0) >= 4
    shown = [c for c in report.coverage if c.status != "action"]
    (total,) = [c for c in shown if c.query.startswith("SELECT sum(amount) FROM orders")]
    assert total.status == "no_candidate" and total.reason.startswith("no predicate an index can use"), total
    data = render_json(report)
    markdown, text = render_markdown(report), render_text(report, width=200)
    html = html_lib.unescape(render_advice_report(report, standalone=True))
    assert '"coverage"' in data
    for c in shown:  # every reason is in every rendering
        assert c.reason[:60] in markdown.replace("\\", "") and c.reason[:40] in text.replace("\n", " ")
        assert c.reason in html


@pytest.fixture(scope="module")
def qualstats_server() -> Iterator[LocalPostgres]:
    """The benchmark's loaders reset pg_qualstats too."""
    with LocalPostgres(preload=("pg_stat_statements", "pg_qualstats")) as pg:
        yield pg


def _bench_db(pg: LocalPostgres, name: str) -> str:
    dsn = new_database(pg, name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_qualstats")
    return dsn


def test_every_heavy_tpch_statement_has_an_action_or_a_reason(qualstats_server: LocalPostgres, tmp_path: Path) -> None:
    from bench.advisor_tpch import prepare_tpch

    dsn = _bench_db(qualstats_server, "every_tpch")
    prepare_tpch(0.01, 0.05, tmp_path)(dsn)
    report = Advisor(dsn, "tpch", Thresholds(min_table_rows=1000)).run()
    statuses = _check_every_statement(dsn, report)
    assert statuses.get("action", 0) >= 1, statuses


def test_every_heavy_demo_statement_has_an_action_or_a_reason(qualstats_server: LocalPostgres) -> None:
    from bench.advisor_tpch import prepare_demo

    dsn = _bench_db(qualstats_server, "every_demo")
    prepare_demo(0.2, 300)(dsn)
    report = Advisor(dsn, "demo", Thresholds()).run()
    statuses = _check_every_statement(dsn, report)
    assert sum(statuses.values()) >= 3, statuses
