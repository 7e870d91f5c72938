"""The charts on the main page: what each source's recent past looks like, from its ``History``.

Each source declares its charts as data (``SourceSpec.charts``, a ``ChartSpec``
each: metric, label, unit, threshold, ceiling); ``draw`` turns the ring of
recorded samples into ``charts.Chart`` values for any of them, and
``RECORDED`` (every metric a declared chart reads) is what the scheduler keeps
(``monitor/service.py``). Adding a chart is one ``ChartSpec`` in its source's
``spec.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from collectors.base.spec import ChartSpec, SourceSpec
from collectors.registry import source, sources
from monitor.core.history import History, Series, rate
from monitor.core.scheduler import SourceState
from monitor.web import thresholds
from monitor.web.charts import Chart, Line, gaps

MIN_WINDOW_POLLS = 20  # a young buffer is drawn over at least this many intervals, not stretched across the chart

RECORDED = tuple(dict.fromkeys(m for spec in sources() for chart in spec.charts for m in chart.metrics))


class Frame:
    """What every chart of one source shares: its window, its gaps and its history (the ring in memory)."""

    source = "memory"
    step = 0.0

    def __init__(self, state: SourceState) -> None:
        self.history: History = state.history
        self.key = f"{state.poller.source}:{state.poller.target}"
        times = self.history.times()
        self.times = times
        if times:
            full = self.history.capacity * state.poller.interval
            end = times[-1]
            shortest = MIN_WINDOW_POLLS * state.poller.interval
            self.window = (max(end - full, min(times[0], end - shortest)), end)
        else:
            self.window = (0.0, 1.0)
        self.down = gaps(times, self.history.ups()) if times else []

    def chart(self, key: str, title: str, unit: str, lines: Iterable[Line], threshold: float | None = None,
              threshold_label: str = "", ceiling: float | None = None, ceiling_label: str = "") -> Chart:
        return Chart(title=title, unit=unit, lines=list(lines), window=self.window, threshold=threshold,
                     threshold_label=threshold_label, ceiling=ceiling, ceiling_label=ceiling_label,
                     key=f"{self.key}:{key}", down=self.down, source=self.source, step=self.step)

    def series(self, name: str, rated: bool, match: Mapping[str, str]) -> list[Series]:
        """The series of ``name`` whose labels include ``match``; a counter's per second when ``rated``."""
        return [rate(s) if rated else s for s in self.history.series(name, **match)]

    def latest(self, name: str, **match: str) -> float | None:
        """The newest recorded value of a single series."""
        series = self.history.one(name, **match)
        if series is None:
            return None
        return next((v for v in reversed(series.values) if v is not None), None)


class RangeFrame(Frame):
    """A source's charts over a longer range, from series read elsewhere (Prometheus: ``history.py``), already
    per second where the chart rates a counter; ceilings stay the ring's current ones."""

    source = "prometheus"

    def __init__(self, state: SourceState, found: Mapping[tuple[str, bool], Sequence[Series]],
                 window: tuple[float, float], step: float) -> None:
        super().__init__(state)
        self.found = found
        self.window = window
        self.down = []
        self.step = step

    def series(self, name: str, rated: bool, match: Mapping[str, str]) -> list[Series]:
        return [s for s in self.found.get((name, rated), ()) if all(s.labels.get(k) == v for k, v in match.items())]


def read_by(spec: SourceSpec[Any, Any]) -> list[tuple[str, bool]]:
    """What a source's charts read: (metric, per second?), each once."""
    names = ((chart.metric,) if isinstance(chart.metric, str) else chart.metric for chart in spec.charts)
    return list(dict.fromkeys((name, chart.rate) for chart, group in zip(spec.charts, names, strict=True)
                              for name in group))


def summed(label: str, series: Sequence[Series]) -> Line:
    """Several series added up per poll; a poll where none has a value stays a gap."""
    if not series:
        return Line(label, [], [])
    values: list[float | None] = []
    for i in range(len(series[0].values)):
        present = [s.values[i] for s in series if s.values[i] is not None]
        values.append(sum(v for v in present if v is not None) if present else None)
    return Line(label, series[0].times, values)


# --- any declared chart ----------------------------------------------------------------------------
def _lines(f: Frame, spec: ChartSpec, match: Mapping[str, str]) -> list[Line]:
    names = (spec.metric,) if isinstance(spec.metric, str) else spec.metric
    series = [s for name in names for s in f.series(name, spec.rate, match)]
    if not spec.combine:
        return [Line(s.labels[spec.label] if spec.label else spec.line, s.times, s.values) for s in series]
    if not spec.label:
        return [summed(spec.line, series)]
    groups: dict[str, list[Series]] = {}
    for s in series:
        groups.setdefault(s.labels[spec.label], []).append(s)
    return [summed(value, group) for value, group in sorted(groups.items())]


def _one(f: Frame, spec: ChartSpec, match: Mapping[str, str], each: Mapping[str, str]) -> Chart | None:
    lines = _lines(f, spec, {**spec.match, **match, **each})
    if spec.optional and not lines:
        return None
    ceiling = f.latest(spec.ceiling, **each) if isinstance(spec.ceiling, str) else spec.ceiling
    ceiling = ceiling or None  # 0 is no limit (Redis maxmemory 0), unknown is none
    alert = thresholds.by_alert(spec.threshold) if spec.threshold else None
    level = None if alert is None else alert.value * ceiling if spec.relative and ceiling else \
        None if spec.relative else alert.value
    value = next(iter(each.values()), "")
    return f.chart(spec.key.format(value=value), spec.title.format(value=value), spec.unit, lines, level,
                   alert.label if alert and level is not None else "", ceiling, spec.ceiling_label)


def draw(f: Frame, spec: ChartSpec, scope: Mapping[str, str] | None = None) -> list[Chart]:
    """The charts one declaration makes of a source's history: none (optional, nothing recorded), one, or one
    per value of its ``each`` label. ``scope`` narrows a ``scoped`` chart (the section's database)."""
    match = {k: v for k, v in (scope or {}).items() if v} if spec.scoped else {}
    if not spec.each:
        return [c for c in (_one(f, spec, match, {}),) if c is not None]
    names = (spec.metric,) if isinstance(spec.metric, str) else spec.metric
    values = dict.fromkeys(s.labels[spec.each] for name in names for s in f.series(name, spec.rate, match))
    return [c for v in values if (c := _one(f, spec, match, {spec.each: v})) is not None]


def charts_of(state: SourceState, scope: Mapping[str, str] | None = None, frame: Frame | None = None) -> list[Chart]:
    """The charts of one source's section on the main page, in the order its spec declares them; from ``frame``
    when given (a longer range), else the ring."""
    spec = source(state.poller.source)
    if spec is None:
        return []
    f = frame or Frame(state)
    return [chart for declared in spec.charts for chart in draw(f, declared, scope)]
