"""The advisor's output contract: findings, skipped statements and the report.

JSON shape (others build on it)::

    {"target", "generated_at", "stats_reset", "findings": [...], "skipped": [...], "time_base",
     "summary": {...}, "notes": [...], "plan": {...}, "outcomes": [...], "coverage": [...]}

A finding always has ``kind``, ``table`` and ``evidence``; the other keys are
present only where they apply (never ``null``). ``table`` is the display text
``schema.table``; a finding on a table also names it by ``relid`` (its oid),
``schema`` and ``relname``; the oid is how it is matched (a rename keeps it,
names may hold dots). An index finding the plan acts on names its step
(``action``, the action's ``order``); one it does not act on says why
(``held_back``). ``plan`` is in ``actions.py``, ``outcomes`` in
``outcomes.py``, a ``coverage`` entry (``StatementReason``) in ``actions.py``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .actions import Plan, StatementReason
from .catalog import TableId
from .kinds import KINDS, kind
from .outcomes import VERDICTS, Outcome

WRITE_REFUSED = "write without a read side to plan"  # the reason's prefix of a write writes.py cannot turn into a read

STATEMENT_PLANS_MAX = 500  # statements whose generic plan a report keeps (AdviceReport.statement_plans)
STATEMENT_PLAN_CHARS = 8000  # each plan's text is cut there (plans.text also stops at 60 lines)

_OPTIONAL = (
    "index", "columns", "ddl", "queryids", "verified", "cost_before", "cost_after",
    "index_size_bytes", "duplicate_of", "covered_by", "calls", "rows_per_call",
    "mean_exec_seconds", "share_of_calls", "scans", "query", "action", "held_back", "supersedes", "replaced_by",
    "parent_queryid", "parent_query",
)


@dataclass
class Finding:
    kind: str
    table: str
    evidence: str
    index: str | None = None
    columns: list[str] | None = None
    ddl: str | None = None
    queryids: list[int] | None = None
    verified: str | None = None  # "hypopg" | "heuristic"
    cost_before: float | None = None
    cost_after: float | None = None
    index_size_bytes: int | None = None
    duplicate_of: str | None = None
    covered_by: str | None = None
    calls: int | None = None
    rows_per_call: float | None = None
    mean_exec_seconds: float | None = None
    share_of_calls: float | None = None
    scans: int | None = None
    query: str | None = None  # normalized text (untrusted), for n_plus_one and slow_statement
    action: int | None = None  # the order of the plan action that carries it out
    held_back: str | None = None  # why the plan does not act on it
    supersedes: list[str] | None = None  # existing indexes a missing index makes redundant (a replace)
    replaced_by: str | None = None  # the index that serves a dropped index's lookups afterwards
    parent_queryid: int | None = None  # n_plus_one: the statement whose rows the lookups follow
    parent_query: str | None = None  # its normalized text (untrusted)
    table_id: TableId | None = None  # the table by oid and (schema, name); None: on no table the advisor knows
    index_oid: int | None = None  # an index finding's index, how the plan finds it (``index`` displays it); not JSON
    benefit: float = 0.0  # ordering key for people; not part of the JSON contract

    def __post_init__(self) -> None:
        kind(self.kind)  # raises for a kind the registry (kinds.py) lacks

    def concerns(self, relid: int) -> bool:
        """Whether it is on the table whose oid is ``relid`` (a finding on no known table concerns none)."""
        return self.table_id is not None and self.table_id.relid == relid

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "table": self.table, "evidence": self.evidence}
        if self.table_id is not None:
            out |= {"relid": self.table_id.relid, "schema": self.table_id.schema, "relname": self.table_id.name}
        for name in _OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                out[name] = round(value, 6) if isinstance(value, float) else value
        return out


@dataclass
class Skipped:
    """A statement the advisor could not parse or plan; counted, listed, never fatal."""

    queryid: int | None
    query: str
    reason: str
    calls: int = 0

    @property
    def category(self) -> str:
        """A bounded class of the reason (the metric's label): utility, parse, privilege, write, syntax, types,
        other."""
        reason = self.reason
        if reason.startswith("utility statement"):
            return "utility"
        if reason.startswith(WRITE_REFUSED):
            return "write"
        if reason.startswith("no privilege"):
            return "privilege"
        if not reason.startswith("cannot be planned"):
            return "parse"
        if "syntax error" in reason:
            return "syntax"
        if any(t in reason for t in ("is not unique", "does not exist", "could not determine", "must be type",
                                     "is of type", "cannot cast", "invalid input syntax")):
            return "types"
        return "other"

    def to_json_dict(self) -> dict[str, Any]:
        return {"queryid": self.queryid, "query": self.query, "reason": self.reason, "calls": self.calls,
                "category": self.category}


SKIP_CATEGORIES = ("utility", "parse", "privilege", "write", "syntax", "types", "other")
UNPLANNABLE_CATEGORIES = SKIP_CATEGORIES[1:]  # what the advice does not cover; utility statements need none


@dataclass
class VerificationStats:
    explains: int = 0
    seconds: float = 0.0
    budget_exhausted: bool = False
    mode: str = "hypopg"  # or "heuristic"


@dataclass(frozen=True)
class IndexEvent:
    """An index the advisor saw appear or vanish, and whether its plan had advised that."""

    at: datetime
    table: str  # schema.table, for display (the name when the change was seen)
    index: str
    change: str  # created, dropped
    advised: bool
    advised_at: datetime | None = None  # when that advice began, when it was advised
    table_oid: int | None = None  # how it is matched to its table; None: kept before the store had it, unresolved

    def concerns(self, relid: int | None, qualified: str) -> bool:
        """Whether it happened on the table ``relid``. An event kept before the store recorded oids (schema
        version 4) and left unresolved by its upgrade falls back to the name it was seen with."""
        if self.table_oid is not None:
            return self.table_oid == relid
        return self.table == qualified


@dataclass
class AdviceReport:
    target: str
    generated_at: datetime
    stats_reset: datetime | None
    findings: list[Finding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # degraded parts, in one line each
    statements_analyzed: int = 0
    statements_rewritten: int = 0  # planned in a rewritten form (normalize.py)
    statements_planned: int = 0  # known to plan (generic plan), this run or an earlier one
    candidates_refused: int = 0  # candidate indexes the server would not build (validate.py)
    time_base: str = "unknown"  # the window gains and write costs are measured over (rates.py)
    verification: VerificationStats = field(default_factory=VerificationStats)
    duration_seconds: float = 0.0
    plan: Plan = field(default_factory=Plan)
    outcomes: list[Outcome] = field(default_factory=list)
    # every statement at reason_min_share of the time or more: its action, or why it has none (coverage.py)
    coverage: list[StatementReason] = field(default_factory=list)
    # queryid -> its generic plan (the real indexes) as text, for the statement page; bounded, heaviest first;
    # not in the JSON contract (the plans in ``plan`` are the evidence of the advice)
    statement_plans: dict[int, str] = field(default_factory=dict)
    # the index changes seen on this target, oldest first, from the state store (advisor.state_dir): they outlive
    # restarts and the outcomes' 24 h; empty without a store; for the table pages, not in the JSON contract
    index_history: list[IndexEvent] = field(default_factory=list)

    def outcome_counts(self) -> dict[str, int]:
        """Statements in the reported outcomes by verdict, every verdict present (zero included)."""
        counts = Counter(s.verdict for o in self.outcomes for s in o.statements)
        return {v: counts.get(v, 0) for v in VERDICTS}

    def counts_by_kind(self) -> dict[str, int]:
        """Findings per kind, every kind present (zero included) for stable metric series."""
        counts = Counter(f.kind for f in self.findings)
        return {name: counts.get(name, 0) for name in KINDS}

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)

    def ordered_findings(self) -> list[Finding]:
        """By benefit, then kind order, then table and index names (stable output)."""
        rank = {k: i for i, k in enumerate(KINDS)}
        return sorted(
            self.findings,
            key=lambda f: (-f.benefit, rank.get(f.kind, 99), f.table, f.index or "", f.columns or []),
        )

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "generated_at": self.generated_at.isoformat(),
            "stats_reset": self.stats_reset.isoformat() if self.stats_reset else None,
            "findings": [f.to_json_dict() for f in self.ordered_findings()],
            "skipped": [s.to_json_dict() for s in self.skipped],
            "time_base": self.time_base,
            "summary": {
                "counts_by_kind": self.counts_by_kind(),
                "statements_analyzed": self.statements_analyzed,
                "statements_skipped": self.skipped_count,
                "statements_rewritten": self.statements_rewritten,
                "statements_planned": self.statements_planned,
                "candidates_refused": self.candidates_refused,
                "explains": self.verification.explains,
                "verification_seconds": round(self.verification.seconds, 3),
                "verification_mode": self.verification.mode,
                "budget_exhausted": self.verification.budget_exhausted,
                "duration_seconds": round(self.duration_seconds, 3),
                "outcome_statements": self.outcome_counts(),
            },
            "notes": list(self.notes),
            "plan": self.plan.to_json_dict(),
            "outcomes": [o.to_json_dict() for o in self.outcomes],
            "coverage": [c.to_json_dict() for c in self.coverage],
        }
