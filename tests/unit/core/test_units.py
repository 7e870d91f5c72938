"""Numbers for people (monitor/core/units.py): no "0.0 ms", no "100% less" unless nothing is left."""

from __future__ import annotations

import math

import pytest

from monitor.core.units import duration, milliseconds, percent_less, size


@pytest.mark.parametrize(("seconds", "text"), [
    (0.0, "0 µs"), (0.000_012, "12 µs"), (0.000_999_4, "999 µs"), (0.0015, "1.50 ms"), (0.042, "42.00 ms"),
    (0.25, "250 ms"), (1.5, "1.5 s"), (119.0, "119.0 s"), (600.0, "10.0 min"), (7200.0, "2.0 h"),
    (604_800.0, "7.0 days"),
    (math.nan, "\N{EN DASH}"),
])
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_milliseconds_stay_ms_above_one() -> None:
    assert milliseconds(0.000_4) == "400 µs" and milliseconds(2.5) == "2,500 ms"


@pytest.mark.parametrize(("ratio", "text"), [
    (0.0, "0%"), (0.5, "50%"), (0.994, "99%"), (0.995, "99.5%"), (0.9996, "99.9%"), (0.999_999, "99.9%"),
    (1.0, "100%"), (-0.2, "0%"),
])
def test_percent_less_is_100_only_when_all_is_gone(ratio: float, text: str) -> None:
    assert percent_less(ratio) == text


@pytest.mark.parametrize(("count", "text"), [(0, "0 B"), (1023, "1,023 B"), (12_533_760, "12.0 MB"),
                                             (1024**4 * 3, "3.0 TB")])
def test_size(count: float, text: str) -> None:
    assert size(count) == text
