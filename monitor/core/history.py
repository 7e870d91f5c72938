"""The recent past of each source in memory: a bounded ring of selected sample values per poll.

The web UI draws its charts and the statement and table pages from here, so
no database is touched to draw a chart. Each source and target keeps its own
ring, one slot per poll: ``capacity`` slots (by default an hour at the
source's interval). A failed poll writes a gap (NaN in every series), so a
chart shows a break where the source was down rather than a stale line.

Only metrics in ``names`` are kept (the web layer says which it draws); a
series is stored as a fixed ``array('d')`` of ``capacity`` floats, so memory
is ``8 * capacity`` bytes a series plus small overhead and does not grow
with the number of polls. A series not seen for a whole ring (a statement
that left the top-K) is dropped.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from collectors.base.catalogue import spec
from collectors.base.samples import Sample

NAN = math.nan
DEFAULT_SECONDS = 3600.0
MIN_POINTS = 2
MAX_POINTS = 100_000


def capacity_for(seconds: float, interval: float) -> int:
    """Slots that hold ``seconds`` of polls at ``interval``."""
    return max(MIN_POINTS, min(MAX_POINTS, math.ceil(seconds / interval) + 1))


@dataclass(frozen=True)
class Series:
    """One series' points, oldest first; ``None`` where there was no value (a gap)."""

    name: str
    labels: Mapping[str, str]
    times: list[float]
    values: list[float | None]

    def last(self) -> float | None:
        """The newest point's value (``None`` if the newest poll had none)."""
        return self.values[-1] if self.values else None


class History:
    """A ring of ``capacity`` polls of one source and target."""

    def __init__(self, capacity: int, names: Iterable[str]) -> None:
        if capacity < MIN_POINTS:
            raise ValueError(f"capacity must be at least {MIN_POINTS}")
        self.capacity = capacity
        self.names = frozenset(names)
        self._times = array("d", [NAN] * capacity)
        self._up = array("b", [0] * capacity)  # 1 where the poll succeeded
        self._series: dict[tuple[str, tuple[str, ...]], array[float]] = {}
        self._seen: dict[tuple[str, tuple[str, ...]], int] = {}  # key -> poll number last seen
        self._polls = 0  # polls recorded; the next one goes to slot polls % capacity

    def __len__(self) -> int:
        """Polls held (at most ``capacity``)."""
        return min(self._polls, self.capacity)

    @property
    def series_count(self) -> int:
        return len(self._series)

    def record(self, when: float, samples: Iterable[Sample] | None) -> None:
        """One poll at wall-clock ``when``: its samples, or ``None`` for a failed poll (a gap)."""
        slot = self._polls % self.capacity
        self._times[slot] = when
        self._up[slot] = samples is not None
        for values in self._series.values():
            values[slot] = NAN
        for sample in samples or ():
            if sample.name not in self.names:
                continue
            key = (sample.name, sample.labels)
            ring = self._series.get(key)
            if ring is None:
                ring = self._series[key] = array("d", [NAN] * self.capacity)
            ring[slot] = sample.value
            self._seen[key] = self._polls
        self._polls += 1
        self._forget_stale()

    def _forget_stale(self) -> None:
        oldest = self._polls - self.capacity
        for key in [k for k, seen in self._seen.items() if seen < oldest]:
            del self._series[key], self._seen[key]

    def _order(self) -> list[int]:
        """Slot indices oldest first."""
        held = len(self)
        start = self._polls - held
        return [(start + i) % self.capacity for i in range(held)]

    def times(self) -> list[float]:
        return [self._times[i] for i in self._order()]

    def ups(self) -> list[bool]:
        """Per held poll, oldest first: did it succeed?"""
        return [bool(self._up[i]) for i in self._order()]

    def series(self, name: str, **match: str) -> Iterator[Series]:
        """Every held series of metric ``name`` whose labels include ``match``, in label order."""
        label_names = spec(name).labels
        order = self._order()
        times = [self._times[i] for i in order]
        for (key_name, label_values), values in sorted(self._series.items()):
            if key_name != name:
                continue
            labels = dict(zip(label_names, label_values, strict=True))
            if any(labels.get(k) != v for k, v in match.items()):
                continue
            points = [values[i] for i in order]
            yield Series(name, labels, times, [None if math.isnan(v) else v for v in points])

    def one(self, name: str, **match: str) -> Series | None:
        """The single series matching, or ``None`` if there is none (or more than one)."""
        found = list(self.series(name, **match))
        return found[0] if len(found) == 1 else None


def rate(series: Series) -> Series:
    """Per-second rate of a counter between consecutive points; a gap or a reset gives ``None``."""
    out: list[float | None] = [None]
    for i in range(1, len(series.values)):
        before, after = series.values[i - 1], series.values[i]
        dt = series.times[i] - series.times[i - 1]
        ok = before is not None and after is not None and dt > 0 and after >= before
        out.append((after - before) / dt if ok else None)  # type: ignore[operator]
    return Series(series.name, series.labels, series.times, out)


def delta_ratio(part: Series, whole: Series) -> list[float | None]:
    """Per interval, the increase of ``part`` over the increase of ``whole`` (two counters on the same
    clock), e.g. mean time per call; ``None`` where either has a gap or ``whole`` did not move."""
    out: list[float | None] = [None]
    for i in range(1, min(len(part.values), len(whole.values))):
        p0, p1, w0, w1 = part.values[i - 1], part.values[i], whole.values[i - 1], whole.values[i]
        if p0 is None or p1 is None or w0 is None or w1 is None or w1 <= w0 or p1 < p0:
            out.append(None)
        else:
            out.append((p1 - p0) / (w1 - w0))
    return out


def increase(series: Series) -> tuple[float, float] | None:
    """A counter's increase from its first to its last held value, and the seconds between them;
    ``None`` with fewer than two values or across a reset."""
    held = [(t, v) for t, v in zip(series.times, series.values, strict=True) if v is not None]
    if len(held) < 2 or held[-1][1] < held[0][1] or held[-1][0] <= held[0][0]:
        return None
    return held[-1][1] - held[0][1], held[-1][0] - held[0][0]
