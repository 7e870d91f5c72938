"""The one pg_stat_statements reader: deltas between two reads."""

from __future__ import annotations

from collectors.postgres.statements import StatementStat, deltas, fingerprint, group_variants, variant_key


def test_deltas_between_polls() -> None:
    prev = {1: StatementStat(1, "q1", 10, 100.0, 10), 2: StatementStat(2, "q2", 50, 50.0, 5)}
    cur = [StatementStat(1, "q1", 15, 400.0, 15), StatementStat(2, "q2", 3, 3.0, 3),
           StatementStat(3, "q3", 4, 4.0, 4), StatementStat(4, "q4", 0, 0.0, 0)]
    prev[4] = StatementStat(4, "q4", 0, 0.0, 0)
    assert deltas(cur, prev) == [
        StatementStat(1, "q1", 5, 300.0, 5),  # mean 60 s in the window, 10 s lifetime before
        StatementStat(2, "q2", 3, 3.0, 3),  # counters went back: reset, take as is
        StatementStat(3, "q3", 4, 4.0, 4),  # new
    ]
    assert deltas(cur, None) == cur


def test_variants_are_grouped_by_fingerprint() -> None:
    in2 = StatementStat(2, "SELECT a FROM t WHERE b IN ($1, $2)", 10, 1.0, 20)
    in5 = StatementStat(5, "SELECT a FROM t WHERE b IN ($1, $2, $3, $4, $5)", 4, 3.0, 20)
    other = StatementStat(7, "SELECT a FROM t WHERE c = $1", 100, 2.0, 100)
    cut = StatementStat(9, "SELECT a FROM t WHERE b IN ($1, $2, $3,", 1, 0.5, 3)  # cut short: no fingerprint
    assert fingerprint(in2.query) == fingerprint(in5.query) != fingerprint(other.query)
    assert fingerprint(cut.query) is None
    groups = group_variants([in2, other, in5, cut], lambda s: variant_key(s.query))
    assert [g.queryids for g in groups] == [[5, 2], [7], [9]]  # heaviest group first, heaviest variant first
    total = groups[0].total
    assert (total.queryid, total.query, total.calls, total.exec_seconds, total.rows) == (5, in5.query, 14, 4.0, 40)
    assert groups[1].total == other and groups[1].count == 1


def test_tables_that_differ_in_a_number_are_not_variants() -> None:
    """libpg_query's fingerprint drops the digits that end a table's name (partitions, shards): the names
    keep them apart."""
    y23, y24 = "SELECT id FROM orders_2023 WHERE id = $1", "SELECT id FROM orders_2024 WHERE id = $1"
    assert fingerprint(y23) == fingerprint(y24)
    assert variant_key(y23) != variant_key(y24)
    one, two = "SELECT id FROM quotes WHERE a IN ($1)", "select id from quotes where a in ($1, $2)"
    assert variant_key(one) == variant_key(two)
