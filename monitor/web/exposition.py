"""Prometheus exposition from the scheduler's latest samples (never from a source).

A scrape is served from bytes built beforehand: nothing is encoded, compressed or read on the request path.

- The snapshot part only changes when a poll ends, so it is encoded once per scheduler version (in a worker
  thread, so a large exposition never blocks the event loop), and gzipped there too when a scraper asked for
  gzip (Prometheus does). When a poll ends, the formats scraped before are encoded again at once. OpenMetrics
  1.0.0, which Prometheus asks for, is written directly from the samples (``openmetrics``: the same bytes as
  prometheus_client's encoder, about 6x less CPU); other formats by prometheus_client.
- The process metrics (CPU, memory, open files: ``/proc`` reads, a fraction of a millisecond) are read in the
  background while someone scrapes, and appended to each body then: every ``PROCESS_REFRESH`` seconds when
  scrapes come that often, else once per gap between scrapes, ``PROCESS_REFRESH`` before the next one is due (a
  Prometheus scraping every 15 s gets metrics read a second before, without 14 reads nobody is served). The gzipped
  body reuses the snapshot part's compressor state (``zlib`` ``copy``), so only the small process part is
  compressed again: the gzipped body decodes to exactly the plain one.

A scrape that lands before its format's first encoding, or while a poll's re-encoding runs, waits for it.
"""

from __future__ import annotations

import asyncio
import platform
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.registry import Collector

from collectors.base.samples import Sample, SampleList, families
from monitor import __version__
from monitor.core.scheduler import Scheduler
from monitor.web import openmetrics

EOF_LINE = b"# EOF\n"
Encoder = Callable[[CollectorRegistry], bytes]

WARM_DELAY = 0.1  # seconds: polls that end together are encoded once
PROCESS_REFRESH = 1.0  # seconds: how old the process metrics of a body can be
STALE_AFTER = 3 * PROCESS_REFRESH  # process metrics older than this are read before a scrape is served
IDLE_AFTER = 300.0  # seconds without a scrape after which the process metrics are no longer read
GZIP_LEVEL = 6  # gzip's default; the snapshot part is compressed once per poll, in a worker thread
NEGOTIATED_KEEP = 64  # distinct (Accept, Accept-Encoding) pairs remembered (a scraper sends the same every time)


class SnapshotCollector(Collector):
    """Builds fresh metric families from the samples stored at the last poll of each source."""

    def __init__(self, scheduler: Scheduler, live: Iterable[Collector] = ()) -> None:
        """``live``: collectors of the service's own counters that change between polls, encoded every scrape."""
        self.scheduler = scheduler
        build = SampleList()
        build.add("dbpulse_build_info", 1, version=__version__, python_version=platform.python_version())
        self._build = build.samples

    def samples(self) -> list[Sample]:
        samples: list[Sample] = list(self._build)
        for state in self.scheduler.states:
            samples.extend(state.meta_samples())
            samples.extend(state.samples)
        return samples

    def collect(self) -> Iterator[Metric]:
        yield from families(self.samples())


@dataclass(frozen=True)
class Body:
    """One ``/metrics`` response, ready to send."""

    data: bytes
    headers: dict[str, str]  # Content-Type, and Content-Encoding when gzipped


@dataclass(frozen=True)
class Encoded:
    """The snapshot part of one format at one scheduler version: plain, and gzip's output so far with the
    compressor that holds the rest (None until a scraper asks for gzip)."""

    version: int
    plain: bytes  # without OpenMetrics' "# EOF", which ends the body after the process metrics
    encoder: Encoder
    gzip_head: bytes = b""
    compressor: zlib._Compress | None = None

    def gzipped(self, tail: bytes) -> bytes:
        """The gzip of ``plain + tail``, compressing only ``tail`` (on a copy of the compressor's state)."""
        assert self.compressor is not None
        rest = self.compressor.copy()
        return self.gzip_head + rest.compress(tail) + rest.flush()


def _encode(encoder: Encoder, content_type: str, snapshot: SnapshotCollector, registry: CollectorRegistry,
            version: int, gzip: bool) -> Encoded:
    # OpenMetrics 1.0.0 (what Prometheus asks for) written directly from the samples; other formats by
    # prometheus_client
    fast = content_type in openmetrics.CONTENT_TYPES
    plain = (openmetrics.encode(snapshot.samples()) if fast else encoder(registry)).removesuffix(EOF_LINE)
    if not gzip:
        return Encoded(version, plain, encoder)
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip's header and trailer
    return Encoded(version, plain, encoder, compressor.compress(plain), compressor)


class Exposition:
    """``/metrics`` bodies: the snapshot part encoded per poll, the process metrics per ``PROCESS_REFRESH``."""

    def __init__(self, scheduler: Scheduler, live: Iterable[Collector] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``live``: collectors of the service's own counters that change between polls; they are read with
        the process metrics (every ``PROCESS_REFRESH`` while scraped), not with the snapshot."""
        self.scheduler = scheduler
        self.clock = clock
        self.snapshot = CollectorRegistry(auto_describe=False)
        self.collector = SnapshotCollector(scheduler)
        self.snapshot.register(self.collector)
        self.process = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.process)
        for collector in live:
            self.process.register(collector)
        self._encoded: dict[str, Encoded] = {}  # content type -> its snapshot part
        self._gzip: set[str] = set()  # content types a scraper asked gzipped
        self._process: dict[str, bytes] = {}  # content type -> the process metrics, as last read
        self._process_read_at = -PROCESS_REFRESH
        self._bodies: dict[tuple[str, bool], tuple[int, Body]] = {}  # (content type, gzip) -> (version, body)
        self._negotiated: dict[tuple[str, str], tuple[Encoder, str, bool]] = {}
        self._lock = asyncio.Lock()
        self._last_scrape = 0.0
        self._scrape_gap = 0.0  # seconds between the last two scrapes (0 until the second)
        self._read_planned_at = 0.0  # when the background refresh means to read the process metrics next
        self._replan = asyncio.Event()  # set when a scrape makes an earlier read due than planned
        self.warming: asyncio.Task[None] | None = None  # the re-encoding after a poll, if one is due
        self.refreshing: asyncio.Task[None] | None = None  # the process metrics' refresh, while scraped
        scheduler.on_change.append(self._poll_ended)

    async def render(self, accept: str) -> tuple[bytes, str]:
        """The plain body for an ``Accept`` header, and its content type."""
        body = await self.serve(accept, "")
        return body.data, body.headers["Content-Type"]

    async def serve(self, accept: str, accept_encoding: str) -> Body:
        """The body for a scrape's ``Accept`` and ``Accept-Encoding``: built beforehand, unless this format is
        scraped for the first time or a poll's re-encoding is still running."""
        encoder, content_type, gzip = self._negotiate(accept, accept_encoding)
        now = self.clock()
        if self.refreshing is not None:  # scraped before
            self._scrape_gap = now - self._last_scrape
        self._last_scrape = now
        if now + self._next_read_in() < self._read_planned_at - PROCESS_REFRESH:
            self._replan.set()  # e.g. scrapes every 15 s after a minute's gap: read before the next, not in a minute
        if self.refreshing is None or self.refreshing.done():
            self.refreshing = asyncio.get_running_loop().create_task(self._refresh(), name="exposition-process")
        cached = self._bodies.get((content_type, gzip))
        if cached is not None and cached[0] == self.scheduler.version:
            if self.clock() - self._process_read_at < STALE_AFTER:
                return cached[1]
            # no background read lately (idle for a while, or a scrape well before its cadence's next): the
            # bodies a poll rebuilt meanwhile carry old process metrics
            self._read_process()
            self._rebuild()
            return self._bodies[(content_type, gzip)][1]
        if gzip:
            self._gzip.add(content_type)
        encoded = await self._snapshot_part(content_type, encoder)
        if content_type not in self._process or self.clock() - self._process_read_at >= PROCESS_REFRESH:
            self._read_process()
        return self._build(content_type, gzip, encoded)

    def _negotiate(self, accept: str, accept_encoding: str) -> tuple[Encoder, str, bool]:
        key = (accept, accept_encoding)
        found = self._negotiated.get(key)
        if found is None:
            if len(self._negotiated) >= NEGOTIATED_KEEP:
                self._negotiated.clear()
            encoder, content_type = choose_encoder(accept)
            found = self._negotiated[key] = (encoder, content_type, gzip_accepted(accept_encoding))
        return found

    async def _snapshot_part(self, content_type: str, encoder: Encoder) -> Encoded:
        async with self._lock:
            version = self.scheduler.version
            encoded = self._encoded.get(content_type)
            gzip = content_type in self._gzip
            if encoded is None or encoded.version != version or (gzip and encoded.compressor is None):
                encoded = await asyncio.to_thread(_encode, encoder, content_type, self.collector, self.snapshot,
                                                  version, gzip)
                self._encoded[content_type] = encoded
            return encoded

    def _read_process(self) -> None:
        """Read the process metrics once for every format scraped (the formats that have a snapshot part)."""
        self._process = {content_type: e.encoder(self.process) for content_type, e in self._encoded.items()}
        self._process_read_at = self.clock()

    def _build(self, content_type: str, gzip: bool, encoded: Encoded) -> Body:
        tail = self._process[content_type]
        headers = {"Content-Type": content_type, "Vary": "Accept, Accept-Encoding"}
        if gzip:
            data = encoded.gzipped(tail)
            headers["Content-Encoding"] = "gzip"
        else:
            data = encoded.plain + tail
        body = Body(data, headers)
        self._bodies[(content_type, gzip)] = (encoded.version, body)
        return body

    def _rebuild(self) -> None:
        """Every body scraped before, from the newest process metrics and each format's current snapshot part."""
        for content_type, gzip in list(self._bodies):
            encoded = self._encoded.get(content_type)
            if encoded is not None and content_type in self._process and (not gzip or encoded.compressor):
                self._build(content_type, gzip, encoded)

    async def _refresh(self) -> None:
        """While scrapes come: read the process metrics when ``_next_read_in`` says and rebuild the bodies."""
        while self.clock() - self._last_scrape < IDLE_AFTER:
            delay = self._next_read_in()
            self._read_planned_at = self.clock() + delay
            self._replan.clear()
            try:
                await asyncio.wait_for(self._replan.wait(), delay)
            except TimeoutError:
                self._read_process()
                self._rebuild()

    def _next_read_in(self) -> float:
        """Seconds until the next background read of the process metrics: PROCESS_REFRESH while scrapes come at
        most two of those apart; else PROCESS_REFRESH before the next scrape is due (the last one plus the gap
        before it), or before the one after if they were read for the next already. A scrape that comes early
        after all is served metrics at most STALE_AFTER old, as always (``serve`` reads them if older)."""
        gap = self._scrape_gap
        if gap <= 2 * PROCESS_REFRESH:
            return PROCESS_REFRESH
        due = self._last_scrape + gap - PROCESS_REFRESH
        if self._process_read_at >= due:
            due += gap
        return max(PROCESS_REFRESH, due - self.clock())

    def _poll_ended(self) -> None:
        if self._encoded and (self.warming is None or self.warming.done()):
            self.warming = asyncio.get_running_loop().create_task(self._warm(), name="exposition-warm")

    async def close(self) -> None:
        for task in (self.warming, self.refreshing):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _warm(self) -> None:
        """Encode each format scraped before at the newest version, until no poll ended meanwhile; then rebuild the
        bodies, so the next scrape is served as it is."""
        while any(e.version != self.scheduler.version for e in self._encoded.values()):
            await asyncio.sleep(WARM_DELAY)
            for content_type, encoded in list(self._encoded.items()):
                await self._snapshot_part(content_type, encoded.encoder)
        self._rebuild()
