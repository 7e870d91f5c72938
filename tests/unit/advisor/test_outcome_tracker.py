"""The outcome tracker's judgement on windows of counters (its arithmetic; the integration test
shows it on a real database's statements)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collectors.postgres.statements import StatementStat
from monitor.advisor.catalog import Catalog, Table
from monitor.advisor.outcomes import OutcomeTracker, Window
from monitor.advisor.settings import Thresholds

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _catalog() -> Catalog:
    cat = Catalog()
    cat.tables[1] = Table(1, "public", "orders", 10_000, 0, 0, 0, 0)
    return cat


def _run(tracker: OutcomeTracker, n: int, mean_ms: float, calls: int = 20) -> list[str]:
    stat = StatementStat(7, "SELECT * FROM orders WHERE id = $1", calls, calls * mean_ms / 1000, calls, calls * 4, 0)
    _, regressions = tracker.update([stat], {7: {1}}, _catalog(), T0 + timedelta(minutes=5 * n))
    return [r.cause for r in regressions]


def test_a_several_fold_rise_against_its_own_baseline_is_a_regression() -> None:
    tracker = OutcomeTracker(Thresholds())
    assert [_run(tracker, n, 2.0) for n in range(4)] == [[], [], [], []]
    (cause,) = _run(tracker, 4, 9.0)
    assert "own baseline" in cause and "no index change" in cause


def test_small_absolute_rises_and_thin_windows_are_not_regressions() -> None:
    tracker = OutcomeTracker(Thresholds())
    for n in range(4):
        _run(tracker, n, 0.01)
    assert _run(tracker, 4, 0.05) == []  # 5x, but 0.04 ms: noise
    tracker = OutcomeTracker(Thresholds())
    for n in range(4):
        _run(tracker, n, 2.0)
    assert _run(tracker, 4, 20.0, calls=3) == []  # too few calls to tell


def test_verdicts() -> None:
    tracker = OutcomeTracker(Thresholds())
    before = Window(20, 0.040, 20, 80)
    assert tracker.verdict(before, Window(20, 0.004, 20, 8)) == "improvement"
    assert tracker.verdict(before, Window(20, 0.120, 20, 800)) == "regression"
    assert tracker.verdict(before, Window(20, 0.042, 20, 80)) == "unchanged"
    assert tracker.verdict(before, Window(2, 0.001, 2, 8)) == "insufficient_data"


def test_history_stays_bounded() -> None:
    tracker = OutcomeTracker(Thresholds(outcome_windows=3))
    for n in range(10):
        _run(tracker, n, 2.0)
    assert len(tracker.windows[7]) == 3
    tracker.update([], {}, _catalog(), T0 + timedelta(hours=2))  # the statement left the workload
    assert tracker.windows == {}
