"""The ring of recent values the UI draws from: bounded, gaps kept, stale series dropped."""

from __future__ import annotations

import math

import pytest

from collectors.base.samples import Sample
from monitor.core.history import History, capacity_for, delta_ratio, increase, rate

CALLS = "dbpulse_pg_statement_calls_total"
EXEC = "dbpulse_pg_statement_exec_seconds_total"
HIT = "dbpulse_redis_cache_hit_ratio"


def calls(queryid: str, value: float) -> Sample:
    return Sample(CALLS, ("t", "db", queryid), value)


def test_capacity_holds_the_window_at_the_interval() -> None:
    assert capacity_for(3600, 15) == 241
    assert capacity_for(3600, 1) == 3601
    assert capacity_for(1, 60) == 2


def test_only_named_metrics_are_kept() -> None:
    history = History(4, [CALLS])
    history.record(1.0, [calls("1", 5), Sample("dbpulse_pg_up", ("t",), 1)])
    assert history.series_count == 1
    assert [s.labels for s in history.series(CALLS)] == [{"target": "t", "datname": "db", "queryid": "1"}]


def test_ring_keeps_the_newest_points_oldest_first() -> None:
    history = History(3, [CALLS])
    for t in range(1, 6):
        history.record(float(t), [calls("1", t * 10)])
    (series,) = history.series(CALLS)
    assert series.times == [3.0, 4.0, 5.0]
    assert series.values == [30, 40, 50]
    assert len(history) == 3


def test_a_failed_poll_is_a_gap_in_every_series() -> None:
    history = History(5, [CALLS])
    history.record(1.0, [calls("1", 1), calls("2", 1)])
    history.record(2.0, None)
    history.record(3.0, [calls("1", 3), calls("2", 3)])
    for series in history.series(CALLS):
        assert series.values == [1, None, 3]
    assert history.ups() == [True, False, True]


def test_a_series_absent_from_a_poll_has_a_gap_there() -> None:
    history = History(5, [CALLS])
    history.record(1.0, [calls("1", 1), calls("2", 1)])
    history.record(2.0, [calls("1", 2)])
    assert history.one(CALLS, queryid="2").values == [1, None]  # type: ignore[union-attr]


def test_a_series_unseen_for_a_whole_ring_is_dropped() -> None:
    """Statements that leave the top-K must not pile up: memory stays bounded by what is shown."""
    history = History(3, [CALLS])
    for t in range(100):
        history.record(float(t), [calls(str(t), 1)])  # a new queryid every poll
    assert history.series_count == 3


def test_match_filters_by_label_and_one_needs_exactly_one() -> None:
    history = History(3, [CALLS])
    history.record(1.0, [calls("1", 1), calls("2", 1)])
    assert [s.labels["queryid"] for s in history.series(CALLS, queryid="2")] == ["2"]
    assert history.one(CALLS) is None
    assert history.one(CALLS, queryid="9") is None


def test_rate_breaks_at_gaps_and_resets() -> None:
    history = History(6, [CALLS])
    for t, v in ((0, 0), (10, 100), (20, None), (30, 400), (40, 50), (50, 150)):
        history.record(float(t), None if v is None else [calls("1", v)])
    (series,) = history.series(CALLS)
    assert rate(series).values == [None, 10.0, None, None, None, 10.0]


def test_delta_ratio_and_increase() -> None:
    history = History(4, [EXEC, CALLS])
    for t, n, secs in ((0, 0, 0.0), (10, 10, 1.0), (20, 10, 1.0), (30, 30, 5.0)):
        history.record(float(t), [calls("1", n), Sample(EXEC, ("t", "db", "1"), secs)])
    exec_ = history.one(EXEC)
    n_ = history.one(CALLS)
    assert exec_ is not None and n_ is not None
    assert delta_ratio(exec_, n_) == [None, 0.1, None, 0.2]
    assert increase(n_) == (30, 30.0)


def test_capacity_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        History(1, [])


def test_nan_values_read_as_gaps() -> None:
    history = History(2, [HIT])
    history.record(1.0, [Sample(HIT, ("t",), math.nan)])
    assert history.one(HIT).values == [None]  # type: ignore[union-attr]
