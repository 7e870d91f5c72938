"""Charts beyond the hour kept in memory, read from Prometheus (``prometheus.url``).

Prometheus already holds dbpulse's own series for weeks: a page asked for ``?range=6h`` (``RANGES``) reads
them with ``/api/v1/query_range``, with the metric names, labels and PromQL of the shipped dashboards
(``history_query.py``: ``rate(...[$__rate_interval])``, the mean as the recording rule's ratio), and
draws them as the same ``charts.Chart`` values the ring gives. The default range (1 h) is the ring, as
without Prometheus.

A chart never waits longer than ``prometheus.timeout``: Prometheus down, slow or answering an error, the
page draws the ring and says why (``Shown.note``); every such failure is counted
(``dbpulse_history_read_failures_total``).
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter, OrderedDict
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from collectors.base.catalogue import catalogue
from collectors.registry import source
from monitor.core.history import Series
from monitor.core.scheduler import SourceState
from monitor.prometheus_settings import PrometheusSettings
from monitor.web.charts import Chart
from monitor.web.history_query import (
    DEFAULT_RANGE,
    RANGE_LABELS,
    AnsweredError,
    ChartQuery,
    HistoryError,
    Queries,
    RangeSeries,
    Window,
    lines_of,
    main_query,
    on_grid,
    parse_matrix,
    range_of,
    window_for,
)
from monitor.web.trends import Frame, RangeFrame, read_by

FrameSeries = dict[str, dict[tuple[str, bool], list[Series]]]  # by frame_key, by (metric, per second?)


def frame_key(state: SourceState) -> str:
    return f"{state.poller.source}:{state.poller.target}"


def range_frames(states: Sequence[SourceState], found: FrameSeries, window: Window) -> dict[str, Frame]:
    """The main page's frames over ``window`` from the series read (ceilings stay the states' current ones)."""
    span = (float(window.start), float(window.end))
    return {frame_key(state): RangeFrame(state, found.get(frame_key(state), {}), span, window.step)
            for state in states if source(state.poller.source) is not None}


class AnswerCache:
    """Prometheus's answers by (what was asked, window), so that a page refreshed every few seconds asks again
    only once its window's ``end`` has moved by a step (``window_for``). An older end of the same question and
    range is never asked again and is dropped; at most ``size`` answers are kept, the least recently used go."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._answers: OrderedDict[tuple[Hashable, Window], Any] = OrderedDict()

    def get(self, asked: Hashable, window: Window) -> Any:
        answer = self._answers.get((asked, window))
        if answer is not None:
            self._answers.move_to_end((asked, window))
        return answer

    def put(self, asked: Hashable, window: Window, answer: Any) -> None:
        for key in [k for k in self._answers if k[0] == asked and k[1].range == window.range and k[1] != window]:
            del self._answers[key]  # an older end (ends only move forward)
        self._answers[(asked, window)] = answer
        while len(self._answers) > self.size:
            self._answers.popitem(last=False)

    def __len__(self) -> int:
        return len(self._answers)


# --- the client ----------------------------------------------------------------------------------------------
class PrometheusClient:
    """``query_range`` on the configured endpoint, with its auth and TLS, within ``prometheus.timeout``."""

    def __init__(self, settings: PrometheusSettings) -> None:
        assert settings.url is not None
        self.settings = settings
        self.url = settings.url
        self.shown = settings.shown_url
        password = settings.password()
        auth = settings.basic_auth
        self._headers = {} if auth is None else {
            "Authorization": "Basic " + base64.b64encode(f"{auth.username}:{password or ''}".encode()).decode()}
        self._ssl = settings.ssl_context()
        self._session: aiohttp.ClientSession | None = None
        self.reads: Counter[str] = Counter()  # by target: pages that asked Prometheus for its charts
        self.failures: Counter[str] = Counter()  # of which Prometheus gave none

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
                connector=aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True, limit=8))
        return self._session

    async def query_range(self, expr: str, window: Window) -> list[RangeSeries]:
        params = {"query": expr, "start": str(window.start), "end": str(window.end), "step": str(window.step)}
        async with self._client().get(f"{self.url}/api/v1/query_range", params=params) as response:
            body = await response.read()
            status = response.status
        try:
            return parse_matrix(body)
        except AnsweredError:
            raise
        except HistoryError:
            if status != 200:  # a proxy's page, not Prometheus's JSON error: its status says more
                raise HistoryError(f"answered HTTP {status}") from None
            raise

    async def read(self, exprs: Sequence[str], window: Window, targets: Sequence[str]) -> list[list[RangeSeries]]:
        """Every expression's series over ``window``, all within ``prometheus.timeout``; else ``HistoryError``
        (counted for each of ``targets``, whose charts they are) saying why there are none."""
        self.reads.update(targets)
        try:
            async with asyncio.timeout(self.settings.timeout):
                return await _all(self.query_range(expr, window) for expr in exprs)
        except TimeoutError:
            why = f"did not answer within {self.settings.timeout:g} s"
        except aiohttp.ClientConnectorError as exc:
            why = f"could not be reached ({exc.os_error.strerror or exc.os_error})"
        except aiohttp.ClientError as exc:
            why = f"could not be read ({type(exc).__name__}: {exc})"
        except HistoryError as exc:
            why = str(exc)
        self.failures.update(targets)
        raise HistoryError(f"Prometheus at {self.shown} {why}")

    async def charts(self, queries: Sequence[ChartQuery], window: Window, target: str) -> list[Chart]:
        """Every chart of ``queries`` (a page of ``target``) over ``window``."""
        answers = iter(await self.read([expr for query in queries for _, expr in query.lines], window, [target]))
        out = []
        for query in queries:
            lines = [line for label, _ in query.lines for line in lines_of(label, next(answers), window)]
            out.append(Chart(title=query.title, unit=query.unit, lines=lines,
                             window=(float(window.start), float(window.end)), key=query.key,
                             source="prometheus", step=window.step))
        return out

    async def frames(self, states: Sequence[SourceState], window: Window) -> FrameSeries:
        """The main page's series over ``window``: per source and target (``frame_key``), what its charts read
        (``read_by``); ``range_frames`` draws them."""
        wanted = [(state, name, rated) for state in states if (spec := source(state.poller.source)) is not None
                  for name, rated in read_by(spec)]
        exprs = [main_query(name, rated, {**self.settings.labels, "target": state.poller.target}, window.rate)
                 for state, name, rated in wanted]
        found: FrameSeries = {}
        targets = list(dict.fromkeys(state.poller.target for state, _, _ in wanted))
        for (state, name, rated), answer in zip(wanted, await self.read(exprs, window, targets), strict=True):
            series = [Series(name, s.labels, window.times, list(on_grid(s, window).values))
                      for s in sorted(answer, key=lambda s: sorted(s.labels.items()))]
            found.setdefault(frame_key(state), {})[(name, rated)] = series
        return found

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _all(reads: Iterator[Any]) -> list[list[RangeSeries]]:
    """Every read's answer in order; the first failure ends the others (a task group's, unwrapped)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(read) for read in reads]
    except BaseExceptionGroup as group_error:
        first = group_error.exceptions[0]
        raise first from None
    return [task.result() for task in tasks]


# --- what a page shows ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shown:
    """Where a page's charts come from, for its range selector and the caption over the charts."""

    range: str = DEFAULT_RANGE
    source: str = "memory"  # or "prometheus"
    offered: bool = False  # Prometheus is configured: the ranges are offered
    note: str = ""  # why the page draws memory rather than the range asked for
    failed: bool = False  # the note is a failure (shown as an error), not advice
    prometheus: str = ""  # its URL as shown
    step: int = 0
    kept: str = "the last hour"  # what memory holds (ui.history_seconds)

    @property
    def ranges(self) -> list[tuple[str, str]]:
        return list(RANGE_LABELS.items())

    @property
    def label(self) -> str:
        return RANGE_LABELS[self.range]

    @property
    def every(self) -> str:
        """The step in words: "90 s", "6 min", "42 min"."""
        return f"{self.step} s" if self.step < 120 else f"{self.step / 60:.3g} min"


def kept_text(seconds: float) -> str:
    if seconds == 3600:
        return "the last hour"
    return f"the last {seconds / 3600:g} h" if seconds >= 3600 else f"the last {seconds / 60:g} min"


class HistoryReader:
    """What the pages ask for their charts: the ring's (given), or Prometheus's over the range asked for."""

    def __init__(self, client: PrometheusClient | None, history_seconds: float = 3600.0) -> None:
        self.client = client
        self.kept = kept_text(history_seconds)
        self.cache = AnswerCache()

    async def charts(self, ring: list[Chart], queries: Queries, asked: str | None, now: float,
                     target: str) -> tuple[list[Chart], Shown]:
        """A statement or table page's charts (of ``target``, its PostgreSQL target): ``ring`` or Prometheus's."""
        chosen = range_of(asked)
        client = self.client
        if client is None or chosen == DEFAULT_RANGE:
            return ring, self._memory(chosen)
        window = window_for(chosen, now, client.settings.scrape_interval)
        wanted = queries(window.rate, client.settings.labels)
        question = ("charts", target, tuple(wanted))
        drawn: list[Chart] | None = self.cache.get(question, window)
        if drawn is None:
            try:
                drawn = await client.charts(wanted, window, target)
            except HistoryError as exc:  # not kept: the next refresh asks again
                return ring, self._fell_back(chosen, exc)
            self.cache.put(question, window, drawn)
        return list(drawn), self._from_prometheus(chosen, window)

    async def frames(self, states: Sequence[SourceState], asked: str | None,
                     now: float) -> tuple[dict[str, Frame], Shown]:
        """The main page's: no frame (the ring) for the default range or without Prometheus."""
        chosen = range_of(asked)
        client = self.client
        if client is None or chosen == DEFAULT_RANGE:
            return {}, self._memory(chosen)
        window = window_for(chosen, now, client.settings.scrape_interval)
        question = ("frames", tuple(frame_key(state) for state in states))
        found: FrameSeries | None = self.cache.get(question, window)
        if found is None:
            try:
                found = await client.frames(states, window)
            except HistoryError as exc:  # not kept: the next refresh asks again
                return {}, self._fell_back(chosen, exc)
            self.cache.put(question, window, found)
        return range_frames(states, found, window), self._from_prometheus(chosen, window)

    def _memory(self, chosen: str) -> Shown:
        """The ring, as asked (the default range) or for want of Prometheus."""
        if self.client is not None:
            return Shown(offered=True, prometheus=self.client.shown, kept=self.kept)
        note = "" if chosen == DEFAULT_RANGE else (
            f"Ranges beyond {self.kept} kept in memory need Prometheus (prometheus.url); showing {self.kept}.")
        return Shown(note=note, kept=self.kept)

    def _fell_back(self, chosen: str, exc: HistoryError) -> Shown:
        assert self.client is not None
        return Shown(chosen, offered=True, note=f"{exc}; showing {self.kept} kept in memory.", failed=True,
                     prometheus=self.client.shown, kept=self.kept)

    def _from_prometheus(self, chosen: str, window: Window) -> Shown:
        assert self.client is not None
        return Shown(chosen, "prometheus", offered=True, prometheus=self.client.shown, step=window.step,
                     kept=self.kept)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


class HistoryCollector(Collector):
    """``dbpulse_history_*{target}``: pages that read a target's charts from Prometheus, and how many of them fell
    back to memory; 0 for every target watched until then (and without ``prometheus.url``)."""

    def __init__(self, reader: HistoryReader, targets: Iterable[str]) -> None:
        self.reader = reader
        self.targets = list(dict.fromkeys(targets))

    def collect(self) -> Iterator[Metric]:
        client = self.reader.client
        for name, counts in (("dbpulse_history_reads", client.reads if client else Counter[str]()),
                             ("dbpulse_history_read_failures", client.failures if client else Counter[str]())):
            family = CounterMetricFamily(name, catalogue()[f"{name}_total"].help, labels=["target"])
            for target in dict.fromkeys([*self.targets, *counts]):
                family.add_metric([target], counts[target])
            yield family
