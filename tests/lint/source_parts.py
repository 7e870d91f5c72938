"""Each source's rules and dashboards, checked from its spec: it has both, and they read only its own metrics.

A source's alert rules are the groups of ``rules/*.rules.yml`` its spec names
(``SourceSpec.alert_groups``: ``rule_groups``, else ``dbpulse.<name>``; ``()``
declares a source without alerts), its dashboards those
``dashboards/generate.py`` builds for it (``boards()``). Each may read only the
metrics of its own catalogue entries (``collectors/<source>/metrics.yaml``),
the shared ones (``collectors/base/metrics.yaml``) and the series Prometheus
makes; a recording rule counts as the metrics its expression reads. Every rule
group belongs to one source or to the service (``SHARED_GROUPS``).

``problems(root, specs)`` reads the tree at ``root``, so the new-source test runs
it on its copy (``tests/lint/test_new_source.py``).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from collectors.base.spec import SourceSpec
from tests.rules.promql_check import PROMETHEUS_SERIES, metric_names

SHARED_GROUPS = frozenset({"dbpulse.self", "dbpulse.advisor", "dbpulse.recording"})  # the service's own
NO_ALERTS = "a source without alerts says so in its spec: rule_groups=()"


def catalogue_of(root: Path, folder: str) -> set[str]:
    path = root / "collectors" / folder / "metrics.yaml"
    return set(yaml.safe_load(path.read_text()) or {}) if path.is_file() else set()


def rule_groups(root: Path) -> dict[str, dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for path in sorted((root / "rules").glob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            groups[group["name"]] = group
    return groups


def generator(root: Path) -> Any:
    """``dashboards/generate.py`` of the tree at ``root`` (not a package: loaded from its file)."""
    spec = importlib.util.spec_from_file_location(f"dashboards_generate_{abs(hash(root))}",
                                                  root / "dashboards" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def panel_exprs(model: dict[str, Any]) -> Iterator[str]:
    for panel in model["panels"]:
        for inner in (panel, *panel.get("panels", [])):
            yield from (t["expr"] for t in inner.get("targets", []))


def dashboard_exprs(model: dict[str, Any]) -> Iterator[str]:
    """Every panel query and every ``label_values()`` variable selector of a dashboard."""
    yield from panel_exprs(model)
    for var in model["templating"]["list"]:
        if var["type"] == "query":
            yield var["query"]["query"].removeprefix("label_values(").rsplit(",", 1)[0]


def _read(expr: str, records: dict[str, str], seen: frozenset[str] = frozenset()) -> set[str]:
    """The metrics ``expr`` reads, a recording rule replaced by the metrics of its own expression."""
    out: set[str] = set()
    for name in metric_names(expr.replace("$__rate_interval", "1m")):
        if name in records and name not in seen:
            out |= _read(records[name], records, seen | {name})
        else:
            out.add(name)
    return out


def problems(root: Path, specs: Sequence[SourceSpec[Any, Any]],
             boards: dict[str, list[Any]] | None = None) -> list[str]:
    """What is wrong, one line each (empty: every source has its rules and dashboards, on its own metrics)."""
    groups = rule_groups(root)
    records = {r["record"]: r["expr"] for g in groups.values() for r in g["rules"] if "record" in r}
    shared = catalogue_of(root, "base") | PROMETHEUS_SERIES
    boards = generator(root).boards() if boards is None else boards
    out: list[str] = []
    owner: dict[str, str] = {}
    for spec in specs:
        allowed = catalogue_of(root, spec.name) | shared
        for name in spec.alert_groups:
            if name in owner or name in SHARED_GROUPS:
                out.append(f"{spec.name}: rules group {name} is also {owner.get(name, 'the service')}'s")
            owner[name] = spec.name
            group = groups.get(name)
            if group is None:
                out.append(f"{spec.name}: no rules group {name} in rules/*.rules.yml ({NO_ALERTS})")
                continue
            for rule in group["rules"]:
                foreign = _read(rule["expr"], records) - allowed
                if foreign:
                    out.append(f"{spec.name}: rule {rule.get('alert') or rule.get('record')} reads "
                               f"{', '.join(sorted(foreign))}, not of its catalogue")
        models = [build() for build in boards.get(spec.name, [])]
        if not any(any(panel_exprs(m)) for m in models):
            out.append(f"{spec.name}: no dashboard (a builder in dashboards/generate.py, or charts in its spec)")
        for model in models:
            for expr in dashboard_exprs(model):
                foreign = _read(expr, records) - allowed
                if foreign:
                    out.append(f"{spec.name}: dashboard {model['uid']} reads {', '.join(sorted(foreign))}, "
                               f"not of its catalogue: {json.dumps(expr)}")
    out += [f"rules group {name} belongs to no source (SourceSpec.rule_groups) and is not shared"
            for name in sorted(set(groups) - set(owner) - SHARED_GROUPS)]
    return out
