"""The checker that holds the alert rules to the threshold tables (``collectors/<source>/thresholds.py``).

For each threshold, the alert's rule of its severity must write the comparison
as the table says (``Threshold.written``) exactly once, with the table's number
(arithmetic such as ``64 * 1024 * 1024`` evaluated). A problem names the rule,
the number the rule compares with and the table's entry.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import pkgutil
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

import collectors
from collectors.base.thresholds import PLACEHOLDER, Threshold

# A number as the rules write it: 0.95, 300, 64 * 1024 * 1024; never the tail of a longer token.
_NUMBER = r"(?<![\w.])([0-9]+(?:\.[0-9]+)?(?:\s*\*\s*[0-9]+(?:\.[0-9]+)?)*)(?![\w.])"


def tables() -> list[tuple[str, Threshold]]:
    """Every source's thresholds, as (module, threshold): each ``collectors/<source>/thresholds.py`` found."""
    out = []
    for package in pkgutil.iter_modules(collectors.__path__):
        name = f"collectors.{package.name}.thresholds"
        if package.ispkg and package.name != "base" and importlib.util.find_spec(name) is not None:
            module = importlib.import_module(name)
            out += [(module.__name__, t) for t in module.ALL]
    return out


def alert_exprs(groups: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[str]]:
    """(alert, severity) -> its expressions, whitespace folded to single spaces."""
    out: dict[tuple[str, str], list[str]] = {}
    for group in groups:
        for rule in group["rules"]:
            if "alert" in rule:
                key = (rule["alert"], rule.get("labels", {}).get("severity", ""))
                out.setdefault(key, []).append(" ".join(rule["expr"].split()))
    return out


def drift(module: str, threshold: Threshold, exprs: dict[tuple[str, str], list[str]]) -> list[str]:
    """What differs between ``threshold`` and the rules: [] when every alert it names compares with it."""
    entry = f"{module} {threshold.name} = {threshold.value:.15g} {threshold.unit}"
    written = " ".join(threshold.written.split())
    problems = []
    for alert in threshold.alerts:
        rule = f"alert {alert} ({threshold.severity})"
        found = exprs.get((alert, threshold.severity))
        if not found:
            problems.append(f"{rule}: no such rule in the rules files ({entry})")
            continue
        if PLACEHOLDER not in written:
            if not any(written in e for e in found):
                problems.append(f"{rule}: its expression no longer says {written!r} ({entry})")
            continue
        before, after = written.split(PLACEHOLDER, 1)
        pattern = re.compile(re.escape(before) + _NUMBER + re.escape(after))
        numbers = [m.group(1) for e in found for m in pattern.finditer(e)]
        if len(numbers) != 1:
            problems.append(f"{rule}: {threshold.written!r} is written {len(numbers)} times in its expression, "
                            f"not once ({entry})")
        elif (value := math.prod(float(f) for f in numbers[0].split("*"))) != threshold.value:
            problems.append(f"{rule}: the rule compares with {value:.15g} (written {numbers[0]}), "
                            f"the table with {threshold.value:.15g} ({entry})")
    return problems


def load_groups(paths: Iterable[Path]) -> list[dict[str, Any]]:
    return [g for path in paths for g in yaml.safe_load(path.read_text())["groups"]]


def check(paths: Iterable[Path]) -> list[str]:
    """Every problem between the rules files at ``paths`` and the threshold tables."""
    exprs = alert_exprs(load_groups(paths))
    return [p for module, threshold in tables() for p in drift(module, threshold, exprs)]
