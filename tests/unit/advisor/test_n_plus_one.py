"""The N+1 rule on counters alone: a key lookup is a finding only with a parent whose rows it follows.

Windows of counters as ``pg_stat_statements`` gives them (calls and rows per statement); the catalog holds
orders -> customers (a foreign key) and an unrelated audit table. The real workloads (pgbench on a primary
and a standby, the demo's lazy loop) are in tests/integration/advisor/test_n_plus_one.py.
"""

from __future__ import annotations

from collectors.postgres.statements import StatementStat
from monitor.advisor.catalog import Catalog, Column, Reference, Table
from monitor.advisor.patterns import NPlusOne
from monitor.advisor.query_analysis import StatementAnalysis, analyze
from monitor.advisor.settings import Thresholds

SETTINGS = Thresholds(n_plus_one_min_calls=100)
LOOKUP = "SELECT id, name FROM customers WHERE id = $1"
LIST = "SELECT id, customer_id, total FROM orders WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT $2"
COUNT = "SELECT count(*) FROM orders WHERE tenant_id = $1"
AUDIT = "SELECT id, note FROM audit WHERE kind = $1"


def catalog() -> Catalog:
    cat = Catalog()
    for oid, name, cols in ((1, "customers", ("id", "name")), (2, "orders", ("id", "customer_id", "tenant_id",
                                                                              "total", "created_at")),
                            (3, "audit", ("id", "kind", "note"))):
        table = Table(oid, "public", name, 10_000, 1_000_000, 0, 0, 0)
        table.columns = {c: Column(c) for c in cols}
        table.unique_keys = [("id",)]
        cat.tables[oid] = table
        cat._by_name[("public", name)] = table
    cat.tables[2].foreign_keys = [("customer_id",)]
    cat.references = [Reference(2, ("customer_id",), 1, ("id",))]
    return cat


CAT = catalog()


def window(*stats: tuple[int, str, int, int]) -> list[tuple[StatementStat, StatementAnalysis]]:
    """(queryid, text, calls, rows) per statement of one window."""
    return [(StatementStat(q, text, calls, calls * 0.001, rows), analyze(text, CAT.columns_of))
            for q, text, calls, rows in stats]


def findings(detector: NPlusOne, items: list[tuple[StatementStat, StatementAnalysis]]) -> list[tuple[int, int]]:
    """(child, parent) of each finding."""
    total = sum(s.calls for s, _ in items)
    return [(f.queryids[0] if f.queryids else 0, f.parent_queryid or 0)
            for f in detector.findings(items, CAT, total)]


def test_lookups_that_follow_the_rows_of_a_list_are_one() -> None:
    items = window((1, LOOKUP, 1980, 1980), (2, LIST, 100, 2000), (3, COUNT, 100, 100))
    assert findings(NPlusOne(SETTINGS), items) == [(1, 2)]
    (f,) = NPlusOne(SETTINGS).findings(items, CAT, 2180)
    assert f.parent_query == LIST and "19.8 times per call of statement 2 (100 calls, 2000 rows)" in f.evidence


def test_a_hot_lookup_without_a_parent_is_no_finding() -> None:
    """pgbench's shape: every statement once per transaction; no statement returns rows to loop over."""
    items = window((1, LOOKUP, 5000, 5000), (2, LIST, 5000, 5000), (3, COUNT, 5000, 5000))
    assert findings(NPlusOne(SETTINGS), items) == []


def test_more_lookups_than_the_parent_returned_rows_is_no_loop_over_them() -> None:
    items = window((1, LOOKUP, 3000, 3000), (2, LIST, 100, 2000))
    assert findings(NPlusOne(SETTINGS), items) == []


def test_a_parent_must_be_related_by_a_foreign_key() -> None:
    items = window((1, LOOKUP, 1980, 1980), (4, AUDIT, 100, 2000))
    assert findings(NPlusOne(SETTINGS), items) == []


def test_lookups_deduplicated_by_the_session_count_once_the_rate_recurs() -> None:
    """An identity map fetches each customer once per page: a third of the rows. One window is not enough
    evidence; the same calls per parent call in the next window is."""
    detector = NPlusOne(SETTINGS)
    assert findings(detector, window((1, LOOKUP, 700, 700), (2, LIST, 100, 2000))) == []
    assert findings(detector, window((1, LOOKUP, 760, 760), (2, LIST, 110, 2200))) == [(1, 2)]
    # a different rate in the window after is no recurrence
    assert findings(detector, window((1, LOOKUP, 300, 300), (2, LIST, 100, 2000))) == []


def test_the_closest_parent_is_named() -> None:
    """Two lists of orders: the lookups follow the rows of the one whose rows they match."""
    other = "SELECT id, customer_id FROM orders WHERE total > $1"
    items = window((1, LOOKUP, 1000, 1000), (2, LIST, 50, 1000), (5, other, 10, 1900))
    assert findings(NPlusOne(SETTINGS), items) == [(1, 2)]
