"""The query and the answer of the UI's charts over a longer range (``history.py`` sends and draws them).

Pure functions, no I/O: which range, step and rate window; the PromQL of the shipped dashboards
(``dashboards/generate.py``) for the statement and table pages and for each main-page chart's series; and a
``query_range`` answer parsed into lines on the window's grid, or ``HistoryError`` saying what was wrong.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.web.charts import Line
from monitor.web.detail import CALLS, DEAD_ROWS, EXEC, INDEX_SCANS, ROWS, SEQ_SCANS, SIZE

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
    """The range ending at the last multiple of its step at least one scrape before ``now``: every point drawn is
    final (no scrape still on its way), and the same window is asked again until ``end`` moves by a step, which
    Prometheus's (Thanos's, Mimir's) result caches and ``HistoryReader``'s reuse."""
    seconds = RANGES[asked]
    step = step_for(seconds, scrape_interval)
    end = math.floor(now - scrape_interval) // step * step
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


def statement_queries(target: str, queryid: int, datname: str | None = None) -> Queries:
    """The statement page's charts (``detail.statement_page``); ``target`` the PostgreSQL target's, ``datname``
    its database when the target watches several (the same queryid can run in two databases)."""
    def build(window: str, labels: Mapping[str, str]) -> list[ChartQuery]:
        match = {**labels, "target": target, "queryid": str(queryid)}
        if datname is not None:
            match["datname"] = datname
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
