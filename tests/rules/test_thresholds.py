"""The alert rules say what the threshold tables say (collectors/<source>/thresholds.py), and the checker
that holds them together fails, naming the rule and both numbers, when one drifts."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.base.thresholds import Threshold
from collectors.registry import sources
from tests.rules.promql_check import RULE_FILES, RULES_DIR
from tests.rules.threshold_check import alert_exprs, check, drift, load_groups, tables

ALERTS_FILE = RULES_DIR / "dbpulse-alerts.rules.yml"
TABLES = tables()


@pytest.fixture(scope="module")
def shipped() -> dict[tuple[str, str], list[str]]:
    return alert_exprs(load_groups(RULE_FILES))


def test_every_source_has_a_table() -> None:
    modules = {module for module, _ in TABLES}
    assert modules == {f"collectors.{spec.name}.thresholds" for spec in sources()}
    names = [(module, t.name) for module, t in TABLES]
    assert len(names) == len(set(names))


def test_the_shipped_rules_compare_with_the_tables_numbers() -> None:
    assert check(RULE_FILES) == []


def test_a_drifted_threshold_in_a_copy_of_the_rules_fails_the_check(tmp_path: Path) -> None:
    text = ALERTS_FILE.read_text()
    planted = 'dbpulse_pg_replication_lag_bytes{stage="replay"} > 32 * 1024 * 1024'
    drifted = text.replace('dbpulse_pg_replication_lag_bytes{stage="replay"} > 64 * 1024 * 1024', planted)
    assert drifted.count(planted) == 1
    copy = tmp_path / ALERTS_FILE.name
    copy.write_text(drifted)
    others = [p for p in RULE_FILES if p != ALERTS_FILE]
    assert check([copy, *others]) == [
        "alert PostgresReplicationLag (warning): the rule compares with 33554432 (written 32 * 1024 * 1024), "
        "the table with 67108864 (collectors.postgres.thresholds replication_lag = 67108864 bytes)"]


@pytest.mark.parametrize(("module", "threshold"), TABLES, ids=[f"{m.split('.')[1]}.{t.name}" for m, t in TABLES])
def test_each_entry_is_checked_against_its_rule(module: str, threshold: Threshold,
                                                shipped: dict[tuple[str, str], list[str]]) -> None:
    """Every entry can fail: its number changed in the table, or its rule gone, is reported."""
    exprs = shipped
    assert drift(module, threshold, exprs) == []
    changed = Threshold(threshold.name, threshold.value + 1, threshold.unit, threshold.alert, threshold.written,
                        threshold.severity, threshold.also)
    if "#" in threshold.written:
        assert drift(module, changed, exprs), threshold
    gone = {key: e for key, e in exprs.items() if key[0] != threshold.alert}
    (problem,) = drift(module, threshold, gone)
    assert problem.startswith(f"alert {threshold.alert} ({threshold.severity}): no such rule")


def test_a_comparison_written_twice_is_ambiguous() -> None:
    threshold = Threshold("x", 1, "count", "A")
    exprs = {("A", "warning"): ["a > 1 and b > 1"]}
    (problem,) = drift("m", threshold, exprs)
    assert "'> #' is written 2 times in its expression, not once" in problem
