"""Line charts drawn on the server as inline SVG: no script, no library, nothing the CSP must allow.

A ``Chart`` is what to draw (lines over time, a unit, the matching alert's
threshold, a ceiling such as max_connections); ``svg()`` draws it. Colours
come from classes in ``ui.css`` so the charts follow ``prefers-color-scheme``.
A point without a value (the source was down, or a counter reset) breaks the
line and the gap is shaded, so a chart never draws a stale line across an
outage. Every text drawn (titles, labels from a monitored system) is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

from monitor.core.units import in_unit

WIDTH, HEIGHT = 360, 150
LEFT, RIGHT, TOP, BOTTOM = 58, 8, 8, 20  # plot margins (axis labels live there)
MAX_LINES = 6  # more lines than this is unreadable; the rest are left out (and said so)


@dataclass(frozen=True)
class Line:
    label: str
    times: Sequence[float]
    values: Sequence[float | None]

    def last(self) -> float | None:
        return self.values[-1] if self.values else None


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str  # "ratio", "bytes", "seconds", "count" or a rate unit such as "/s"
    lines: Sequence[Line]
    window: tuple[float, float]  # the time span drawn (wall clock): the buffer's length up to now
    threshold: float | None = None  # the matching alert's threshold, drawn as a dashed line
    threshold_label: str = ""  # the alert's name
    ceiling: float | None = None  # a hard limit (max_connections, a pool's capacity, maxmemory)
    ceiling_label: str = ""
    key: str = ""  # a stable id for tests and links
    down: Sequence[tuple[float, float]] = field(default_factory=tuple)  # spans with no poll result
    source: str = "memory"  # or "prometheus" (monitor/web/history.py): then its points are in data-values
    step: float = 0.0  # seconds between Prometheus's points

    @property
    def current(self) -> str:
        """The newest value of each line, for the chart's caption."""
        if not self.lines:
            return "no data yet"
        shown = self.lines[:3]
        parts = [in_unit(line.last(), self.unit) if len(self.lines) == 1
                 else f"{line.label} {in_unit(line.last(), self.unit)}" for line in shown]
        more = f" (+{len(self.lines) - 3})" if len(self.lines) > 3 else ""
        return ", ".join(parts) + more


def gaps(times: Sequence[float], up: Sequence[bool]) -> list[tuple[float, float]]:
    """Time spans where polls failed: from the last good poll before to the first good one after."""
    spans: list[tuple[float, float]] = []
    start: float | None = None
    for i, ok in enumerate(up):
        if not ok and start is None:
            start = times[i - 1] if i > 0 else times[i]
        elif ok and start is not None:
            spans.append((start, times[i]))
            start = None
    if start is not None:
        spans.append((start, times[-1]))
    return spans


def _nice_top(value: float) -> float:
    """A round axis maximum at or above ``value``."""
    if value <= 0:
        return 1.0
    exp = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0):
        if value <= step * exp:
            return step * exp
    return 10.0 * exp


def _attr(value: float) -> str:
    return f"{value:.1f}"


def svg(chart: Chart) -> Markup:
    """The chart as an inline ``<svg>`` element."""
    x0, x1 = LEFT, WIDTH - RIGHT
    y0, y1 = HEIGHT - BOTTOM, TOP
    t0, t1 = chart.window
    span = max(t1 - t0, 1e-9)
    lines = list(chart.lines[:MAX_LINES])
    values = [v for line in lines for v in line.values if v is not None]
    peaks = [*values, *(x for x in (chart.threshold, chart.ceiling) if x is not None)]
    top = 1.0 if chart.unit == "ratio" else _nice_top(max(peaks, default=0.0))
    bottom = 0.0
    if chart.unit == "ratio" and values:  # hit ratios live near 100 %: zoom in unless a line is low
        low = min([*values, *(x for x in (chart.threshold,) if x is not None)])
        bottom = 0.0 if low < 0.5 else max(0.0, math.floor(low * 10) / 10 - 0.1)
    scale = (y0 - y1) / max(top - bottom, 1e-12)

    def x(t: float) -> float:
        return x0 + (min(max(t, t0), t1) - t0) / span * (x1 - x0)

    def y(v: float) -> float:
        return y0 - (min(max(v, bottom), top) - bottom) * scale

    label = f"{chart.title}: {chart.current}"
    out = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}"'
           f' data-chart="{escape(chart.key)}" data-points="{len(values)}" data-gaps="{len(chart.down)}"'
           f' data-source="{escape(chart.source)}"{_drawn_from(chart, lines)}>',
           f"<title>{escape(label)}</title>"]
    for a, b in chart.down:
        out.append(f'<rect class="gap" x="{_attr(x(a))}" y="{y1}" width="{_attr(max(x(b) - x(a), 1.5))}"'
                   f' height="{y0 - y1}"><title>no data: source down</title></rect>')
    for tick in (bottom, (bottom + top) / 2, top):
        ty = _attr(y(tick))
        out.append(f'<line class="grid" x1="{x0}" x2="{x1}" y1="{ty}" y2="{ty}"/>')
        out.append(f'<text class="axis" x="{x0 - 4}" y="{ty}" text-anchor="end" dominant-baseline="middle">'
                   f"{escape(in_unit(tick, chart.unit))}</text>")
    for frac, text in ((0.0, _ago(span)), (0.5, _ago(span / 2)), (1.0, "now")):
        anchor = "start" if frac == 0 else "end" if frac == 1 else "middle"
        out.append(f'<text class="axis" x="{_attr(x0 + frac * (x1 - x0))}" y="{HEIGHT - 5}"'
                   f' text-anchor="{anchor}">{text}</text>')
    for limit, name, css in ((chart.ceiling, chart.ceiling_label, "ceiling"),
                             (chart.threshold, chart.threshold_label, "threshold")):
        if limit is not None and bottom <= limit <= top:
            ly = _attr(y(limit))
            out.append(f'<line class="{css}" x1="{x0}" x2="{x1}" y1="{ly}" y2="{ly}">'
                       f"<title>{escape(name)} {escape(in_unit(limit, chart.unit))}</title></line>")
    for n, line in enumerate(lines):
        for run in _runs(line):
            points = " ".join(f"{_attr(x(t))},{_attr(y(v))}" for t, v in run)
            if len(run) == 1:
                t, v = run[0]
                out.append(f'<circle class="series s{n}" cx="{_attr(x(t))}" cy="{_attr(y(v))}" r="1.8"/>')
            else:
                out.append(f'<polyline class="series s{n}" points="{points}"><title>{escape(line.label)}</title>'
                           "</polyline>")
    if not values:
        out.append(f'<text class="axis empty" x="{(x0 + x1) / 2}" y="{(y0 + y1) / 2}" text-anchor="middle">'
                   "no data yet</text>")
    out.append(f'<line class="frame" x1="{x0}" x2="{x0}" y1="{y1}" y2="{y0}"/>'
               f'<line class="frame" x1="{x0}" x2="{x1}" y1="{y0}" y2="{y0}"/></svg>')
    return Markup("".join(out))  # every interpolated text above is escaped


def _ago(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.3g} d ago"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.3g} h ago"
    return f"{seconds / 60:.0f} min ago" if seconds >= 120 else f"{seconds:.0f} s ago"


def _drawn_from(chart: Chart, lines: Sequence[Line]) -> str:
    """A chart from Prometheus names its window, step and every value drawn (each line's, `|` between lines),
    so that what is drawn can be checked against Prometheus's own answer."""
    if chart.source == "memory":
        return ""
    values = " | ".join(" ".join(repr(v) for v in line.values if v is not None) for line in lines)
    return (f' data-window="{chart.window[0]:.0f} {chart.window[1]:.0f}" data-step="{chart.step:g}"'
            f' data-values="{escape(values)}"')


def _runs(line: Line) -> list[list[tuple[float, float]]]:
    """The line's points split where a value is missing."""
    runs: list[list[tuple[float, float]]] = [[]]
    for t, v in zip(line.times, line.values, strict=True):
        if v is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((t, v))
    return [r for r in runs if r]
