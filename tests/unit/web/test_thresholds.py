"""The thresholds the charts draw are the shipped alerts' thresholds."""

from __future__ import annotations

import math

import pytest

from monitor.web import thresholds
from tests.rules.promql_check import load_rule_groups


def alert_exprs() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for group in load_rule_groups():
        for rule in group["rules"]:
            if "alert" in rule:
                out.setdefault(rule["alert"], []).append(" ".join(rule["expr"].split()))
    return out


@pytest.mark.parametrize("threshold", thresholds.ALL, ids=lambda t: t.alert)
def test_each_threshold_is_its_alerts(threshold: thresholds.Threshold) -> None:
    exprs = alert_exprs()
    assert threshold.alert in exprs, f"no alert named {threshold.alert}"
    assert any(threshold.expr in e for e in exprs[threshold.alert]), exprs[threshold.alert]
    written = threshold.expr.split(maxsplit=1)[1]  # e.g. "0.95" or "64 * 1024 * 1024"
    assert math.prod(float(f) for f in written.split("*")) == threshold.value


def test_a_changed_threshold_would_be_caught() -> None:
    """The check above can fail: a threshold that differs from the rule's is not found in it."""
    wrong = thresholds.Threshold("PostgresLockWaits", 4, "> 4")
    assert not any(wrong.expr in e for e in alert_exprs()[wrong.alert])
