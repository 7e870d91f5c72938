"""The shipped Prometheus rules are code: promtool checks and unit-tests them, and these tests
hold every alert to the conventions (severity, annotations, runbook section, a firing and a
non-firing unit test, catalogued metric names only)."""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from typing import Any

import pytest
import yaml

from collectors.registry import sources
from tests.rules.promql_check import (
    PROMETHEUS_SERIES,
    RULE_FILES,
    RULE_TEST_FILES,
    RUNBOOK,
    RUNBOOK_URL_PREFIX,
    catalogue_names,
    load_rule_groups,
    metric_names,
    promtool,
    recording_rule_names,
)

SEVERITIES = {"critical", "warning", "info"}
SOURCES = {"dbpulse", "advisor", *(spec.name for spec in sources())}  # the service's own and every source


def alerting_rules() -> list[dict[str, Any]]:
    return [r for g in load_rule_groups() for r in g["rules"] if "alert" in r]


def runbook_anchors() -> set[str]:
    """GitHub-style anchors of the runbook's headings."""
    anchors = set()
    for line in RUNBOOK.read_text().splitlines():
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            title = m.group(1).strip().lower()
            anchors.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return anchors


def test_rule_files_exist() -> None:
    assert RULE_FILES, "no rules/*.rules.yml"
    assert RULE_TEST_FILES, "no rules/tests/*.test.yml"


def test_promtool_check_rules() -> None:
    result = subprocess.run([promtool(), "check", "rules", *map(str, RULE_FILES)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", RULE_TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests(test_file: Any) -> None:
    result = subprocess.run([promtool(), "test", "rules", str(test_file)],
                            capture_output=True, text=True, timeout=120, cwd=test_file.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_severity_source_and_annotations() -> None:
    rules = alerting_rules()
    assert len({r["alert"] for r in rules}) >= 30
    anchors = runbook_anchors()
    for rule in rules:
        name = rule["alert"]
        labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
        assert labels.get("severity") in SEVERITIES, name
        # `source` is either a static label or comes from dbpulse_source_* series
        assert labels.get("source") in SOURCES or "dbpulse_source" in rule["expr"] or \
            "dbpulse:source" in rule["expr"], name
        for key in ("summary", "description", "runbook_url"):
            assert annotations.get(key), f"{name} has no {key}"
        assert "{{" in annotations["description"], f"{name}: the description gives no value or label"
        url = annotations["runbook_url"]
        assert url.startswith(RUNBOOK_URL_PREFIX), (name, url)
        assert url.removeprefix(RUNBOOK_URL_PREFIX) == name.lower(), f"{name} links {url}"
        assert name.lower() in anchors, f"docs/runbook.md has no section '## {name}'"


def test_advisor_alerts_never_page() -> None:
    for rule in alerting_rules():
        if rule["labels"].get("source") == "advisor" or rule["alert"] == "PostgresSlowStatement":
            assert rule["labels"]["severity"] in {"info", "warning"}, rule["alert"]


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    fired: dict[str, set[str]] = defaultdict(set)  # alert -> severities seen firing
    silent: set[str] = set()
    for path in RULE_TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                exp = check.get("exp_alerts") or []
                if exp:
                    fired[check["alertname"]].update(a["exp_labels"]["severity"] for a in exp)
                else:
                    silent.add(check["alertname"])
    for rule in alerting_rules():
        name, severity = rule["alert"], rule["labels"]["severity"]
        assert severity in fired[name], f"no unit test fires {name} ({severity})"
        assert name in silent, f"no unit test where {name} must not fire"


def test_every_recording_rule_is_unit_tested() -> None:
    tested = set()
    for path in RULE_TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("promql_expr_test", []):
                tested |= metric_names(check["expr"])
    assert recording_rule_names() <= tested, recording_rule_names() - tested


def test_rules_use_only_catalogued_metrics() -> None:
    known = catalogue_names() | recording_rule_names() | PROMETHEUS_SERIES
    unknown = {}
    for group in load_rule_groups():
        for rule in group["rules"]:
            missing = metric_names(rule["expr"]) - known
            if missing:
                unknown[rule.get("alert") or rule.get("record")] = sorted(missing)
    assert not unknown, f"metric names not in the catalogue (collectors/*/metrics.yaml): {unknown}"


@pytest.mark.parametrize(("expr", "names"), [
    ("up == 0", {"up"}),
    ('sum without (datname, state) (dbpulse_pg_connections{state="idle"}) / dbpulse_pg_max_connections',
     {"dbpulse_pg_connections", "dbpulse_pg_max_connections"}),
    ("rate(a_total[5m]) / on (target) group_left (x) b offset 1h", {"a_total", "b"}),
    ('histogram_quantile(0.9, sum by (le) (rate(x_bucket{job=~"a|b"}[$__rate_interval])))', {"x_bucket"}),
    ("dbpulse:pg_connections:usage_ratio > 1e3 and bool 2", {"dbpulse:pg_connections:usage_ratio"}),
    ('label_replace(m, "dst", "$1", "src", "(.*)")', {"m"}),
    ("topk(10, sum by (queryid) (rate(q_total[5m:1m])))", {"q_total"}),
])
def test_metric_names_tokenizer(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_alerting_doc_lists_every_rule() -> None:
    doc = (RUNBOOK.parent / "alerting.md").read_text()
    for rule in alerting_rules():
        assert f"[{rule['alert']}](runbook.md#{rule['alert'].lower()})" in doc, rule["alert"]
    for name in recording_rule_names():
        assert f"`{name}`" in doc, name
