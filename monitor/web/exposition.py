"""Prometheus exposition from the scheduler's latest samples (never from a source).

The snapshot part of a scrape only changes when a poll ends, so it is encoded
once per scheduler version (in a worker thread, so a large exposition never
blocks the event loop) and served from that cache; only the small process
metrics are encoded on every scrape.
"""

from __future__ import annotations

import asyncio
import platform
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from collectors.base.samples import Sample, SampleList, families
from monitor import __version__
from monitor.core.scheduler import Scheduler

EOF_LINE = b"# EOF\n"


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


class Exposition:
    """``/metrics`` bodies: the cached snapshot part plus the live process metrics."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.snapshot = CollectorRegistry(auto_describe=False)
        self.snapshot.register(SnapshotCollector(scheduler))
        self.process = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.process)
        self._cache: dict[str, tuple[int, bytes]] = {}  # content type -> (version, body)
        self._lock = asyncio.Lock()

    async def render(self, accept: str) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept)
        async with self._lock:
            version = self.scheduler.version
            cached = self._cache.get(content_type)
            if cached is None or cached[0] != version:
                cached = (version, await asyncio.to_thread(encoder, self.snapshot))
                self._cache[content_type] = cached
        body = cached[1]
        if content_type.startswith("application/openmetrics-text"):
            body = body.removesuffix(EOF_LINE)  # one "# EOF" at the very end, after the process metrics
        return body + encoder(self.process), content_type
