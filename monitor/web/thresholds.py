"""The alert thresholds the charts draw, from each source's table (``collectors/<source>/thresholds.py``).

A source's spec names a chart's alert (``ChartSpec.threshold``); its value is looked up here, in the
tables the registry finds. A chart's dashed line is where the matching alert fires (its warning level
where there are two), so an engineer sees how close a line is to paging. The numbers live in the
tables only; ``tests/rules/test_thresholds.py`` holds the rules to them.
"""

from __future__ import annotations

from collectors.base.thresholds import Threshold
from collectors.registry import thresholds


def by_alert(alert: str) -> Threshold:
    """The threshold of the shipped alert a chart declares (``ChartSpec.threshold``)."""
    try:
        return thresholds()[alert]
    except KeyError:
        raise KeyError(f"no threshold for alert {alert!r} in any collectors/<source>/thresholds.py") from None
