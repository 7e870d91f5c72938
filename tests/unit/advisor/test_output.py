"""DDL quoting, renderer escaping, statement deltas, candidate building."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from monitor.advisor.candidates import Candidate, candidates_for_usage, served_by
from monitor.advisor.catalog import Catalog, Column, Index, Table
from monitor.advisor.coverage import _served_by_existing
from monitor.advisor.ddl import create_index, drop_index, quote_ident
from monitor.advisor.findings import AdviceReport, Finding, Skipped
from monitor.advisor.query_analysis import Key, StatementAnalysis, TableRef, TableUsage, analyze
from monitor.advisor.report import render_json, render_markdown
from monitor.advisor.settings import Thresholds
from monitor.web.pages import render_advice_report


@pytest.mark.parametrize(
    ("name", "quoted"),
    [("orders", "orders"), ("Orders", '"Orders"'), ("user", '"user"'), ('a"b', '"a""b"'),
     ("x; DROP TABLE t", '"x; DROP TABLE t"'), ("tenant_id", "tenant_id"), ("1abc", '"1abc"')],
)
def test_quote_ident(name: str, quoted: str) -> None:
    assert quote_ident(name) == quoted


def test_ddl() -> None:
    assert create_index("public", "Order Items", [(Key("tenant_id"), False), (Key("created_at"), True)]) == (
        'CREATE INDEX CONCURRENTLY ON public."Order Items" (tenant_id, created_at DESC);'
    )
    assert create_index("app", "users", [(Key("lower(email)", True), False)]) == (
        "CREATE INDEX CONCURRENTLY ON app.users ((lower(email)));"
    )
    assert drop_index("public", "select") == 'DROP INDEX CONCURRENTLY public."select";'


def _report() -> AdviceReport:
    evil = '<script>alert("x")</script>'
    report = AdviceReport(target=evil, generated_at=datetime(2025, 1, 2, tzinfo=UTC), stats_reset=None)
    report.findings.append(Finding(
        kind="unused_index", table=f"public.{evil}", evidence=f"index {evil} unused", index=f"public.{evil}",
        columns=[evil], ddl=drop_index("public", evil), index_size_bytes=8192, scans=0,
    ))
    report.findings.append(Finding(kind="slow_statement", table="", evidence="slow", queryids=[1], calls=3,
                                   mean_exec_seconds=1.5, query="SELECT '```' || $1 -- <b>"))
    report.skipped.append(Skipped(7, f"SELECT {evil}", "cannot be parsed: x", 2))
    return report


def test_html_escapes_every_untrusted_text() -> None:
    page = render_advice_report(_report(), standalone=True)
    assert "<script>" not in page and "&lt;script&gt;" in page and "<b>" not in page
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_markdown_fences_survive_backticks_and_json_is_clean() -> None:
    md = render_markdown(_report())
    assert "````sql\nSELECT '```' || $1 -- <b>\n````" in md
    assert "index \\<script\\>alert\\(\"x\"\\)\\</script\\> unused" in md
    data = json.loads(render_json(_report()))
    assert data["skipped"] == [{"queryid": 7, "query": 'SELECT <script>alert("x")</script>',
                                "reason": "cannot be parsed: x", "calls": 2, "category": "parse"}]
    assert data["summary"]["counts_by_kind"]["unused_index"] == 1
    assert [f["kind"] for f in data["findings"]] == ["slow_statement", "unused_index"]
    assert data["findings"][0] == {
        "kind": "slow_statement", "table": "", "evidence": "slow", "queryids": [1], "calls": 3,
        "mean_exec_seconds": 1.5, "query": "SELECT '```' || $1 -- <b>",
    }


def _table() -> Table:
    table = Table(1, "public", "orders", 50_000, 0, 0, 0, 0)
    table.columns = {c: Column(c) for c in ("tenant_id", "status", "created_at", "customer_id")}
    table.columns["status"].n_distinct = 5
    table.columns["tenant_id"].n_distinct = 200
    return table


def _index(keys: tuple[str, ...], valid: bool = True, predicate: str | None = None) -> Index:
    return Index(10, "public", "i", 1, "btree", False, False, valid, True, len(keys),
                 tuple(Key(k) for k in keys), (), (0,) * len(keys), (0,) * len(keys), predicate, False, 0, 0)


def test_candidates_equality_first_low_cardinality_last_then_sort() -> None:
    usage = TableUsage(TableRef(None, "orders"), equality=[Key("status"), Key("tenant_id")],
                       order_by=[(Key("created_at"), True)], limited=True)
    got = [c.columns for c in candidates_for_usage(usage, _table(), Thresholds())]
    assert got == [["tenant_id", "status", "created_at"], ["tenant_id", "status"]]


def test_equality_then_a_descending_limit_sort_is_a_composite_a_backward_scan_serves() -> None:
    a = analyze("SELECT id FROM orders WHERE customer_id = $1 ORDER BY created_at DESC LIMIT $2")
    got = [c.columns for c in candidates_for_usage(a.usages[0], _table(), Thresholds())]
    assert got == [["customer_id", "created_at"], ["customer_id"]]
    # with a range on another column too: the range's composite and the sort's
    a = analyze("SELECT id FROM orders WHERE customer_id = $1 AND total > $2 ORDER BY created_at DESC LIMIT 10")
    got = [c.columns for c in candidates_for_usage(a.usages[0], _table(), Thresholds())]
    assert got == [["customer_id", "total"], ["customer_id"], ["customer_id", "created_at"]]


def test_mixed_sort_directions_keep_desc() -> None:
    usage = TableUsage(TableRef(None, "orders"), equality=[Key("tenant_id")],
                       order_by=[(Key("created_at"), True), (Key("status"), False)], limited=True)
    got = [c.columns for c in candidates_for_usage(usage, _table(), Thresholds())]
    assert got == [["tenant_id", "created_at DESC", "status"], ["tenant_id"]]


def test_served_by_existing_index() -> None:
    cand = Candidate(_table(), ((Key("status"), False), (Key("tenant_id"), False), (Key("created_at"), False)), 2)
    assert served_by(cand, [_index(("tenant_id", "status", "created_at", "customer_id"))]) is not None
    assert served_by(cand, [_index(("tenant_id", "created_at", "status"))]) is None
    assert served_by(cand, [_index(("tenant_id", "status", "created_at"), valid=False)]) is None
    assert served_by(cand, [_index(("tenant_id", "status", "created_at"), predicate="x")]) is None


def test_an_index_serving_several_candidates_is_named_once() -> None:
    # Seen live: "already served by public.pgbench_accounts_pkey, public.pgbench_accounts_pkey".
    table = _table()
    cat = Catalog()
    cat.tables[table.oid] = table
    cat._by_name[("public", "orders")] = table
    cat.indexes.append(_index(("tenant_id", "status", "created_at")))
    usage = TableUsage(TableRef(None, "orders"), equality=[Key("status"), Key("tenant_id")],
                       order_by=[(Key("created_at"), True)], limited=True)
    assert len(candidates_for_usage(usage, table, Thresholds())) == 2  # both served by the one index
    assert _served_by_existing(StatementAnalysis("select", [usage]), cat, Thresholds()) == ["public.i"]
