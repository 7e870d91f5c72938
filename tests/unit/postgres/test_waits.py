"""The wait profile's bookkeeping (collectors/postgres/waits.py): bounds and attribution rules that a real server
cannot be made to exercise on demand (a statement with more wait events than are kept, a statement that leaves
the top-K); the sampling itself is tested against real servers in tests/integration/postgres/test_waits.py."""

from __future__ import annotations

import pytest

from collectors.base.samples import OTHER, SampleList
from collectors.postgres.waits import EVENTS_PER_STATEMENT, WaitProfile, WaitTotals, _activity_statements, features


def test_a_statements_events_beyond_the_bound_add_up_per_class_and_stay_counters() -> None:
    totals = WaitTotals()
    for i in range(EVENTS_PER_STATEMENT):
        totals.add("app", 7, "LWLock", f"event{i}", 1.0)
    totals.add("app", 7, "IO", "DataFileRead", 2.0)  # one too many: folded into its class
    totals.add("app", 7, "IO", "WALSync", 3.0)
    totals.add("app", 7, "LWLock", "event0", 1.0)  # admitted before: keeps its own series
    events = totals.statements[7]
    assert len(events) == EVENTS_PER_STATEMENT + 1
    assert events[("IO", OTHER)] == 5.0
    assert events[("LWLock", "event0")] == 2.0
    assert totals.databases[("app", "IO", "DataFileRead")] == 2.0  # the database keeps every event


def test_time_without_a_query_identifier_counts_for_the_database_only() -> None:
    totals = WaitTotals()
    totals.add("app", None, "Lock", "transactionid", 1.5)
    totals.add("app", 0, "Lock", "transactionid", 0.5)
    assert totals.statements == {}
    assert totals.databases == {("app", "Lock", "transactionid"): 2.0}


def test_only_the_top_k_is_exported_and_a_running_statement_is_kept_until_it_can_enter_it() -> None:
    totals = WaitTotals()
    totals.add("app", 1, "IO", "DataFileRead", 1.0)
    totals.add("app", 2, "Lock", "tuple", 1.0)  # still running: not in pg_stat_statements yet
    assert totals.keep_statements([1]) == {1: {("IO", "DataFileRead"): 1.0}}
    assert set(totals.statements) == {1, 2}  # 2 was sampled since the last poll: kept
    totals.add("app", 2, "Lock", "tuple", 1.0)
    assert totals.keep_statements([1, 2]) == {1: {("IO", "DataFileRead"): 1.0}, 2: {("Lock", "tuple"): 2.0}}
    assert totals.keep_statements([1]) == {1: {("IO", "DataFileRead"): 1.0}}
    assert set(totals.statements) == {1}  # neither in the top-K nor sampled since: forgotten


@pytest.mark.parametrize(("version", "setting", "pgss", "supported"), [
    (130000, None, True, False),
    (140000, "off", True, False),
    (140000, "auto", False, False),
    (140000, "auto", True, True),
    (170000, "on", False, True),
    (180000, "regress", False, True),
])
def test_per_statement_attribution_needs_a_query_id(version: int, setting: str | None, pgss: bool,
                                                    supported: bool) -> None:
    on, reason = _activity_statements(version, setting, pgss)
    assert on is supported
    assert (reason is None) is supported
    if version < 140000:
        assert reason is not None and "13" in reason


def test_the_profile_adds_up_the_cluster_and_exports_catalogued_samples() -> None:
    profile = WaitProfile("pg_stat_activity", True, None, since=100.0, samples=3, read_at=160.0,
                          databases={("a", "IO", "DataFileRead"): 3.0, ("b", "IO", "DataFileRead"): 1.0,
                                     ("a", "CPU", "CPU"): 4.0},
                          statements={9: {("IO", "DataFileRead"): 2.0}})
    assert [(r.name, r.seconds, r.share) for r in profile.cluster()] == [
        ("CPU:CPU", 4.0, 0.5), ("IO:DataFileRead", 4.0, 0.5)]
    assert [(r.event_type, r.share) for r in profile.classes()] == [("CPU", 0.5), ("IO", 0.5)]
    assert profile.span_seconds == 60.0
    out = SampleList(target="t")
    profile.add_samples(out, "a")
    got = {(s.name, s.labels) for s in out.samples}
    assert ("dbpulse_pg_statement_wait_seconds_total", ("t", "a", "9", "IO", "DataFileRead")) in got
    assert ("dbpulse_pg_wait_seconds_total", ("t", "b", "IO", "DataFileRead")) in got
    assert features(profile) == {"wait_sampling": True, "wait_statements": True}
    assert features(None) == {"wait_sampling": False, "wait_statements": False}


def test_a_statement_profile_says_how_many_samples_saw_it() -> None:
    """pg_stat_activity samples stand for an interval each: a statement's sampled seconds over the interval is
    about how many samples saw it active (the statement page calls fewer than FEW_SAMPLES a hint)."""
    profile = WaitProfile("pg_stat_activity", True, None, since=100.0, samples=40, read_at=160.0,
                          statements={9: {("IO", "DataFileRead"): 0.6, ("CPU", "CPU"): 0.4}, 7: {("CPU", "CPU"): 9.0}},
                          interval=0.2)
    few, many = profile.statement_samples(9), profile.statement_samples(7)
    assert (few, many, profile.statement_samples(8)) == (5, 45, 0)
    assert few < profile.few_samples <= many
    assert WaitProfile("pg_wait_sampling", True, None, since=0.0, samples=3).statement_samples(9) is None

