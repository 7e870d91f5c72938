"""The metric catalogue: names, types, labels and HELP text of every metric dbpulse exports.

One ``metrics.yaml`` per folder of ``collectors``: each source's beside its code
(``collectors/<source>/metrics.yaml``), the service's own here
(``collectors/base/metrics.yaml``: dbpulse itself, its process, the advisor).
``catalogue()`` merges them; a name in two files is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

import yaml


@dataclass(frozen=True)
class MetricSpec:
    name: str
    type: str
    unit: str
    labels: tuple[str, ...]
    help: str
    requires: str = ""  # the source server's version the metric needs ("1.21"): not exported before it


FILE = "metrics.yaml"


def files() -> list[Traversable]:
    """Every folder's catalogue file, the shared one first, then the sources' by name."""
    folders = sorted((f for f in resources.files("collectors").iterdir() if f.is_dir()),
                     key=lambda f: (f.name != "base", f.name))
    return [f.joinpath(FILE) for f in folders if f.joinpath(FILE).is_file()]


@cache
def catalogue() -> dict[str, MetricSpec]:
    out: dict[str, MetricSpec] = {}
    where: dict[str, str] = {}
    for path in files():
        raw = yaml.safe_load(path.read_text()) or {}
        for name, spec in raw.items():
            if name in out:
                raise ValueError(f"metric {name} is in two catalogue files: {where[name]} and {path}")
            out[name] = MetricSpec(name, spec["type"], spec.get("unit", ""), tuple(spec["labels"]), spec["help"],
                                   str(spec.get("requires", "")))
            where[name] = str(path)
    return out


def spec(name: str) -> MetricSpec:
    try:
        return catalogue()[name]
    except KeyError:
        raise KeyError(f"metric {name} is not in the catalogue (collectors/*/metrics.yaml)") from None
