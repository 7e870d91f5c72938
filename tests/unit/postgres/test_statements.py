"""The one pg_stat_statements reader: deltas between two reads."""

from __future__ import annotations

from collectors.postgres.statements import StatementStat, deltas


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
