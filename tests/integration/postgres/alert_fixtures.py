"""promtool fixtures built from what a real poll exported: which alerts fire on those values.

The series are the samples of real snapshots (names and labels as exported, plus
``job="dbpulse"``), held over a timeline of phases (the values of one poll for a
number of minutes, then the next poll's). The rules are the shipped ones with
their annotations dropped (the expressions, ``for`` and labels untouched), so a
fixture states which alerts fire with which labels, not how their text reads
(rules/tests/ checks that).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from collectors.base.catalogue import spec
from collectors.base.samples import Sample
from tests.rules.promql_check import RULE_FILES, promtool

Phase = tuple[list[Sample], int]  # the samples of one poll, and for how many minutes they stand


def stretched(polls: list[tuple[list[Sample], float]], factor: float) -> list[Phase]:
    """Polls taken at the given wall times, as they would read ``factor`` times slower: each poll stands
    from its own minute until the next poll's (of polls that fall in one minute, the last), timestamps
    move onto the fixture's clock (the first poll at 0) and durations stretch (``*_timestamp_seconds``
    and ``*_seconds`` gauges). A server whose settings are ``factor`` times shorter (autovacuum_naptime
    1 s for 60 s) then plays a real one."""
    start = polls[0][1]
    by_minute = {round((at - start) * factor / 60): samples for samples, at in polls}
    minutes = sorted(by_minute)
    phases = []
    for i, minute in enumerate(minutes):
        scaled = []
        for s in by_minute[minute]:
            if s.name.endswith("_timestamp_seconds") and s.value is not None:
                s = Sample(s.name, s.labels, (s.value - start) * factor)
            elif s.name.endswith("_seconds") and spec(s.name).type == "gauge" and s.value is not None:
                s = Sample(s.name, s.labels, s.value * factor)
            scaled.append(s)
        following = minutes[i + 1] if i + 1 < len(minutes) else minute + 2
        phases.append((scaled, following - minute))
    return phases


def series_name(sample: Sample) -> str:
    labels = dict(zip(spec(sample.name).labels, sample.labels, strict=True)) | {"job": "dbpulse"}
    body = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{sample.name}{{{body}}}"


def input_series(phases: list[Phase], names: set[str]) -> list[dict[str, str]]:
    """One series per exported sample of the chosen metrics; stale where a phase lacks it (the series is gone)."""
    keys: dict[str, None] = {}
    for samples, _ in phases:
        for s in samples:
            if s.name in names:
                keys.setdefault(series_name(s))
    out = []
    for key in keys:
        parts = []
        for samples, minutes in phases:
            value = next((s.value for s in samples if s.name in names and series_name(s) == key), None)
            gone = " ".join(["stale"] + ["_"] * (minutes - 1))
            parts.append(f"{value!r}x{minutes - 1}" if value is not None else gone)
        out.append({"series": key, "values": " ".join(parts)})
    return out


def bare_rules(tmp: Path) -> list[str]:
    """The shipped rule files without annotations."""
    paths = []
    for path in RULE_FILES:
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                rule.pop("annotations", None)
        out = tmp / path.name
        out.write_text(yaml.safe_dump(doc, sort_keys=False))
        paths.append(str(out))
    return paths


def expect(alert: str, severity: str = "warning", **labels: str) -> dict[str, Any]:
    return {"alertname": alert, "labels": {"severity": severity, "source": "postgres", "job": "dbpulse", **labels}}


def run_fixture(tmp: Path, name: str, phases: list[Phase], names: set[str], eval_minutes: int,
                firing: list[dict[str, Any]], silent: list[str],
                pending: list[dict[str, Any]] | None = None) -> None:
    """Fail unless exactly ``firing`` fire (per alert name listed) and nothing of ``silent`` does, and
    each of ``pending`` is pending at ``eval_minutes`` and was at each of the three minutes before."""
    checks = []
    by_alert: dict[str, list[dict[str, str]]] = {a: [] for a in silent}
    for f in firing:
        by_alert.setdefault(f["alertname"], []).append(f["labels"])
    for alert, labels in by_alert.items():
        checks.append({"eval_time": f"{eval_minutes}m", "alertname": alert,
                       "exp_alerts": [{"exp_labels": lab} for lab in labels]})
    exprs = []
    for p in pending or []:
        selector = ", ".join(f'{k}="{v}"' for k, v in {"alertname": p["alertname"], "alertstate": "pending",
                                                         **p["labels"]}.items())
        exprs.append({"expr": f"count_over_time(ALERTS{{{selector}}}[3m])", "eval_time": f"{eval_minutes}m",
                      "exp_samples": [{"labels": "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(
                          {"alertname": p["alertname"], "alertstate": "pending", **p["labels"]}.items())) + "}",
                                       "value": 4}]})
    case: dict[str, Any] = {"name": name, "interval": "1m", "input_series": input_series(phases, names),
                            "alert_rule_test": checks}
    if exprs:
        case["promql_expr_test"] = exprs
    doc = {"rule_files": bare_rules(tmp), "evaluation_interval": "1m", "tests": [case]}
    path = tmp / f"{name.replace(' ', '_')}.test.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = subprocess.run([promtool(), "test", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{path}\n{result.stdout}{result.stderr}"
