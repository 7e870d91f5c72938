"""The advisor on a real PostgreSQL with a planted scenario: every finding, exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import psycopg
import pytest

from collectors.postgres.access import session_kwargs
from monitor.advisor import AdviceReport, Advisor, Thresholds, render_markdown
from monitor.cli import main as cli_main
from monitor.web.pages import render_advice_report

SETTINGS = Thresholds(
    min_table_rows=1000, unused_min_stats_age_seconds=0, n_plus_one_min_calls=500, slow_mean_seconds=0.1
)


@pytest.fixture(scope="module")
def report(scenario_db: str) -> AdviceReport:
    return Advisor(scenario_db, "scenario", SETTINGS).run()


def _by_kind(report: AdviceReport, kind: str) -> list[dict[str, Any]]:
    return [f for f in report.to_json_dict()["findings"] if f["kind"] == kind]


def test_missing_indexes_are_verified_and_chosen_across_the_workload(report: AdviceReport) -> None:
    missing = _by_kind(report, "missing_index")
    got = sorted((f["table"], tuple(f["columns"]), f["ddl"], f["verified"]) for f in missing)
    assert got == [
        ("public.customers", ("external_id",),
         "CREATE INDEX CONCURRENTLY ON public.customers (external_id);", "hypopg"),
        ("public.customers", ("lower(email)",),
         "CREATE INDEX CONCURRENTLY ON public.customers ((lower(email)));", "hypopg"),
        # the count of the last day's orders: the bulk load ran before pg_stat_statements' window, so
        # only the window's writes are weighed against it (one time base) and the index pays
        ("public.orders", ("created_at",), "CREATE INDEX CONCURRENTLY ON public.orders (created_at);", "hypopg"),
        # one index serves both the tenant list ordered by date and the tenant count:
        ("public.orders", ("customer_id",), "CREATE INDEX CONCURRENTLY ON public.orders (customer_id);", "hypopg"),
        ("public.orders", ("tenant_id", "created_at"),
         "CREATE INDEX CONCURRENTLY ON public.orders (tenant_id, created_at);", "hypopg"),
    ]
    for f in missing:
        assert f["cost_after"] < f["cost_before"]
        assert f["index_size_bytes"] > 0
        assert f["queryids"]
    tenant = next(f for f in missing if f["columns"] == ["tenant_id", "created_at"])
    assert len(tenant["queryids"]) == 2
    # nothing about the small table, ever
    assert not [f for f in report.findings if f.table == "public.tenants"]


def test_index_hygiene_findings(report: AdviceReport) -> None:
    def rows(kind: str) -> list[tuple[Any, ...]]:
        return sorted(
            (f["table"], f["index"], tuple(f["columns"]), f.get("ddl"), f.get("duplicate_of"), f.get("covered_by"))
            for f in _by_kind(report, kind)
        )

    assert rows("invalid_index") == [
        ("public.orders", "public.orders_customer_uniq", ("customer_id",),
         "DROP INDEX CONCURRENTLY public.orders_customer_uniq;", None, None),
    ]
    assert rows("duplicate_index") == [
        ("public.orders", "public.orders_total_idx1", ("total",),
         "DROP INDEX CONCURRENTLY public.orders_total_idx1;", "public.orders_total_idx", None),
    ]
    assert rows("redundant_index") == [
        ("public.customers", "public.customers_last_name_idx", ("last_name",),
         "DROP INDEX CONCURRENTLY public.customers_last_name_idx;", None, "public.customers_last_first_idx"),
    ]
    assert [f[1] for f in rows("unused_index")] == [
        "public.customers_created_at_idx", "public.customers_last_first_idx", "public.orders_total_idx",
    ]
    # held back (the is_active count still uses it): no DDL to copy
    assert rows("low_selectivity_index") == [
        ("public.customers", "public.customers_is_active_idx", ("is_active",), None, None, None),
    ]
    for f in report.to_json_dict()["findings"]:
        if f["kind"].endswith("_index") and f["kind"] != "missing_index":
            assert f["index_size_bytes"] >= 0 and "scans" in f
    # primary keys are never advised away
    assert not [f for f in report.findings if f.index and f.index.endswith("_pkey")]


def test_n_plus_one_and_slow_statement(report: AdviceReport) -> None:
    (n1,) = _by_kind(report, "n_plus_one")  # the hot lookup of tenants by id follows no statement's rows: none
    assert (n1["table"], n1["columns"], n1["calls"], n1["rows_per_call"]) == ("public.customers", ["id"], 1200, 1.0)
    assert 0.2 < n1["share_of_calls"] < 0.5
    # it names the statement whose rows it follows: the list of a tenant's orders, 20 rows a call
    assert n1["parent_query"].startswith("SELECT id, customer_id, status, total FROM orders WHERE tenant_id = $1")
    assert "60 calls, 1200 rows" in n1["evidence"] and "100% of the rows it returned" in n1["evidence"]
    assert n1["parent_queryid"] in report.statement_plans  # an analyzed statement of the workload
    assert n1["query"] == "SELECT id, email, first_name FROM customers WHERE id = $1"
    (slow,) = _by_kind(report, "slow_statement")
    assert slow["query"] == "SELECT pg_sleep($1)" and slow["calls"] == 2
    assert slow["mean_exec_seconds"] >= 0.12


def test_skipped_statements_are_listed_not_fatal(report: AdviceReport) -> None:
    reasons = {s.query: s.reason for s in report.skipped}
    # `interval $1` (pg_stat_statements' form of interval '1 day') used to be skipped as unplannable: it is
    # planned now as CAST($1 AS interval), and only the utility statement is left.
    assert reasons == {"VACUUM tenants": "utility statement (VacuumStmt)"}
    assert report.skipped_count == 1 and report.statements_rewritten == 1
    assert any("rewritten form (typed_literal)" in n for n in report.notes)
    assert report.verification.mode == "hypopg" and report.verification.explains > 0


def test_json_contract(report: AdviceReport) -> None:
    data = json.loads(json.dumps(report.to_json_dict()))
    assert list(data)[:5] == ["target", "generated_at", "stats_reset", "findings", "skipped"]
    assert data["target"] == "scenario"
    for f in data["findings"]:
        assert {"kind", "table", "evidence"} <= set(f) and None not in f.values()
    assert report.counts_by_kind() == {
        "missing_index": 5, "n_plus_one": 1, "slow_statement": 1, "invalid_index": 1,
        "duplicate_index": 1, "redundant_index": 1, "unused_index": 3, "low_selectivity_index": 1,
        "statement_regression": 0,
    }


def _workload_cost(dsn: str, report: AdviceReport, with_advice: bool) -> float:
    """Calls-weighted generic-plan cost of every plannable statement, with advice applied hypothetically."""
    from monitor.advisor.whatif import Budget, WhatIf

    with psycopg.connect(dsn, **session_kwargs(10, application_name="dbpulse-advisor")) as conn:
        stmts = conn.execute(
            "SELECT /* dbpulse_advisor */ query, calls FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND toplevel "
            "AND query ~* '^(select|update|delete)' AND strpos(query, 'dbpulse_advisor') = 0 "
            "AND query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE '%interval%'"
        ).fetchall()
        whatif = WhatIf(conn, conn.info.server_version, Budget(10_000, 60))
        if with_advice:
            for f in report.findings:
                if f.kind == "missing_index":
                    assert f.ddl is not None
                    whatif.create(f.ddl.replace(" CONCURRENTLY", ""))
        total = 0.0
        for query, calls in stmts:
            total += calls * whatif.cost(query, query.count("$"))
        whatif.reset()
    return total


def test_applying_the_advice_lowers_the_workload_cost(scenario_db: str, report: AdviceReport) -> None:
    before = _workload_cost(scenario_db, report, with_advice=False)
    after = _workload_cost(scenario_db, report, with_advice=True)
    assert after < 0.5 * before, (before, after)


def test_advisor_changes_nothing(scenario_db: str, report: AdviceReport) -> None:
    with psycopg.connect(scenario_db, autocommit=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1").fetchall()]
    assert names == [
        "customers_created_at_idx", "customers_is_active_idx", "customers_last_first_idx",
        "customers_last_name_idx", "customers_pkey", "orders_customer_uniq", "orders_pkey",
        "orders_total_idx", "orders_total_idx1", "tenants_pkey",
    ]


def test_service_mode_uses_deltas_between_runs(scenario_db: str) -> None:
    advisor = Advisor(scenario_db, "svc", SETTINGS)
    first = advisor.run()
    assert len([f for f in first.findings if f.kind == "slow_statement"]) == 1
    second = advisor.run()  # nothing ran in between: no recent slow statement, no recent N+1
    assert [f for f in second.findings if f.kind in ("slow_statement", "n_plus_one")] == []
    assert second.counts_by_kind()["missing_index"] == 5


def test_without_hypopg_advice_is_heuristic(scenario_db: str) -> None:
    report = Advisor(scenario_db, "h", SETTINGS.model_copy(update={"use_hypopg": False})).run()
    missing = sorted(tuple(f.columns or []) for f in report.findings if f.kind == "missing_index")
    assert {f.verified for f in report.findings if f.kind == "missing_index"} == {"heuristic"}
    assert ("tenant_id", "created_at") in missing and ("customer_id",) in missing
    assert any("heuristic" in n for n in report.notes)


def test_renderers_escape_and_carry_the_ddl(report: AdviceReport) -> None:
    page = render_advice_report(report, standalone=True)
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page
    assert "CREATE INDEX CONCURRENTLY ON public.orders (tenant_id, created_at);" in page
    md = render_markdown(report)
    assert "```sql\nCREATE INDEX CONCURRENTLY ON public.orders (tenant_id, created_at);\n```" in md


def test_cli_json_and_connection_failure(scenario_db: str, tmp_path: Any, capsys: Any) -> None:
    out = tmp_path / "advice.json"
    code = cli_main(["advise", "--postgres", scenario_db, "--format", "json", "--output", str(out),
                     "--min-table-rows", "1000", "--unused-min-stats-age", "0"])
    assert code == 0
    data = json.loads(out.read_text())
    assert {f["kind"] for f in data["findings"]} >= {"missing_index", "invalid_index", "duplicate_index"}
    bad = "postgresql://someone:s3cr3t-pw@127.0.0.1:1/nowhere"
    proc = subprocess.run([sys.executable, "-m", "monitor.cli", "advise", "--postgres", bad],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "s3cr3t-pw" not in proc.stderr + proc.stdout
    # the same target name as `dbpulse run` gives it, never the user or password
    assert proc.stderr.startswith("dbpulse advise: cannot connect to 127.0.0.1:1/nowhere: ")
    assert proc.stderr.count("\n") == 1
