"""Commands and errors with bounded cardinality: the top K by total time (errors: by count), the rest summed.

``INFO commandstats`` names a few hundred commands at most (7.0+ count each
subcommand apart: ``client|list``); errorstats up to 128 error prefixes, and a
Lua script can make up its own. Both are cut to a top-K plus ``__other__``, so
the totals over all series stay exact. Latency percentiles (latencystats,
7.0+) are kept for the exported commands only.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from collectors.base.samples import OTHER
from collectors.base.topk import fold
from collectors.redis.info import CommandStat

MAX_PERCENTILES = 6  # latency-tracking-info-percentiles may list more; the first few are kept


def top_commands(commands: Mapping[str, CommandStat], k: int) -> list[CommandStat]:
    """The ``k`` commands with the most total time, then one ``__other__`` holding the rest."""
    ranked = sorted(commands.values(), key=lambda c: (-c.usec, c.command))
    kept, rest = ranked[:k], ranked[k:]
    other = fold(rest, CommandStat, command=OTHER)
    if other is not None and all(c.rejected_calls is None for c in rest):
        other = CommandStat(OTHER, other.calls, other.usec)  # 6.0: no rejected/failed counts to sum
    return [*kept, other] if other is not None else kept


def top_errors(errors: Mapping[str, float], k: int) -> list[tuple[str, float]]:
    """The ``k`` most frequent error prefixes, then ``__other__`` with the sum of the rest."""
    ranked = sorted(errors.items(), key=lambda e: (-e[1], e[0]))
    kept, rest = ranked[:k], ranked[k:]
    return [*kept, (OTHER, sum(n for _, n in rest))] if rest else kept


def quantile(percentile: str) -> str | None:
    """``p99.9`` -> ``0.999`` (a Prometheus quantile label), None if it is not ``p<0..100>``."""
    try:
        value = Decimal(percentile.removeprefix("p")) / 100 if percentile.startswith("p") else None
    except InvalidOperation:
        return None
    if value is None or not value.is_finite() or not 0 <= value <= 1:
        return None
    return format(value.normalize(), "f")


def latency_quantiles(latency: Mapping[str, Mapping[str, float]], commands: list[CommandStat]
                      ) -> dict[str, dict[str, float]]:
    """command -> {quantile: seconds} for the exported commands (``__other__`` has none: percentiles do not add)."""
    out: dict[str, dict[str, float]] = {}
    for stat in commands:
        values = latency.get(stat.command)
        if not values:
            continue
        kept = {q: usec / 1e6 for p, usec in values.items() if (q := quantile(p)) is not None}
        if kept:
            out[stat.command] = dict(list(kept.items())[:MAX_PERCENTILES])
    return out
