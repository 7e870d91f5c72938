"""Samples taken at poll time and grouped into metric families at scrape time.

A collector turns its snapshot into a list of ``Sample`` once per poll; the
exporter only groups the stored samples of every source into families, so a
scrape costs the same whatever the database does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from collectors.base.catalogue import spec

OTHER = "__other__"


class Sample(NamedTuple):
    name: str
    labels: tuple[str, ...]  # values, in the catalogue's label order
    value: float


class SampleList:
    """Collects samples for one snapshot, checking names and labels against the catalogue."""

    def __init__(self, **common: str) -> None:
        self.common = common
        self.samples: list[Sample] = []

    def add(self, name: str, value: float | None, **labels: str) -> None:
        """Add one sample; ``None`` values are skipped (the series is absent)."""
        if value is None:
            return
        metric = spec(name)
        merged = {**self.common, **labels}
        unknown = set(labels) - set(metric.labels)
        missing = [k for k in metric.labels if k not in merged]
        if unknown or missing:
            raise ValueError(f"{name}: labels {sorted(merged)} do not match catalogue {list(metric.labels)}")
        self.samples.append(Sample(name, tuple(str(merged[k]) for k in metric.labels), float(value)))


def families(samples: Iterable[Sample]) -> Iterator[Metric]:
    """Group samples of all sources into one family per metric name."""
    grouped: dict[str, list[Sample]] = {}
    for sample in samples:
        grouped.setdefault(sample.name, []).append(sample)
    for name, items in grouped.items():
        metric = spec(name)
        family: Metric
        if metric.type == "counter":
            family = CounterMetricFamily(name, metric.help, labels=metric.labels, unit="")
        else:
            family = GaugeMetricFamily(name, metric.help, labels=metric.labels, unit="")
        for item in items:
            family.add_metric(list(item.labels), item.value)
        yield family
