"""The registered sources: every folder of ``collectors`` with a ``spec.py`` exporting ``SPEC``.

Found by walking the package (``pkgutil``), so adding a source is adding its
folder: nothing here or in the service names one. ``collectors/base`` is the
shared floor, not a source. The specs are loaded on first use, in page order.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import Any

import collectors
from collectors.base.spec import SourceSpec
from collectors.base.thresholds import Threshold

SHARED = frozenset({"base"})  # folders of collectors that are not sources


@cache
def sources() -> tuple[SourceSpec[Any, Any], ...]:
    """Every source's spec, in display order."""
    found: list[SourceSpec[Any, Any]] = []
    for info in pkgutil.iter_modules(collectors.__path__):
        if not info.ispkg or info.name in SHARED:
            continue
        spec = getattr(importlib.import_module(f"collectors.{info.name}.spec"), "SPEC", None)
        if not isinstance(spec, SourceSpec) or spec.name != info.name:
            raise TypeError(f"collectors/{info.name}/spec.py must export SPEC, a SourceSpec named {info.name!r}")
        found.append(spec)
    return tuple(sorted(found, key=lambda s: (s.order, s.name)))


def source(name: str) -> SourceSpec[Any, Any] | None:
    """The spec of the source called ``name`` (a poller's ``source``), None for the service's own (the advisor)."""
    return next((s for s in sources() if s.name == name), None)


@cache
def thresholds() -> dict[str, Threshold]:
    """Every source's alert thresholds (``collectors/<source>/thresholds.py``, ``ALL``) by alert name: an
    alert with a warning and a critical level maps to its warning one (the level a chart draws)."""
    out: dict[str, Threshold] = {}
    for spec in sources():
        try:
            table = importlib.import_module(f"collectors.{spec.name}.thresholds")
        except ModuleNotFoundError as exc:
            if exc.name != f"collectors.{spec.name}.thresholds":
                raise
            continue
        for threshold in getattr(table, "ALL", ()):
            for alert in threshold.alerts:
                if alert not in out or threshold.severity == "warning":
                    out[alert] = threshold
    return out
