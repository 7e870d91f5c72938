"""Prometheus exposition from the scheduler's latest samples (never from a source).

The snapshot part of a scrape only changes when a poll ends, so it is encoded
once per scheduler version (in a worker thread, so a large exposition never
blocks the event loop) and served from that cache; only the small process
metrics are encoded on every scrape. When a poll ends, the formats scraped
before are encoded again at once, so a scrape right after a poll is served from
the cache too instead of waiting for the encoding.
"""

from __future__ import annotations

import asyncio
import platform
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from collectors.base.samples import Sample, SampleList, families
from monitor import __version__
from monitor.core.scheduler import Scheduler

EOF_LINE = b"# EOF\n"
Encoder = Callable[[CollectorRegistry], bytes]


class SnapshotCollector(Collector):
    """Builds fresh metric families from the samples stored at the last poll of each source."""

    def __init__(self, scheduler: Scheduler, live: Iterable[Collector] = ()) -> None:
        """``live``: collectors of the service's own counters that change between polls, encoded every scrape."""
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


WARM_DELAY = 0.1  # seconds: polls that end together are encoded once


class Exposition:
    """``/metrics`` bodies: the cached snapshot part plus the live process metrics."""

    def __init__(self, scheduler: Scheduler, live: Iterable[Collector] = ()) -> None:
        """``live``: collectors of the service's own counters that change between polls, encoded every scrape."""
        self.scheduler = scheduler
        self.snapshot = CollectorRegistry(auto_describe=False)
        self.snapshot.register(SnapshotCollector(scheduler))
        self.process = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.process)
        for collector in live:
            self.process.register(collector)
        self._cache: dict[str, tuple[int, bytes, Encoder]] = {}  # content type -> (version, body, its encoder)
        self._lock = asyncio.Lock()
        self.warming: asyncio.Task[None] | None = None  # the re-encoding after a poll, if one is due
        scheduler.on_change.append(self._poll_ended)

    async def render(self, accept: str) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept)
        body = await self._encoded(content_type, encoder)
        if content_type.startswith("application/openmetrics-text"):
            body = body.removesuffix(EOF_LINE)  # one "# EOF" at the very end, after the process metrics
        return body + encoder(self.process), content_type

    async def _encoded(self, content_type: str, encoder: Encoder) -> bytes:
        async with self._lock:
            version = self.scheduler.version
            cached = self._cache.get(content_type)
            if cached is None or cached[0] != version:
                cached = (version, await asyncio.to_thread(encoder, self.snapshot), encoder)
                self._cache[content_type] = cached
            return cached[1]

    def _poll_ended(self) -> None:
        if self._cache and (self.warming is None or self.warming.done()):
            self.warming = asyncio.get_running_loop().create_task(self._warm(), name="exposition-warm")

    async def close(self) -> None:
        if self.warming is not None:
            self.warming.cancel()
            await asyncio.gather(self.warming, return_exceptions=True)

    async def _warm(self) -> None:
        """Encode each format scraped before at the newest version, until no poll ended meanwhile."""
        while any(version != self.scheduler.version for version, _, _ in self._cache.values()):
            await asyncio.sleep(WARM_DELAY)
            for content_type, (_, _, encoder) in list(self._cache.items()):
                await self._encoded(content_type, encoder)
