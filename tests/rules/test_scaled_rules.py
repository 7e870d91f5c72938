"""Rule files run faster for the shortened soak: every window divided, nothing else changed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.prometheus import duration_seconds, format_duration, scale_expr, scaled_rules
from tests.rules.promql_check import RULE_FILES, promtool


def test_durations_round_trip() -> None:
    assert [duration_seconds(d) for d in ("90s", "1h30m", "500ms", "6h")] == [90, 5400, 0.5, 21600]
    assert [format_duration(s) for s in (40, 2.5, 0.0001, 1440)] == ["40s", "2500ms", "1ms", "1440s"]
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        duration_seconds("5 minutes")


def test_windows_offsets_and_subqueries_are_divided_strings_are_not() -> None:
    expr = ('increase(x{a=~"[0-9]+m"}[10m]) > 0 and y offset 20m unless max_over_time(z[1h:1m])'
            " and w[5m:] and v offset -2m > 300")
    assert scale_expr(expr, 15) == ('increase(x{a=~"[0-9]+m"}[40s]) > 0 and y offset 80s unless '
                                    "max_over_time(z[240s:4s]) and w[20s:] and v offset -8s > 300")


def _windows(expr: str) -> list[str]:
    """The ranges of an expression, outside its strings (a label regex such as ``"template[01]"``)."""
    return re.findall(r"\[([0-9][0-9a-z]*)", re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr))


@pytest.mark.parametrize("factor", [1, 15])
def test_scaled_copies_keep_every_rule_and_pass_promtool(factor: float, tmp_path: Path) -> None:
    copies = scaled_rules(RULE_FILES, tmp_path, factor)
    for original, copy in zip(RULE_FILES, copies, strict=True):
        rules = [r for g in yaml.safe_load(original.read_text())["groups"] for r in g["rules"]]
        scaled = [r for g in yaml.safe_load(copy.read_text())["groups"] for r in g["rules"]]
        assert [r.get("alert", r.get("record")) for r in rules] == [r.get("alert", r.get("record")) for r in scaled]
        for before, after in zip(rules, scaled, strict=True):
            assert before.get("labels") == after.get("labels") and before.get("annotations") == after.get("annotations")
            if "for" in before:
                assert duration_seconds(after["for"]) * factor == pytest.approx(duration_seconds(before["for"]))
            windows = _windows(before["expr"])
            assert [duration_seconds(w) / factor for w in windows] == pytest.approx(
                [duration_seconds(w) for w in _windows(after["expr"])])
    result = subprocess.run([promtool(), "check", "rules", *map(str, copies)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
