"""The outcome tracker's judgement on windows of counters (its arithmetic; the integration test
shows it on a real database's statements)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collectors.postgres.statements import StatementStat
from monitor.advisor.catalog import Catalog, Table
from monitor.advisor.outcomes import Outcome, OutcomeTracker, StatementOutcome, Window
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


def _outcome(*sides: tuple[Window, Window, str]) -> Outcome:
    at = datetime(2026, 12, 4, tzinfo=UTC)
    return Outcome("public.t", "ix", "created", at, True,
                   [StatementOutcome(i, "SELECT 1", b, a, v) for i, (b, a, v) in enumerate(sides)])  # type: ignore[arg-type]


def test_an_outcome_in_words_weighs_the_statements_by_their_calls_since() -> None:
    # 0.1 s a call before; since: 60 calls in 0.5 s and 10 calls at the same 0.1 s -> 7 s before, 1.5 s since
    two = _outcome((Window(30, 3.0, 0, 0), Window(60, 0.5, 0, 0), "improvement"),
                   (Window(30, 3.0, 0, 0), Window(10, 1.0, 0, 0), "unchanged"))
    assert two.speedup is not None and abs(two.speedup - 7.0 / 1.5) < 1e-9
    assert two.in_words() == "2 statements 4.67x faster since"
    slower = _outcome((Window(30, 0.3, 0, 0), Window(30, 0.9, 0, 0), "regression"))
    assert slower.in_words() == "1 statement slower since"
    # the verdict leads: one regression among faster statements is never worded "faster"
    mixed = _outcome((Window(30, 3.0, 0, 0), Window(60, 0.5, 0, 0), "improvement"),
                     (Window(30, 0.3, 0, 0), Window(30, 0.9, 0, 0), "regression"))
    assert mixed.speedup is not None and mixed.speedup > 1
    assert mixed.in_words() == "1 statement slower since, 1 faster"
    # an improvement whose unmeasured statements are not counted
    partly = _outcome((Window(30, 3.0, 0, 0), Window(60, 0.5, 0, 0), "improvement"),
                      (Window(30, 3.0, 0, 0), Window(0, 0.0, 0, 0), "insufficient_data"))
    assert partly.in_words() == "1 statement 12x faster since"
    assert _outcome((Window(30, 3.0, 0, 0), Window(0, 0.0, 0, 0), "insufficient_data")).in_words() == (
        "1 statement followed, too few calls since to judge")
    assert _outcome().in_words() == "0 statements followed, too few calls since to judge"
    assert _outcome((Window(30, 3.0, 0, 0), Window(30, 2.9, 0, 0), "unchanged")).in_words() == (
        "1 statement unchanged since")
