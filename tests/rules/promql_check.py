"""Helpers shared by the rule and dashboard tests: promtool, PromQL metric names, the catalogue.

PromQL is parsed by the real promtool (each expression wrapped in a recording
rule); metric names are pulled out of expressions with a small tokenizer, good
enough for the PromQL we write (no ``{__name__=...}`` selectors) and itself tested.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.rules.yml"))
RULE_TEST_FILES = sorted((RULES_DIR / "tests").glob("*.test.yml"))
CATALOGUE = sorted((ROOT / "collectors").glob("*/metrics.yaml"))  # one per folder: base and each source
RUNBOOK = ROOT / "docs" / "runbook.md"
RUNBOOK_URL_PREFIX = "https://github.com/dbpulse/dbpulse/blob/main/docs/runbook.md#"

# Series Prometheus makes itself, which rules and dashboards may use besides the catalogue.
PROMETHEUS_SERIES = frozenset({"up", "scrape_duration_seconds", "ALERTS", "ALERTS_FOR_STATE"})

_KEYWORDS = frozenset({
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "start", "end", "atan2",
})
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-z]+")
_IDENT = re.compile(r"(?<![\w.:$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: install the Debian package prometheus (scripts/setup.sh does)")
    return path


def metric_names(expr: str) -> set[str]:
    """Metric names (and recording rule names) an expression selects."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name in _KEYWORDS:
            continue
        names.add(name)
    return names


def catalogue_names() -> set[str]:
    """Metric names in the catalogue files (collectors/*/metrics.yaml) as they are now."""
    names: set[str] = set()
    for path in CATALOGUE:
        raw: dict[str, Any] = yaml.safe_load(path.read_text())
        names |= set(raw)
    return names


def load_rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for path in RULE_FILES:
        groups.extend(yaml.safe_load(path.read_text())["groups"])
    return groups


def recording_rule_names() -> set[str]:
    return {r["record"] for g in load_rule_groups() for r in g["rules"] if "record" in r}


def check_promql(exprs: dict[str, str]) -> dict[str, str]:
    """Parse each expression with promtool; returns {key: error} for those that do not parse."""
    tool = promtool()

    def run(batch: dict[str, str]) -> subprocess.CompletedProcess[str]:
        rules = [{"record": f"check:expr_{i}", "expr": e} for i, e in enumerate(batch.values())]
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}, f)
        try:
            return subprocess.run([tool, "check", "rules", f.name], capture_output=True, text=True,
                                  timeout=60)
        finally:
            Path(f.name).unlink()

    if not exprs or run(exprs).returncode == 0:
        return {}
    errors = {}
    for key, expr in exprs.items():  # find the culprits one by one
        result = run({key: expr})
        if result.returncode != 0:
            errors[key] = (result.stdout + result.stderr).strip()
    return errors
