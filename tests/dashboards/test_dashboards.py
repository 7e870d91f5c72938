"""The Grafana dashboards: generated JSON is current, every query parses as PromQL (checked by
promtool) and uses only catalogued metric names, datasources come from a variable, units are set."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from collectors.registry import sources
from tests.rules.promql_check import (
    PROMETHEUS_SERIES,
    ROOT,
    catalogue_names,
    check_promql,
    metric_names,
    recording_rule_names,
)

DASHBOARDS = ROOT / "dashboards"
JSON_FILES = sorted((DASHBOARDS / "json").glob("*.json"))
PROVISIONING = DASHBOARDS / "provisioning"

# Grafana's template variables, replaced by plausible values before PromQL is checked.
SUBSTITUTIONS = {
    "$__rate_interval": "1m", "$__interval": "30s", "$__range": "3h",
    "$datasource": "prom", "$job": "dbpulse", "$instance": "sidecar:19630", "$target": "main",
}


def substitute(expr: str) -> str:
    for name, value in sorted(SUBSTITUTIONS.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value).replace("${" + name[1:] + "}", value)
    assert "$" not in expr.replace("$1", ""), f"unknown variable in {expr}"
    return expr


def load(path: Path) -> dict[str, Any]:
    model: dict[str, Any] = json.loads(path.read_text())
    return model


def panels(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in model["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(model: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel query and every label_values() variable selector."""
    for panel in panels(model):
        for t in panel.get("targets", []):
            yield f"{model['uid']}/{panel['title']}/{t['refId']}", t["expr"]
    for var in model["templating"]["list"]:
        if var["type"] == "query":
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", var["query"]["query"])
            assert m, var
            yield f"{model['uid']}/${var['name']}", m.group(1)


def test_the_generated_dashboards() -> None:
    assert {"dbpulse-overview", "dbpulse-postgres", "dbpulse-postgres-health", "dbpulse-redis",
            "dbpulse-app"} <= {p.stem for p in JSON_FILES}


def test_every_source_has_a_dashboard() -> None:
    """Each registered source's catalogue (collectors/<source>/metrics.yaml) is read by some dashboard."""
    used = {name for path in JSON_FILES for _, expr in queries(load(path)) for name in metric_names(expr)}
    for spec in sources():
        own = set(yaml.safe_load((ROOT / "collectors" / spec.name / "metrics.yaml").read_text()))
        assert own & used, f"no dashboard reads a metric of {spec.name}"


def test_generated_json_is_current() -> None:
    result = subprocess.run([sys.executable, str(DASHBOARDS / "generate.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_every_query_parses_as_promql() -> None:
    exprs = {where: substitute(expr) for path in JSON_FILES for where, expr in queries(load(path))}
    assert len(exprs) > 50
    assert check_promql(exprs) == {}


def test_every_query_uses_catalogued_metrics() -> None:
    known = catalogue_names() | recording_rule_names() | PROMETHEUS_SERIES
    unknown = {}
    for path in JSON_FILES:
        for where, expr in queries(load(path)):
            missing = metric_names(substitute(expr)) - known
            if missing:
                unknown[where] = sorted(missing)
    assert not unknown, f"metric names not in the catalogue (collectors/*/metrics.yaml): {unknown}"


def test_check_promql_reports_a_broken_query() -> None:
    errors = check_promql({"good": "rate(up[1m])", "bad": "rate(up[1m]"})
    assert set(errors) == {"bad"}


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: p.name)
def test_variables_and_datasources(path: Path) -> None:
    model = load(path)
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"target", "instance", "job"} <= set(variables)
    for panel in panels(model):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for t in panel["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", panel["title"]
            assert 'target=~"$target"' in t["expr"] or "ALERTS" in t["expr"] or t["expr"].startswith("up{"), \
                f"{panel['title']}: query ignores $target"
    # the only datasource uid anywhere is the variable
    uids = set(re.findall(r'"uid":\s*"([^"]*)"', path.read_text())) - {model["uid"]}
    assert uids == {"${datasource}"}


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: p.name)
def test_units_and_layout(path: Path) -> None:
    model = load(path)
    ids = set()
    for panel in panels(model):
        assert panel["id"] not in ids
        ids.add(panel["id"])
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24
        if panel["type"] != "row":
            assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']} has no unit"
            assert "$__rate_interval" in " ".join(t["expr"] for t in panel["targets"]) or \
                "rate(" not in " ".join(t["expr"] for t in panel["targets"]), panel["title"]


def test_provisioning_files() -> None:
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "dbpulse.yaml").read_text())
    assert datasources["apiVersion"] == 1
    assert [d["type"] for d in datasources["datasources"]] == ["prometheus"]
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "dbpulse.yaml").read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["folder"] == "dbpulse"
    assert provider["options"]["path"]
