"""An alert threshold, written once: each source's table (``collectors/<source>/thresholds.py``) holds them.

The table is the one home of the number: the source's own code (the PostgreSQL
Health list) and the web's charts (their dashed lines) read it, and
``tests/rules/test_thresholds.py`` fails, naming the rule and both numbers, when
an alert in ``rules/dbpulse-alerts.rules.yml`` compares with another.
"""

from __future__ import annotations

from dataclasses import dataclass

PLACEHOLDER = "#"


@dataclass(frozen=True)
class Threshold:
    name: str
    value: float
    unit: str  # as the page shows it: bytes, seconds, ratio, count, factor, /s
    alert: str  # the alert (rules/dbpulse-alerts.rules.yml) that fires past it
    # The comparison as the alert's expression writes it, PLACEHOLDER for the number ("> #", "(# * metric)"),
    # the number as written there (64 * 1024 * 1024 is 67108864). Without PLACEHOLDER the rule states the
    # value in other terms (a share above 0.5 as "requested > timed"): the text must be there as written.
    written: str = f"> {PLACEHOLDER}"
    severity: str = "warning"  # the alert's rule of that severity (an alert may have a warning and a critical)
    also: tuple[str, ...] = ()  # other alerts that compare with the same number, written the same way

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", float(self.value))  # 300 and 300.0 are one number everywhere

    @property
    def alerts(self) -> tuple[str, ...]:
        return (self.alert, *self.also)

    @property
    def label(self) -> str:
        return f"alert {self.alert}"
