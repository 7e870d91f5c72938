"""Charts beyond the hour kept in memory, read from Prometheus (``prometheus.url``).

Prometheus already holds dbpulse's own series for weeks: a page asked for ``?range=6h`` (``RANGES``) reads
them with ``/api/v1/query_range``, with the metric names, labels and PromQL of the shipped dashboards
(``dashboards/generate.py``: ``rate(...[$__rate_interval])``, the mean as the recording rule's ratio), and
draws them as the same ``charts.Chart`` values the ring gives. The default range (1 h) is the ring, as
without Prometheus.

A chart never waits longer than ``prometheus.timeout``: Prometheus down, slow or answering an error, the
page draws the ring and says why (``Shown.note``); every such failure is counted
(``dbpulse_history_read_failures_total``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
from monitor.web.charts import Chart, Line
from monitor.web.detail import CALLS, DEAD_ROWS, EXEC, INDEX_SCANS, ROWS, SEQ_SCANS, SIZE
from monitor.web.trends import Frame, RangeFrame, read_by

RANGES: dict[str, float] = {"1h": 3600.0, "6h": 6 * 3600.0, "24h": 24 * 3600.0, "7d": 7 * 86400.0}
RANGE_LABELS = {"1h": "1 h", "6h": "6 h", "24h": "24 h", "7d": "7 d"}
DEFAULT_RANGE = "1h"  # drawn from memory, Prometheus or not
POINTS = 240  # about this many points a chart; never a step below the scrape interval


# --- the query -----------------------------------------------------------------------------------------------
def range_of(asked: str | None) -> str:
    """The range a page was asked for (``?range=``), the default for anything else."""
    return asked if asked in RANGES else DEFAULT_RANGE


def step_for(seconds: float, scrape_interval: float) -> int:
    """Seconds between points: about ``POINTS`` over the range, never finer than Prometheus scrapes."""
    return max(math.ceil(seconds / POINTS), math.ceil(scrape_interval))


def rate_window(step: int, scrape_interval: float) -> str:
    """Grafana's ``$__rate_interval``, which the shipped dashboards rate over: max(step + scrape, 4 * scrape)."""
    return f"{math.ceil(max(step + scrape_interval, 4 * scrape_interval))}s"


@dataclass(frozen=True)
class Window:
    """The span a range query reads: whole seconds, so that the points fall on the same grid every time."""

    range: str
    start: int
    end: int
    step: int
    rate: str  # the rate window, e.g. "91s"

    @property
    def times(self) -> list[float]:
        return [float(t) for t in range(self.start, self.end + 1, self.step)]


def window_for(asked: str, now: float, scrape_interval: float) -> Window:
    """The range ending one scrape before ``now``: every point drawn is final (no scrape still on its way)."""
    seconds = RANGES[asked]
    step = step_for(seconds, scrape_interval)
    end = math.floor(now - scrape_interval)
    return Window(asked, end - int(seconds), end, step, rate_window(step, scrape_interval))


def promql_string(value: str) -> str:
    """A PromQL double-quoted string (Go's escapes, which JSON's are a subset of)."""
    return json.dumps(value, ensure_ascii=False)


def selector(metric: str, labels: Mapping[str, str]) -> str:
    return metric + "{" + ", ".join(f"{name}={promql_string(value)}" for name, value in labels.items()) + "}"


@dataclass(frozen=True)
class ChartQuery:
    """One chart: the ring's chart of the same ``key``, its lines each one PromQL expression."""

    key: str
    title: str
    unit: str
    lines: tuple[tuple[str, str], ...]  # (line label, PromQL)


Queries = Callable[[str, Mapping[str, str]], list[ChartQuery]]  # (rate window, extra labels) -> the charts


def statement_queries(target: str, queryid: int) -> Queries:
    """The statement page's charts (``detail.statement_page``)."""
    def build(window: str, labels: Mapping[str, str]) -> list[ChartQuery]:
        match = {**labels, "target": target, "queryid": str(queryid)}
        calls = f"rate({selector(CALLS, match)}[{window}])"
        return [
            ChartQuery("calls", "calls per second", "/s", (("calls/s", calls),)),
            ChartQuery("mean", "mean execution time", "seconds",
                       (("mean", f"rate({selector(EXEC, match)}[{window}]) / {calls}"),)),
            ChartQuery("rows", "rows per call", "count",
                       (("rows/call", f"rate({selector(ROWS, match)}[{window}]) / {calls}"),)),
        ]
    return build


def table_queries(target: str, schema: str, table: str, datname: str | None) -> Queries:
    """The table page's charts (``detail._with_charts_and_advice``); ``target`` the PostgreSQL target's."""
    def build(window: str, labels: Mapping[str, str]) -> list[ChartQuery]:
        match = {**labels, "target": target, "schema": schema, "table": table}
        if datname is not None:
            match["datname"] = datname
        return [
            ChartQuery("size", "total size", "bytes", (("size", selector(SIZE, match)),)),
            ChartQuery("scans", "scans per second (sequential, index)", "/s",
                       (("seq", f"rate({selector(SEQ_SCANS, match)}[{window}])"),
                        ("index", f"rate({selector(INDEX_SCANS, match)}[{window}])"))),
            ChartQuery("dead", "dead rows", "count", (("dead rows", selector(DEAD_ROWS, match)),)),
        ]
    return build


def main_query(name: str, rated: bool, labels: Mapping[str, str], window: str) -> str:
    """A main-page chart's series, as the dashboards read them: a counter per second, a gauge as it is."""
    return f"rate({selector(name, labels)}[{window}])" if rated else selector(name, labels)


def frame_key(state: SourceState) -> str:
    return f"{state.poller.source}:{state.poller.target}"


# --- the answer ----------------------------------------------------------------------------------------------
class HistoryError(Exception):
    """Why Prometheus gave no chart, in words the page shows after "Prometheus at URL"."""


class AnsweredError(HistoryError):
    """Prometheus's own error answer (``"status": "error"``), whatever its HTTP status."""


@dataclass(frozen=True)
class RangeSeries:
    labels: Mapping[str, str]
    points: list[tuple[float, float | None]]  # None: NaN or ±Inf (0/0 when a statement had no calls)


def _number(text: Any) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


def parse_matrix(body: bytes) -> list[RangeSeries]:
    """A ``query_range`` answer's series; ``HistoryError`` for anything but a successful matrix."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HistoryError("answered with something that is not JSON") from None
    if not isinstance(doc, dict):
        raise HistoryError("answered with JSON that is not a query result")
    if doc.get("status") != "success":
        raise AnsweredError(f"answered with an error ({doc.get('errorType', 'unknown')}: "
                           f"{str(doc.get('error', 'no message'))[:200]})")
    data = doc.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        kind = data.get("resultType") if isinstance(data, dict) else None
        raise HistoryError(f"answered with no range data (result type {kind})")
    try:
        return [RangeSeries({str(k): str(v) for k, v in item["metric"].items()},
                            [(float(t), _number(v)) for t, v in item["values"]]) for item in data["result"]]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise HistoryError("answered with a malformed range result") from None


def on_grid(series: RangeSeries, window: Window) -> Line:
    """The series on the window's grid, ``None`` where Prometheus has no point (the line breaks there)."""
    by_time = {round(t): v for t, v in series.points}
    times = window.times
    return Line("", times, [by_time.get(round(t)) for t in times])


def lines_of(label: str, found: Sequence[RangeSeries], window: Window) -> list[Line]:
    """One line per series; several (a statement in two databases) are told apart by what differs."""
    out = []
    for series in found:
        line = on_grid(series, window)
        differs = [v for k, v in sorted(series.labels.items()) if any(o.labels.get(k) != v for o in found)]
        out.append(Line(" ".join([label, *differs]), line.times, line.values))
    return out


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

    async def frames(self, states: Sequence[SourceState], window: Window) -> dict[str, Frame]:
        """The main page's charts over ``window``: per source and target, what its charts read (``read_by``)."""
        wanted = [(state, name, rated) for state in states if (spec := source(state.poller.source)) is not None
                  for name, rated in read_by(spec)]
        exprs = [main_query(name, rated, {**self.settings.labels, "target": state.poller.target}, window.rate)
                 for state, name, rated in wanted]
        found: dict[str, dict[tuple[str, bool], list[Series]]] = {}
        targets = list(dict.fromkeys(state.poller.target for state, _, _ in wanted))
        for (state, name, rated), answer in zip(wanted, await self.read(exprs, window, targets), strict=True):
            series = [Series(name, s.labels, window.times, list(on_grid(s, window).values))
                      for s in sorted(answer, key=lambda s: sorted(s.labels.items()))]
            found.setdefault(frame_key(state), {})[(name, rated)] = series
        span = (float(window.start), float(window.end))
        return {frame_key(state): RangeFrame(state, found.get(frame_key(state), {}), span, window.step)
                for state in states if source(state.poller.source) is not None}

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

    async def charts(self, ring: list[Chart], queries: Queries, asked: str | None, now: float,
                     target: str) -> tuple[list[Chart], Shown]:
        """A statement or table page's charts (of ``target``, its PostgreSQL target): ``ring`` or Prometheus's."""
        chosen = range_of(asked)
        client = self.client
        if client is None or chosen == DEFAULT_RANGE:
            return ring, self._memory(chosen)
        window = window_for(chosen, now, client.settings.scrape_interval)
        try:
            drawn = await client.charts(queries(window.rate, client.settings.labels), window, target)
        except HistoryError as exc:
            return ring, self._fell_back(chosen, exc)
        return drawn, self._from_prometheus(chosen, window)

    async def frames(self, states: Sequence[SourceState], asked: str | None,
                     now: float) -> tuple[dict[str, Frame], Shown]:
        """The main page's: no frame (the ring) for the default range or without Prometheus."""
        chosen = range_of(asked)
        client = self.client
        if client is None or chosen == DEFAULT_RANGE:
            return {}, self._memory(chosen)
        window = window_for(chosen, now, client.settings.scrape_interval)
        try:
            found = await client.frames(states, window)
        except HistoryError as exc:
            return {}, self._fell_back(chosen, exc)
        return found, self._from_prometheus(chosen, window)

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
