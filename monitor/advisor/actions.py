"""The plan in the output contract: ordered actions, what each relies on, and what was held back.

JSON shape (the report's ``plan`` key)::

    {"actions": [{"order", "action", "table", "relid"?, "schema"?, "relname"?, "steps", "reason", "checked",
                  "kinds", "creates"?, "drops"?, "supersedes"?, "replaced_by"?, "relies_on"?,
                  "statements_using"?}, ...],
     "held_back": [{"subject", "kind", "reason", "judged_from"?}, ...],
     "drop_check", "summary"}

``action`` is ``create``, ``drop`` or ``replace`` (create the new index, then
drop the old one, in that order: ``steps`` are the DDL in the order to run).
A drop's ``replaced_by`` names the index that serves its lookups afterwards (an
existing one the plan keeps, or one an earlier action creates); no action drops
an index another action relies on. Keys are present only where they apply.
``table`` is the display text ``schema.table``; ``relid`` (the table's oid),
``schema`` and ``relname`` name it as findings do, and the oid is what an
action is matched to its table by (a rename keeps it, names may hold dots).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from .catalog import TableId

ActionKind = Literal["create", "drop", "replace"]
ACTION_KINDS: tuple[ActionKind, ...] = ("create", "drop", "replace")


def _rounded(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


@dataclass
class ServedStatement:
    """A statement a new index serves, with its plans before and after the whole plan."""

    queryid: int
    query: str  # normalized text, truncated (untrusted)
    calls: int
    mean_exec_seconds: float
    cost_before: float
    cost_after: float | None = None
    plan_before: str = ""  # compact node summary
    plan_after: str = ""
    plan_before_text: str = ""  # the whole plan, indented
    plan_after_text: str = ""
    saved_seconds_per_hour: float | None = None  # estimate: calls/h x mean x fraction of cost removed
    # queryids of its variants (one pglast fingerprint: IN lists of other lengths), whose calls are added in
    variants: list[int] = field(default_factory=list)

    @property
    def cost_removed_ratio(self) -> float | None:
        if self.cost_after is None or self.cost_before <= 0:
            return None
        return max(0.0, 1 - self.cost_after / self.cost_before)

    def to_json_dict(self) -> dict[str, Any]:
        out = {k: _rounded(v) for k, v in self.__dict__.items() if v is not None and v != "" and v != []}
        removed = self.cost_removed_ratio
        if removed is not None:
            out["cost_removed_ratio"] = round(removed, 4)
        return out


@dataclass
class NewIndex:
    """An index an action creates, with the evidence an engineer acts on."""

    table: str
    columns: list[str]
    ddl: str
    why_this_order: str = ""
    predicate: str | None = None  # a partial index's WHERE
    index_size_bytes: int | None = None  # hypopg_relation_size (HypoPG ignores btree deduplication)
    verified: str | None = None  # "hypopg" | "heuristic"
    statements: list[ServedStatement] = field(default_factory=list)
    table_writes_per_hour: float | None = None  # inserts + updates
    write_overhead_ratio: float | None = None  # index entry size / row size (pganalyze's definition)
    saved_seconds_per_hour: float | None = None

    @property
    def label(self) -> str:
        where = f" WHERE {self.predicate}" if self.predicate else ""
        return f"{self.table} ({', '.join(self.columns)}){where}"

    @property
    def write_overhead_rows_per_hour(self) -> float | None:
        if self.table_writes_per_hour is None or self.write_overhead_ratio is None:
            return None
        return self.table_writes_per_hour * self.write_overhead_ratio

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"table": self.table, "columns": list(self.columns), "ddl": self.ddl}
        for name in ("predicate", "why_this_order", "index_size_bytes", "verified", "table_writes_per_hour",
                     "write_overhead_ratio", "write_overhead_rows_per_hour", "saved_seconds_per_hour"):
            value = getattr(self, name)
            if value is not None and value != "":
                out[name] = _rounded(value)
        out["statements"] = [s.to_json_dict() for s in self.statements]
        return out


@dataclass
class Action:
    order: int
    action: ActionKind
    table: str
    reason: str
    kinds: list[str]  # the finding kinds it carries out
    checked: str  # how the plan checked it (see Plan.drop_check and docs/advisor.md)
    creates: list[NewIndex] = field(default_factory=list)
    drops: list[str] = field(default_factory=list)  # qualified names of existing indexes
    drop_ddl: list[str] = field(default_factory=list)
    supersedes: list[str] = field(default_factory=list)  # existing indexes a create makes redundant
    replaced_by: str | None = None  # for a drop: what serves the dropped index's lookups afterwards
    relies_on: list[str] = field(default_factory=list)  # indexes that must stay (or be created first)
    statements_using: list[int] = field(default_factory=list)  # queryids whose plans use a dropped index
    benefit: float = 0.0  # ordering key, not in the JSON
    table_id: TableId | None = None  # the table by oid (how it is matched) and (schema, name); ``table`` displays it

    def concerns(self, relid: int) -> bool:
        """Whether it acts on the table whose oid is ``relid``."""
        return self.table_id is not None and self.table_id.relid == relid

    @property
    def steps(self) -> list[str]:
        """The DDL in the order to run it: every create before every drop."""
        return [i.ddl for i in self.creates] + list(self.drop_ddl)

    @property
    def saved_seconds_per_hour(self) -> float | None:
        values = [i.saved_seconds_per_hour for i in self.creates if i.saved_seconds_per_hour is not None]
        return sum(values) if values else None

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"order": self.order, "action": self.action, "table": self.table,
                               "steps": self.steps, "reason": self.reason, "checked": self.checked,
                               "kinds": list(self.kinds)}
        if self.table_id is not None:
            out |= {"relid": self.table_id.relid, "schema": self.table_id.schema, "relname": self.table_id.name}
        if self.creates:
            out["creates"] = [i.to_json_dict() for i in self.creates]
        for name in ("drops", "supersedes", "relies_on", "statements_using"):
            value = getattr(self, name)
            if value:
                out[name] = list(value)
        if self.replaced_by:
            out["replaced_by"] = self.replaced_by
        saved = self.saved_seconds_per_hour
        if saved is not None:
            out["saved_seconds_per_hour"] = round(saved, 6)
        return out


@dataclass
class HeldBack:
    """Something the plan does not do, and why (a finding it does not act on, a rejected candidate)."""

    subject: str
    kind: str
    reason: str
    judged_from: datetime | None = None  # when the time that holds it back will have passed

    def to_json_dict(self) -> dict[str, Any]:
        out = {"subject": self.subject, "kind": self.kind, "reason": self.reason}
        if self.judged_from is not None:
            out["judged_from"] = self.judged_from.replace(microsecond=0).isoformat()
        return out


COVERAGE_STATUSES = ("action", "served", "below_threshold", "write_cost", "over_budget", "unplannable",
                     "no_candidate", "not_costed", "not_analyzed")


@dataclass
class StatementReason:
    """Where a statement with a notable share of the database's statement time ends up: an action, or why none."""

    queryid: int
    query: str  # normalized text, truncated (untrusted)
    calls: int
    share_of_time: float  # of the execution time of every statement read (variants added up)
    status: str  # one of COVERAGE_STATUSES
    reason: str
    action: int | None = None  # the order of the action that serves it
    variants: list[int] = field(default_factory=list)  # the other queryids of its group (one fingerprint)

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"queryid": self.queryid, "query": self.query, "calls": self.calls,
                               "share_of_time": round(self.share_of_time, 4), "status": self.status,
                               "reason": self.reason}
        if self.action is not None:
            out["action"] = self.action
        if self.variants:
            out["variants"] = list(self.variants)
        return out


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    held_back: list[HeldBack] = field(default_factory=list)
    # How drops were checked: "hypopg_hide_index" (HypoPG >= 1.4) or "catalog and statements"
    # (HypoPG < 1.4 or none: scans, covering indexes, and the statements whose plans use the index)
    drop_check: str = "catalog and statements"
    checked_as_whole: bool = False  # the final index set was costed together (HypoPG)
    statements_checked: int = 0

    def action(self, order: int) -> Action | None:
        return next((a for a in self.actions if a.order == order), None)

    def served_by(self) -> dict[int, Action]:
        """The action whose new index serves each statement (by queryid, its variants too): the one that speeds it
        up."""
        return {q: a for a in self.actions for n in a.creates for st in n.statements
                for q in (st.queryid, *st.variants)}

    def to_json_dict(self) -> dict[str, Any]:
        saved = [a.saved_seconds_per_hour for a in self.actions if a.saved_seconds_per_hour is not None]
        return {
            "actions": [a.to_json_dict() for a in self.actions],
            "held_back": [h.to_json_dict() for h in self.held_back],
            "drop_check": self.drop_check,
            "summary": {
                "creates": sum(len(a.creates) for a in self.actions),
                "drops": sum(len(a.drops) for a in self.actions),
                "replaces": sum(1 for a in self.actions if a.action == "replace"),
                "held_back": len(self.held_back),
                "checked_as_whole": self.checked_as_whole,
                "statements_checked": self.statements_checked,
                "saved_seconds_per_hour": round(sum(saved), 6) if saved else None,
            },
        }
