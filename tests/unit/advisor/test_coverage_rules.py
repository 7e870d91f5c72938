"""The analysis and candidate rules behind advisor coverage: OR disjuncts, parameters on skewed columns,
join shapes, value substitution (pure functions; the integration tests run them on a real database)."""

from __future__ import annotations

import pytest

from monitor.advisor.candidates import candidates_for_usage, or_candidates
from monitor.advisor.catalog import Column, Table, parse_array
from monitor.advisor.query_analysis import Key, TableRef, analyze
from monitor.advisor.settings import Thresholds
from monitor.advisor.skew import constant_text, literal, substituted

COLUMNS = {"orders": frozenset({"id", "customer_id", "status", "created_at"}),
           "customers": frozenset({"id", "email", "phone", "country"})}


def columns_of(ref: TableRef) -> frozenset[str] | None:
    return COLUMNS.get(ref.name)


def test_or_disjuncts_are_kept_per_branch_and_common_keys_are_conjuncts() -> None:
    a = analyze("SELECT id FROM customers WHERE country = $1 AND (email = $2 OR phone = $3)", columns_of)
    (usage,) = a.usages
    assert usage.equality == [Key("country")]
    (group,) = usage.or_groups
    assert [p.equality for p in group] == [[Key("email")], [Key("phone")]]
    a = analyze("SELECT id FROM customers WHERE (email = $1 AND country = $2) OR (phone = $3 AND country = $4)",
                columns_of)
    assert a.usages[0].equality == [Key("country")]  # in every disjunct


def test_an_or_that_reads_another_table_in_one_branch_is_no_bitmap_or_here() -> None:
    a = analyze("SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id "
                "WHERE o.status = $1 OR c.email = $2", columns_of)
    assert all(not u.or_groups for u in a.usages)


def _table() -> Table:
    t = Table(1, "public", "customers", 50_000, 0, 0, 0, 0)
    t.columns = {c: Column(c, n_distinct=-1.0) for c in COLUMNS["customers"]}
    return t


def test_or_candidates_bundle_one_index_per_disjunct() -> None:
    a = analyze("SELECT id FROM customers WHERE email = $1 OR phone = $2", columns_of)
    (bundle,) = or_candidates(a.usages[0], _table(), Thresholds(), [])
    assert [m.columns for m in bundle.members] == [["email"], ["phone"]]
    assert "BitmapOr" in bundle.why


def test_join_keys_and_filters_alone_are_candidates_too() -> None:
    a = analyze("SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.status = $1 "
                "AND o.created_at > $2", columns_of)
    orders = next(u for u in a.usages if u.table.name == "orders")
    table = Table(2, "public", "orders", 50_000, 0, 0, 0, 0)
    table.columns = {c: Column(c, n_distinct=-0.5) for c in COLUMNS["orders"]}
    got = [c.columns for c in candidates_for_usage(orders, table, Thresholds())]
    assert got == [["status", "customer_id", "created_at"], ["status", "customer_id"], ["status", "created_at"],
                   ["customer_id"]]


def test_a_filter_on_the_joined_table_is_a_candidate_on_that_table() -> None:
    a = analyze("SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.country = $1", columns_of)
    customers = next(u for u in a.usages if u.table.name == "customers")
    got = [c.columns for c in candidates_for_usage(customers, _table(), Thresholds())]
    assert ["country"] in got and ["id"] in got  # the filter alone; the join key (the inner side of a loop)
    orders = next(u for u in a.usages if u.table.name == "orders")
    table = Table(2, "public", "orders", 50_000, 0, 0, 0, 0)
    assert candidates_for_usage(orders, table, Thresholds())[0].columns == ["customer_id"]


def test_parameters_and_row_returning_statements() -> None:
    a = analyze("SELECT id FROM orders WHERE status = $1::text AND customer_id = $2")
    assert a.usages[0].params == {Key("status"): 1, Key("customer_id"): 2} and a.plain_rows
    assert not analyze("SELECT count(*) FROM orders WHERE status = $1").plain_rows
    assert not analyze("SELECT id FROM orders WHERE status = $1 LIMIT $2").plain_rows
    assert not analyze("SELECT DISTINCT status FROM orders WHERE customer_id = $1").plain_rows


@pytest.mark.parametrize(("text", "value"), [
    ("'pending'::text", "pending"), ("42", "42"), ("'it''s'", "it's"), ("true", "true"), ("NULL", None),
    ("'2024-01-01'::date", "2024-01-01"), ("1.5", "1.5"),
])
def test_constants_as_pg_qualstats_prints_them(text: str, value: str | None) -> None:
    assert constant_text(text) == value


def test_a_parameter_becomes_a_literal_and_the_rest_are_renumbered() -> None:
    assert substituted("SELECT id FROM jobs WHERE a = $1 AND status = $2 LIMIT $3", 2, "it's") == (
        "SELECT id FROM jobs WHERE a = $1 AND status = 'it''s' LIMIT $2")
    assert literal("a'b") == "'a''b'"


def test_pg_stats_arrays() -> None:
    assert parse_array('{done,"in progress","say \\"hi\\""}') == ["done", "in progress", 'say "hi"']
    assert parse_array("{}") == [] and parse_array("{{1,2},{3,4}}") is None and parse_array("x") is None


def test_a_partial_candidate_an_existing_partial_index_serves_is_dropped() -> None:
    from monitor.advisor.candidates import Candidate
    from monitor.advisor.catalog import Index
    from monitor.advisor.skew import partial_served

    table = _table()
    cand = Candidate(table, ((Key("email"), False),), 1, predicate="country = 'ES'")

    def index(predicate: str | None) -> Index:
        return Index(9, "public", "i", 1, "btree", False, False, True, True, 1, (Key("email"),), (), (0,), (0,),
                     predicate, False, 0, 0)

    assert partial_served(cand, [index("(country = 'ES'::text)")])
    assert not partial_served(cand, [index("(country = 'FR'::text)")])
    assert not partial_served(cand, [index(None)])  # a full index: the partial one may still be worth its size
