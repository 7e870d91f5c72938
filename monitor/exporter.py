"""Prometheus exposition from the scheduler's latest samples (never from a source)."""

from __future__ import annotations

import platform
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.samples import Sample, SampleList, families
from monitor.scheduler import Scheduler


class SnapshotCollector(Collector):
    """Builds fresh metric families from the samples stored at the last poll of each source."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        build = SampleList()
        build.add("dbpulse_build_info", 1, version=__version__, python_version=platform.python_version())
        self._build = build.samples

    def collect(self) -> Iterator[Metric]:
        samples: list[Sample] = list(self._build)
        for state in self.scheduler.states:
            samples.extend(state.meta_samples())
            samples.extend(state.samples)
        yield from families(samples)


def make_registry(scheduler: Scheduler) -> CollectorRegistry:
    """A private registry: our snapshot collector plus the process collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(scheduler))
    ProcessCollector(registry=registry)
    return registry
