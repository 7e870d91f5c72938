"""Every kind of finding the advisor reports, in one registry.

The advice metric (one series per kind, zero included), the UI, the
Markdown/HTML/JSON reports and the docs derive from it: a new kind is one
entry here plus its section in ``docs/advisor.md`` (the anchor below). A
``Finding`` of a kind missing here cannot be made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Group = Literal["index", "pattern"]  # about the indexes (add/drop), or about statements (fix the code)


@dataclass(frozen=True)
class FindingKind:
    name: str
    title: str
    meaning: str  # one line for people: what the finding says
    anchor: str  # section of docs/advisor.md
    group: Group = "index"


KINDS: dict[str, FindingKind] = {k.name: k for k in (
    FindingKind("missing_index", "Missing index",
                "statements would be cheaper with this index (HypoPG what-if plans, or a heuristic without HypoPG)",
                "missing_index"),
    FindingKind("n_plus_one", "N+1 query pattern",
                "one row looked up by key very many times: a lazy-loaded relationship in a loop", "n_plus_one",
                "pattern"),
    FindingKind("slow_statement", "Slow statement", "a statement's mean execution time is above the threshold",
                "slow_statement", "pattern"),
    FindingKind("statement_regression", "Statement regression",
                "a statement's mean time rose several-fold: after an index appeared or vanished on its table, "
                "or against its own baseline (a deploy, a plan change)", "statement_regression", "pattern"),
    FindingKind("invalid_index", "Invalid index",
                "an index left invalid (a failed CREATE INDEX CONCURRENTLY): maintained, never used", "invalid_index"),
    FindingKind("duplicate_index", "Duplicate index", "same columns, predicate and method as another index",
                "duplicate_index"),
    FindingKind("redundant_index", "Redundant index", "a leading prefix of another index that serves the same lookups",
                "redundant_index"),
    FindingKind("unused_index", "Unused index", "never scanned over statistics old enough to tell", "unused_index"),
    FindingKind("low_selectivity_index", "Low-selectivity index",
                "its leading column has so few distinct values that lookups read much of the table",
                "low_selectivity_index"),
)}


def kind(name: str) -> FindingKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"finding kind {name!r} is not in monitor/advisor/kinds.py") from None


def title(name: str) -> str:
    return kind(name).title


def pattern_kinds() -> tuple[str, ...]:
    return tuple(k.name for k in KINDS.values() if k.group == "pattern")
