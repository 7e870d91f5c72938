"""Numbers for people: durations, sizes and percentages; the one formatting module of the pages, the charts
and the reports.

A duration below a millisecond is in µs (never "0.0 ms"); a cost cut is never rounded up to "100% less"
unless it is all of it; sizes use binary multiples (1 kB = 1024 B) with their unit.
"""

from __future__ import annotations

import math

DASH = "\N{EN DASH}"  # an absent value


def duration(seconds: float) -> str:
    """µs below a millisecond, ms below a second, then s, min, h and days (never "0.0 hours")."""
    if not math.isfinite(seconds):
        return DASH
    size = abs(seconds)
    if size < 0.001:
        return f"{seconds * 1e6:,.0f} µs"
    if size < 1:
        return milliseconds(seconds)
    if size < 120:
        return f"{seconds:.1f} s"
    if size < 7200:
        return f"{seconds / 60:.1f} min"
    if size < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def milliseconds(seconds: float) -> str:
    """In ms (two decimals below 100 ms), or µs below one; for columns of latencies that stay in ms."""
    ms = seconds * 1000
    if not math.isfinite(ms):
        return DASH
    if abs(ms) < 1:
        return f"{seconds * 1e6:,.0f} µs"
    return f"{ms:,.2f} ms" if abs(ms) < 100 else f"{ms:,.0f} ms"


def size(count: float) -> str:
    """Bytes with a binary unit: ``12.0 MB``."""
    if not math.isfinite(count):
        return DASH
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1024 or unit == "TB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1024
    return DASH  # pragma: no cover


def percent_less(ratio: float) -> str:
    """A cut as a percentage: whole percents, one decimal near 100, and 100% only when nothing is left."""
    if ratio >= 1:
        return "100%"
    percent = max(ratio, 0.0) * 100
    if percent < 99.5:
        return f"{percent:.0f}%"
    return f"{math.floor(percent * 10) / 10:.1f}%"  # 99.96 is 99.9%, not 100%


# --- what the pages and the charts print: any value (None, NaN, a non-number) is a dash --------------
def finite(value: object) -> float | None:
    """The value as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def num(value: object, digits: int = 0) -> str:
    number = finite(value)
    return DASH if number is None else f"{number:,.{digits}f}"


def ratio(value: object) -> str:
    """A ratio 0..1 as a percentage: ``95.3 %``."""
    number = finite(value)
    return DASH if number is None else f"{number * 100:.1f} %"


def ms(seconds: object) -> str:
    number = finite(seconds)
    return DASH if number is None else milliseconds(number)


def seconds(value: object) -> str:
    number = finite(value)
    return DASH if number is None else duration(number)


def bytes_(value: object) -> str:
    number = finite(value)
    return DASH if number is None else size(number)


def less(cut: object) -> str:
    """A cost cut: "96% less" (never "100% less" unless it is all of it)."""
    number = finite(cut)
    return DASH if number is None else f"{percent_less(number)} less"


def age(timestamp: float | None, now: float) -> str:
    return "never" if timestamp is None else f"{seconds(max(0.0, now - timestamp))} ago"


def in_unit(value: object, unit: str) -> str:
    """A value in a chart's unit ("ratio", "bytes", "seconds", "count" or a rate such as "/s"), short enough
    for an axis label."""
    number = finite(value)
    if number is None:
        return DASH
    if unit == "ratio":
        return ratio(number)
    if unit == "bytes":
        return size(number)
    if unit == "seconds":
        return duration(number)
    text = f"{number:,.0f}" if abs(number) >= 100 else f"{number:.3g}"
    return f"{text} {unit}".strip() if unit not in ("", "count") else text
