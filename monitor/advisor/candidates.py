"""Index candidates from predicate usage, and the workload-level choice among them.

A candidate is built per table reference: equality keys first (``=``, ``IN``,
``= ANY``, join keys; low-cardinality columns last so candidates of several
statements share prefixes), then one range key, or the ORDER BY keys when the
query has a LIMIT, or the GROUP BY keys. Candidates an existing valid index
already serves are dropped, and so are small tables.

Each key remembers why it is in the index (its role), so the advice can say in
one line why the columns come in this order. The choice among candidates is
made across the workload in ``selection.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from collectors.postgres.statements import StatementStat

from .catalog import Catalog, Index, Table, key_signature
from .ddl import create_index
from .query_analysis import Key, StatementAnalysis, TableUsage
from .settings import Thresholds

Role = Literal["equality", "in", "join", "range", "order", "group"]
_ROLE_TEXT: dict[str, str] = {
    "equality": "compared with =", "in": "compared with IN / = ANY", "join": "a join key",
    "range": "a range (<, >, BETWEEN)", "order": "the ORDER BY of a LIMIT query", "group": "the GROUP BY",
}


@dataclass
class Candidate:
    table: Table
    keys: tuple[tuple[Key, bool], ...]  # (key, descending)
    n_equality: int
    queryids: set[int] = field(default_factory=set)
    roles: tuple[Role, ...] = ()  # per key, why it is there (empty: unknown)
    low_cardinality: frozenset[str] = frozenset()  # equality keys moved after the selective ones

    def order_reason(self) -> str:
        """One line: why the columns are in this order."""
        if not self.roles:
            return "equality columns first, then the range or sort column"
        parts: list[str] = []
        eq = [k.text for k, _ in self.keys[: self.n_equality]]
        if eq:
            selective = [c for c in eq if c not in self.low_cardinality]
            low = [c for c in eq if c in self.low_cardinality]
            kinds = sorted({_ROLE_TEXT[r] for r in self.roles[: self.n_equality]})
            text = f"{', '.join(selective or low)} first ({' and '.join(kinds)}: every lookup fixes it)"
            if selective and low:
                text += f", then {', '.join(low)} (few distinct values: the prefix is shared by more statements)"
            parts.append(text)
        tail = list(zip(self.keys[self.n_equality:], self.roles[self.n_equality:], strict=False))
        if tail:
            role = tail[0][1]
            cols = ", ".join(k.text + (" DESC" if d else "") for (k, d), _ in tail)
            if role == "range":
                parts.append(f"then {cols} ({_ROLE_TEXT[role]}: a range can only use the last column it reaches)")
            elif role == "order":
                parts.append(f"then {cols} ({_ROLE_TEXT[role]}: rows come out in order, the scan stops at the LIMIT)")
            else:
                parts.append(f"then {cols} ({_ROLE_TEXT[role]}: rows come out grouped)")
        return "; ".join(parts) + "."

    @property
    def signature(self) -> tuple[int, tuple[tuple[str, bool], ...]]:
        return self.table.oid, tuple((key_signature(k), d) for k, d in self.keys)

    @property
    def columns(self) -> list[str]:
        return [k.text + (" DESC" if d else "") for k, d in self.keys]

    def ddl(self) -> str:
        return create_index(self.table.schema, self.table.name, list(self.keys))

    def hypothetical_sql(self) -> str:
        return self.ddl().replace("CREATE INDEX CONCURRENTLY", "CREATE INDEX").rstrip(";")


@dataclass
class Workload:
    """Statements that can be analyzed, with the per-table statements they touch."""

    items: list[tuple[StatementStat, StatementAnalysis]]
    # queryid -> the text to plan, when it differs from the statement's own (see normalize.py)
    planned_texts: dict[int, str] = field(default_factory=dict)

    def planned(self, stat: StatementStat, analysis: StatementAnalysis) -> tuple[str, int]:
        """(text, number of parameters) to EXPLAIN for a statement."""
        return self.planned_texts.get(stat.queryid, stat.query), analysis.n_params

    def on_table(self, table: Table, cat: Catalog) -> list[tuple[StatementStat, StatementAnalysis]]:
        out = []
        for stat, analysis in self.items:
            if analysis.kind == "insert":
                continue
            if any(cat.table(u.table) is table for u in analysis.usages):
                out.append((stat, analysis))
        return out


def _is_low(key: Key, table: Table, settings: Thresholds) -> bool:
    distinct = None if key.is_expression else table.distinct_values(key.text)
    return distinct is not None and distinct <= settings.low_selectivity_max_distinct


def _equality_keys(usage: TableUsage, table: Table, settings: Thresholds) -> list[tuple[Key, Role]]:
    keys: list[tuple[Key, Role]] = []
    for bucket, role in ((usage.equality, "equality"), (usage.in_list, "in"), (usage.joins, "join")):
        for key in bucket:
            if all(key != k for k, _ in keys):
                keys.append((key, role))  # type: ignore[arg-type]
    # stable: appearance order, low-cardinality keys last
    return sorted(keys, key=lambda kr: _is_low(kr[0], table, settings))


def candidates_for_usage(usage: TableUsage, table: Table, settings: Thresholds) -> list[Candidate]:
    eq = _equality_keys(usage, table, settings)
    eq_keys = [k for k, _ in eq]
    tail: list[tuple[Key, bool]] = []
    tail_role: Role = "range"
    if usage.ranges:
        tail = [(usage.ranges[0], False)]
    elif usage.order_by and usage.limited:
        # All-descending order is served by a backward scan of an ascending index.
        all_desc = all(d for _, d in usage.order_by)
        tail, tail_role = [(k, d and not all_desc) for k, d in usage.order_by], "order"
    elif usage.group_by:
        tail, tail_role = [(k, False) for k in usage.group_by], "group"
    tail = [(k, d) for k, d in tail if k not in eq_keys]
    low = frozenset(k.text for k in eq_keys if _is_low(k, table, settings))
    out = []
    eq_part: list[tuple[tuple[Key, bool], Role]] = [((k, False), r) for k, r in eq]
    tail_part: list[tuple[tuple[Key, bool], Role]] = [(kd, tail_role) for kd in tail]
    for parts in (eq_part + tail_part, eq_part):
        parts = parts[: settings.max_index_columns]
        if parts:
            out.append(Candidate(table, tuple(kd for kd, _ in parts), min(len(eq), len(parts)),
                                 roles=tuple(r for _, r in parts), low_cardinality=low))
    if not eq and not tail:
        return []
    return out


def served_by(candidate: Candidate, indexes: Sequence[Index]) -> Index | None:
    """An existing valid, non-partial index whose leading keys already give this access path."""
    n_eq = candidate.n_equality
    eq = {key_signature(k) for k, _ in candidate.keys[:n_eq]}
    tail = [key_signature(k) for k, _ in candidate.keys[n_eq:]]
    for index in indexes:
        if not index.is_valid or index.predicate is not None or index.method != "btree":
            continue
        sig = index.key_signature()
        if len(sig) >= len(eq) + len(tail) and set(sig[:n_eq]) == eq and list(sig[n_eq:n_eq + len(tail)]) == tail:
            return index
    return None


def build_candidates(workload: Workload, cat: Catalog, settings: Thresholds) -> list[Candidate]:
    found: dict[object, Candidate] = {}
    for stat, analysis in workload.items:
        for usage in analysis.usages:
            table = cat.table(usage.table)
            if table is None or table.rows < settings.min_table_rows:
                continue
            indexes = cat.indexes_of(table)
            for cand in candidates_for_usage(usage, table, settings):
                if served_by(cand, indexes) is not None:
                    continue
                known = found.setdefault(cand.signature, cand)
                known.queryids.add(stat.queryid)
    return list(found.values())


