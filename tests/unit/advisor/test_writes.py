"""Writes: the read side that plans them (SQL → read text, or the reason it is refused), the rows they write per
table, the time base that counts those rows with the calls, and the HOT-aware write cost of a candidate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pglast import parse_sql

from collectors.postgres.statements import StatementStat
from monitor.advisor.candidates import Candidate
from monitor.advisor.catalog import Table
from monitor.advisor.query_analysis import Key, TableRef
from monitor.advisor.rates import Rates
from monitor.advisor.selection import index_columns, missing_privilege, write_cost_rejection
from monitor.advisor.settings import Thresholds
from monitor.advisor.writes import Written, read_side, write_shape, written_rows

READS = [
    ("UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
     "SELECT CASE WHEN FALSE THEN pgbench_accounts.abalance ELSE abalance + $1 END FROM pgbench_accounts "
     "WHERE aid = $2"),
    ("UPDATE t SET done = true WHERE id = $1", "SELECT 1 FROM t WHERE id = $1"),  # nothing to type: SELECT 1
    ("UPDATE t SET a = DEFAULT WHERE id = $1", "SELECT 1 FROM t WHERE id = $1"),
    ("UPDATE ONLY s.t AS x SET (a, b) = ($1, $2) FROM u WHERE x.u = u.id AND u.k = $3",
     "SELECT CASE WHEN FALSE THEN x.a ELSE $1 END, CASE WHEN FALSE THEN x.b ELSE $2 END FROM ONLY s.t AS x, u "
     "WHERE x.u = u.id AND u.k = $3"),
    ("UPDATE t SET x = (SELECT max(v) FROM u WHERE u.t = t.id) WHERE id = $1",  # the sub-query is read too
     "SELECT CASE WHEN FALSE THEN t.x ELSE (SELECT max(v) FROM u WHERE u.t = t.id) END FROM t WHERE id = $1"),
    ("UPDATE t SET n = n + $1 WHERE id = $2 RETURNING n", "SELECT CASE WHEN FALSE THEN t.n ELSE n + $1 END FROM t "
                                                          "WHERE id = $2"),
    ("UPDATE t SET n = $1", "SELECT CASE WHEN FALSE THEN t.n ELSE $1 END FROM t"),
    ("WITH d AS (SELECT id FROM u WHERE k = $1) UPDATE t SET x = $2 FROM d WHERE t.id = d.id",
     "WITH d AS (SELECT id FROM u WHERE k = $1) SELECT CASE WHEN FALSE THEN t.x ELSE $2 END FROM t, d "
     "WHERE t.id = d.id"),
    ("DELETE FROM t USING u WHERE t.u = u.id AND u.k = $1", "SELECT 1 FROM t, u WHERE t.u = u.id AND u.k = $1"),
    ("DELETE FROM ONLY s.t WHERE created < $1 RETURNING id", "SELECT 1 FROM ONLY s.t WHERE created < $1"),
    ("DELETE FROM t AS x WHERE x.id IN (SELECT t_id FROM u WHERE k = $1)",
     "SELECT 1 FROM t AS x WHERE x.id IN (SELECT t_id FROM u WHERE k = $1)"),
    ("INSERT INTO t (a) SELECT a FROM u WHERE k = $1 ON CONFLICT DO NOTHING", "SELECT a FROM u WHERE k = $1"),
    ("WITH s AS (SELECT a FROM u WHERE k = $1) INSERT INTO t SELECT a FROM s",
     "WITH s AS (SELECT a FROM u WHERE k = $1) SELECT a FROM s"),
    ("INSERT INTO t VALUES ((SELECT id FROM u WHERE k = $1), $2)", "VALUES ((SELECT id FROM u WHERE k = $1), $2)"),
    ("SELECT * FROM jobs WHERE state = $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
     "SELECT * FROM jobs WHERE state = $1 ORDER BY id LIMIT $2"),
    ("SELECT * FROM t WHERE id IN (SELECT t_id FROM u FOR SHARE)", "SELECT * FROM t WHERE id IN (SELECT t_id FROM u)"),
]


@pytest.mark.parametrize(("write", "read"), READS)
def test_a_write_is_planned_through_the_read_with_its_tables_and_predicate(write: str, read: str) -> None:
    side = read_side(write)
    assert side is not None and side.reason is None
    assert side.text == read
    parse_sql(side.text)  # it parses, and every parameter of the write is still there
    assert {p for p in range(1, 10) if f"${p}" in write} == {p for p in range(1, 10) if f"${p}" in side.text}


REFUSED = [
    ("WITH d AS (DELETE FROM u RETURNING *) INSERT INTO t SELECT * FROM d", "a WITH clause that writes"),
    ("WITH d AS (UPDATE u SET x = $1 RETURNING id) UPDATE t SET y = $2 FROM d WHERE t.id = d.id",
     "a WITH clause that writes"),
    ("DELETE FROM t WHERE CURRENT OF c", "WHERE CURRENT OF a cursor"),
    ("UPDATE t SET z[1] = $1 WHERE id = $2", "SET of an array element or a field"),
    ("UPDATE t SET (a, b) = (SELECT a, b FROM u WHERE u.id = t.u) WHERE id = $1",
     "a multi-column SET from a sub-query"),
    ("DELETE FROM t WHERE id = $1 RETURNING (SELECT count(*) FROM u)", "RETURNING with a sub-query"),
    ("INSERT INTO t (a) SELECT a FROM u WHERE k = $1 ON CONFLICT (a) DO UPDATE SET b = $2",
     "a parameter appears only in the written part"),
    ("WITH w AS (SELECT 1) INSERT INTO t WITH v AS (SELECT 2) SELECT * FROM v", "a WITH clause on both"),
]


@pytest.mark.parametrize(("write", "why"), REFUSED)
def test_what_cannot_become_the_same_read_is_refused_with_its_reason(write: str, why: str) -> None:
    side = read_side(write)
    assert side is not None and side.text is None and side.reason is not None
    assert side.reason.startswith("write without a read side to plan: ") and why in side.reason


@pytest.mark.parametrize("text", ["INSERT INTO t VALUES ($1, $2)", "INSERT INTO t VALUES ($1, $2) RETURNING id",
                                  "INSERT INTO t DEFAULT VALUES", "INSERT INTO t (a) VALUES ($1), ($2)"])
def test_an_insert_of_values_reads_nothing(text: str) -> None:
    side = read_side(text)
    assert side is not None and side.reads_nothing


@pytest.mark.parametrize("text", ["SELECT * FROM t WHERE id = $1", "SELECT 1; SELECT 2", "not sql at all",
                                  "COPY t FROM STDIN", "VACUUM t"])
def test_anything_else_is_planned_as_it_is(text: str) -> None:
    assert read_side(text) is None


def test_write_shapes_name_the_target_and_the_columns_set() -> None:
    assert write_shape("UPDATE s.t SET a = $1, b = b + $2 WHERE id = $3") == \
        write_shape("update s.t set b = 1, a = 2")
    shape = write_shape("UPDATE s.t SET a = $1, b = b + $2 WHERE id = $3")
    assert shape is not None and shape.table == TableRef("s", "t") and shape.set_columns == {"a", "b"}
    assert [getattr(write_shape(q), "kind", None) for q in (
        "INSERT INTO t VALUES ($1)", "copy t from stdin with (freeze on)", "COPY t TO STDOUT",
        "DELETE FROM t WHERE id = $1", "MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN DELETE",
        "SELECT 1")] == ["insert", "copy", None, "delete", "merge", None]


def test_rows_written_are_attributed_to_their_table_and_set_columns() -> None:
    oids = {"accounts": 1, "history": 2}
    stats = [StatementStat(1, "UPDATE accounts SET abalance = abalance + $1 WHERE aid = $2", calls=10, rows=10),
             StatementStat(2, "UPDATE accounts SET filler = $1 WHERE aid = $2", calls=5, rows=7),
             StatementStat(3, "copy accounts from stdin", calls=1, rows=1000),
             StatementStat(4, "INSERT INTO history VALUES ($1, $2)", calls=10, rows=10),
             StatementStat(5, "DELETE FROM history WHERE id < $1", calls=1, rows=500),  # adds no index entry
             StatementStat(6, "SELECT * FROM accounts WHERE aid = $1", calls=99, rows=99),
             StatementStat(7, "INSERT INTO elsewhere VALUES ($1)", calls=1, rows=3)]  # not a known table
    written = written_rows(stats, lambda ref: oids.get(ref.name))
    assert written[1].added == 1000 and written[1].updated == {frozenset({"abalance"}): 10, frozenset({"filler"}): 7}
    assert written[2].added == 10 and written[2].updates == 0


def _table(inserts: int = 0, updates: int = 0, hot: int = 0) -> Table:
    return Table(1, "public", "accounts", 1e6, 10**8, inserts + updates, 0, 0, inserts, updates, hot_updates=hot)


NOW = datetime(2026, 1, 2, tzinfo=UTC)


def test_writes_are_counted_over_the_statements_window() -> None:
    """The issue's bug: table statistics never reset (the usual case) counted a bulk load made before
    pg_stat_statements' reset against the calls since it. Now only its own write statements count."""
    table = _table(inserts=40_000)
    rates = Rates.over(NOW, NOW - timedelta(hours=1), None, {1: table}, {})
    assert rates.table_writes == {} and rates.writes_per_hour(1) == 0
    assert rates.window.startswith("per hour: calls and rows written since pg_stat_statements' counters began at "
                                   "2026-01-01T23:00:00+00:00 (60.0 min)")
    assert "never reset" in rates.window
    own = {1: Written(added=300.0)}
    assert Rates.over(NOW, NOW - timedelta(hours=1), None, {1: table}, own).writes_per_hour(1) == 300


def test_the_table_statistics_rate_over_the_same_window_counts_when_higher() -> None:
    # reset 10 h ago: 10,000 inserts and 5,000 updates, so 1,000 and 500 in the statements' last hour
    table = _table(inserts=10_000, updates=5_000)
    own = {1: Written(added=200.0, updated={frozenset({"abalance"}): 800.0})}
    rates = Rates.over(NOW, NOW - timedelta(hours=1), NOW - timedelta(hours=10), {1: table}, own)
    written = rates.table_writes[1]
    assert written.added == pytest.approx(1000) and written.updated == {frozenset({"abalance"}): 800.0}
    assert "or the table statistics' rate (reset at 2026-01-01T14:00:00+00:00" in rates.window
    more = {1: Written(updated={frozenset({"abalance"}): 100.0})}
    assert Rates.over(NOW, NOW - timedelta(hours=1), NOW - timedelta(hours=10), {1: table}, more) \
        .table_writes[1].updated == {frozenset({"abalance"}): 100.0, None: pytest.approx(400.0)}


def test_without_a_known_window_calls_and_writes_are_counts_alike() -> None:
    rates = Rates.over(NOW, None, None, {1: _table(inserts=5)}, {1: Written(added=7.0)})
    assert rates.statements_seconds is None and rates.writes_per_hour(1) is None
    assert rates.table_writes[1].added == 7 and rates.window.startswith("counts: ")


def _candidate(table: Table, *columns: str) -> Candidate:
    return Candidate(table, tuple((Key(c), False) for c in columns), len(columns))


def test_an_index_on_a_column_updates_set_ends_their_hot_updates() -> None:
    """10,000 updates in the window, half of them HOT: on abalance (set by every update) each adds an entry to the
    new index and the HOT half now touches the 2 other indexes too; on bid (never set) only the non-HOT half adds
    an entry, and the HOT half stays HOT."""
    table = _table(updates=10_000, hot=5_000)
    written = {1: Written(updated={frozenset({"abalance"}): 10_000.0})}
    rates = Rates.over(NOW, NOW - timedelta(hours=1), None, {1: table}, written)
    settings = Thresholds(write_penalty_per_row=1.0, size_penalty_per_page=0.0)
    abalance, bid = _candidate(table, "abalance"), _candidate(table, "bid")
    # abalance: 10,000 x (1 + 0.5 x 2) = 20,000 entries; bid: 10,000 x 0.5 x 1 = 5,000
    assert write_cost_rejection(abalance, 20_001, 0, settings, rates, existing=2) is None
    reason = write_cost_rejection(abalance, 19_999, 0, settings, rates, existing=2)
    assert reason is not None and "10,000 updates that set abalance (no longer HOT: 50% of the table's updates " \
        "were, and these would now also touch its 2 other index(es))" in reason
    assert "about 20,000 new index entries per hour" in reason
    assert write_cost_rejection(bid, 5_001, 0, settings, rates, existing=2) is None
    reason = write_cost_rejection(bid, 4_999, 0, settings, rates, existing=2)
    assert reason is not None and "10,000 other updates (50% HOT, which stay HOT)" in reason


def test_an_expression_or_a_predicate_reads_the_columns_it_names() -> None:
    table = _table()
    expression = Candidate(table, ((Key("lower(email)", True), False),), 1, predicate="deleted_at IS NULL")
    assert index_columns(expression) == {"email", "deleted_at"}


def test_inserted_rows_add_an_entry_whatever_they_set() -> None:
    table = _table()
    rates = Rates.over(NOW, None, None, {1: table}, {1: Written(added=1_000.0)})
    settings = Thresholds(write_penalty_per_row=0.5, size_penalty_per_page=0.0)
    reason = write_cost_rejection(_candidate(table, "aid"), 400, 0, settings, rates)
    assert reason is not None and "1,000 rows inserted" in reason and "over their window" in reason
    assert write_cost_rejection(_candidate(table, "aid"), 600, 0, settings, rates) is None


@pytest.mark.parametrize(("message", "missing"), [
    ("permission denied for table orders", "SELECT on table orders"),
    ("permission denied for view v_orders", "SELECT on view v_orders"),
    ("permission denied for schema billing", "USAGE on schema billing"),
    ("permission denied for function secret(integer)", "EXECUTE on function secret(integer)"),
    ("something else", "a privilege the server did not name"),
])
def test_the_missing_privilege_is_a_read_privilege_named_exactly(message: str, missing: str) -> None:
    assert missing_privilege(message) == missing
