"""The metric catalogue (``metrics.yaml``): names, types, labels and HELP text."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml


@dataclass(frozen=True)
class MetricSpec:
    name: str
    type: str
    unit: str
    labels: tuple[str, ...]
    help: str


@cache
def catalogue() -> dict[str, MetricSpec]:
    text = resources.files("collectors").joinpath("metrics.yaml").read_text()
    raw = yaml.safe_load(text)
    return {
        name: MetricSpec(name, spec["type"], spec.get("unit", ""), tuple(spec["labels"]), spec["help"])
        for name, spec in raw.items()
    }


def spec(name: str) -> MetricSpec:
    try:
        return catalogue()[name]
    except KeyError:
        raise KeyError(f"metric {name} is not in collectors/metrics.yaml") from None
