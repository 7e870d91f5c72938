"""Table-driven: SQL text -> per-table predicate usage."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.advisor.query_analysis import Key, TableRef, analyze, canonical_expression

CATALOG = {
    "orders": frozenset({"id", "tenant_id", "customer_id", "status", "created_at", "total"}),
    "customers": frozenset({"id", "email", "external_id", "name"}),
    "items": frozenset({"id", "order_id", "sku"}),
}


def columns_of(ref: TableRef) -> frozenset[str] | None:
    return CATALOG.get(ref.name)


def summary(sql: str, with_catalog: bool = True) -> dict[str, dict[str, Any]]:
    """{table: {bucket: [keys]}} with empty buckets left out; expressions marked with 'expr:'."""
    result = analyze(sql, columns_of if with_catalog else None)
    assert result.error is None, result.error
    out: dict[str, dict[str, Any]] = {}
    for u in result.usages:
        name = f"{u.table.schema}.{u.table.name}" if u.table.schema else u.table.name
        entry: dict[str, Any] = {}

        def txt(k: Key) -> str:
            return ("expr:" if k.is_expression else "") + k.text

        for bucket in ("equality", "in_list", "ranges", "joins", "group_by"):
            keys = getattr(u, bucket)
            if keys:
                entry[bucket] = [txt(k) for k in keys]
        if u.order_by:
            entry["order_by"] = [(txt(k), d) for k, d in u.order_by]
            entry["limited"] = u.limited
        if entry:
            out[name] = entry
    return out


CASES: list[tuple[str, dict[str, dict[str, Any]]]] = [
    ("SELECT * FROM orders WHERE tenant_id = $1", {"orders": {"equality": ["tenant_id"]}}),
    ("SELECT * FROM orders WHERE $1 = tenant_id", {"orders": {"equality": ["tenant_id"]}}),
    ("SELECT * FROM public.orders o WHERE o.customer_id IN ($1, $2, $3)",
     {"public.orders": {"in_list": ["customer_id"]}}),
    ("SELECT * FROM orders WHERE customer_id = ANY($1)", {"orders": {"in_list": ["customer_id"]}}),
    ("SELECT * FROM orders WHERE created_at >= $1 AND created_at < $2", {"orders": {"ranges": ["created_at"]}}),
    ("SELECT * FROM orders WHERE total BETWEEN $1 AND $2", {"orders": {"ranges": ["total"]}}),
    ("SELECT * FROM orders WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT $2",
     {"orders": {"equality": ["tenant_id"], "order_by": [("created_at", True)], "limited": True}}),
    ("SELECT * FROM orders ORDER BY created_at", {"orders": {"order_by": [("created_at", False)],
                                                             "limited": False}}),
    ("SELECT status, count(*) FROM orders WHERE tenant_id = $1 GROUP BY status",
     {"orders": {"equality": ["tenant_id"], "group_by": ["status"]}}),
    ("SELECT id FROM customers WHERE lower(email) = lower($1)",
     {"customers": {"equality": ["expr:lower(email)"]}}),
    ("SELECT id FROM customers c WHERE lower(c.email) = $1",
     {"customers": {"equality": ["expr:lower(email)"]}}),
    # joins with aliases; unqualified columns resolved through the catalog
    ("SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id WHERE external_id = $1",
     {"orders": {"joins": ["customer_id"]}, "customers": {"equality": ["external_id"], "joins": ["id"]}}),
    ("SELECT * FROM orders, items WHERE items.order_id = orders.id AND sku = $1",
     {"orders": {"joins": ["id"]}, "items": {"equality": ["sku"], "joins": ["order_id"]}}),
    ("SELECT * FROM sales.orders AS so WHERE so.status = $1", {"sales.orders": {"equality": ["status"]}}),
    # CTEs: the CTE name is not a table; the CTE body is analyzed
    ("WITH recent AS (SELECT * FROM orders WHERE created_at > $1) SELECT * FROM recent WHERE recent.total > $2",
     {"orders": {"ranges": ["created_at"]}}),
    # sub-queries: correlated EXISTS and IN (SELECT ...)
    ("SELECT * FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id "
     "AND o.status = $1)", {"orders": {"equality": ["status"], "joins": ["customer_id"]}}),
    ("SELECT * FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE email = $1)",
     {"orders": {"joins": ["customer_id"]}, "customers": {"equality": ["email"]}}),
    ("SELECT * FROM (SELECT * FROM orders WHERE tenant_id = $1) sub WHERE sub.status = $2",
     {"orders": {"equality": ["tenant_id"]}}),
    # writes
    ("UPDATE orders SET status = $1 WHERE id = $2", {"orders": {"equality": ["id"]}}),
    ("DELETE FROM items USING orders WHERE items.order_id = orders.id AND orders.tenant_id = $1",
     {"items": {"joins": ["order_id"]}, "orders": {"equality": ["tenant_id"], "joins": ["id"]}}),
    ("INSERT INTO orders (id, status) VALUES ($1, $2)", {}),
    # not indexable as a btree key: OR, LIKE, <>, NOT IN, column = column of the same table
    ("SELECT * FROM orders WHERE tenant_id = $1 OR status = $2", {}),
    ("SELECT * FROM customers WHERE email LIKE $1", {}),
    ("SELECT * FROM orders WHERE status <> $1", {}),
    ("SELECT * FROM orders WHERE status NOT IN ($1, $2)", {}),
    ("SELECT * FROM orders WHERE total = id", {}),
    # casts on the column side make an expression; on the value side they do not matter
    ("SELECT * FROM orders WHERE created_at::date = $1", {"orders": {"equality": ["expr:CAST(created_at AS date)"]}}),
    ("SELECT * FROM orders WHERE tenant_id = $1::integer", {"orders": {"equality": ["tenant_id"]}}),
    # set operations
    ("SELECT id FROM orders WHERE tenant_id = $1 UNION SELECT id FROM items WHERE sku = $2",
     {"orders": {"equality": ["tenant_id"]}, "items": {"equality": ["sku"]}}),
]


@pytest.mark.parametrize(("sql", "expected"), CASES, ids=[c[0][:60] for c in CASES])
def test_predicates(sql: str, expected: dict[str, dict[str, Any]]) -> None:
    assert summary(sql) == expected


def test_unqualified_column_in_a_join_is_dropped_without_catalog() -> None:
    sql = "SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id WHERE external_id = $1"
    assert summary(sql, with_catalog=False) == {"orders": {"joins": ["customer_id"]}, "customers": {"joins": ["id"]}}


def test_single_table_resolves_without_catalog() -> None:
    assert summary("SELECT * FROM t WHERE a = $1 AND b > $2", with_catalog=False) == {
        "t": {"equality": ["a"], "ranges": ["b"]}
    }


def test_params_and_relations() -> None:
    result = analyze("SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = $7")
    assert result.n_params == 7
    assert result.relations == [TableRef(None, "orders"), TableRef(None, "customers")]
    assert result.kind == "select"


@pytest.mark.parametrize(
    ("sql", "kind", "error"),
    [
        ("SELEC * FROM orders", "unknown", 'cannot be parsed: syntax error at or near "SELEC", at index 0'),
        ("SELECT * FROM orders WHERE id = $1 AND created_at > (SELECT max(creat", "unknown",
         "cannot be parsed: syntax error at end of input"),
        ("VACUUM orders", "utility", "utility statement (VacuumStmt)"),
        ("SET search_path = public", "utility", "utility statement (VariableSetStmt)"),
        ("SELECT 1; SELECT 2", "unknown", "2 statements in one text"),
        ("", "unknown", "0 statements in one text"),
    ],
)
def test_unusable_texts_are_reported_not_raised(sql: str, kind: str, error: str) -> None:
    result = analyze(sql)
    assert (result.kind, result.error) == (kind, error)


def test_canonical_expression_ignores_casts_and_qualifiers() -> None:
    assert canonical_expression("lower((email)::text)") == canonical_expression("lower(c.email)") == "lower(email)"


SQL_TOKENS = st.sampled_from([
    "SELECT", "*", "FROM", "orders", "o", "WHERE", "=", "$1", "$2", "IN", "(", ")", ",", "AND", "OR",
    "ORDER BY", "LIMIT", "JOIN", "ON", "o.id", "lower(email)", "ANY", "'x'", "::int", "WITH", "AS",
    "EXISTS", "GROUP BY", "interval", "--", "/*", "*/", ";", "\x00", "\"", "$", "UPDATE", "SET",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(SQL_TOKENS, max_size=30).map(" ".join))
def test_token_soup_never_raises(sql: str) -> None:
    result = analyze(sql, columns_of)
    assert result.ok or result.error


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_raises(sql: str) -> None:
    result = analyze(sql, columns_of)
    assert result.ok or result.error


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=len(CASES[6][0])))
def test_truncated_texts_never_raise(cut: int) -> None:
    """pg_stat_statements truncates long texts: any prefix of a statement is handled."""
    result = analyze(CASES[6][0][:cut], columns_of)
    assert result.ok or result.error
