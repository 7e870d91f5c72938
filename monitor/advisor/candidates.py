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

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from collectors.postgres.statements import StatementStat

from .catalog import Catalog, Index, Table, key_signature
from .ddl import create_index
from .query_analysis import Key, StatementAnalysis, TableUsage
from .settings import Thresholds


@dataclass(frozen=True)
class Variant:
    """A statement with one parameter replaced by a value it is called with, and the share of its calls."""

    text: str
    n_params: int
    weight: float
    label: str  # e.g. status = 'pending'


# A btree built by CREATE INDEX (nbtsort.c), 8 kB pages: a leaf holds 8,152 bytes after its header and special
# space and takes tuples while 819 are free (fillfactor 90); a posting-list tuple is at most a tenth of a page.
LEAF_ROOM = 8152.0
LEAF_RESERVE = 819.0
POSTING_MAX = 812.0


def _maxalign(width: float) -> float:
    return float(-(-width // 8) * 8)


# A hash index stores each row's 4-byte hash code (a 16-byte tuple and its 4-byte line pointer), fills its
# bucket pages to 75 % when built, and has a power of two of buckets (hashbuild, _hash_init).
HASH_ENTRY = 20.0
HASH_FILL = 8192 * 0.75


def hash_bytes(rows: float) -> float:
    """The size CREATE INDEX … USING hash gives on ``rows`` rows of distinct enough keys (no overflow pages):
    the buckets, the metapage and one bitmap page. Up to 512 buckets their number doubles; beyond, it grows by
    quarters of the last doubling (the split points' phases)."""
    wanted = max(2.0, rows / (HASH_FILL // HASH_ENTRY))
    half = float(1 << max(0, math.ceil(math.log2(wanted)) - 1))
    buckets = 2 * half if half < 512 else half + math.ceil((wanted - half) / (half / 4)) * (half / 4)
    return (buckets + 2) * 8192.0


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
    predicate: str | None = None  # a partial index's WHERE clause (SQL text)
    # Indexes advised together with this one: the other branches of an OR (a BitmapOr needs them all).
    companions: tuple[Candidate, ...] = ()
    why: str = ""  # an extra sentence for people: the OR, the skewed value
    predicate_fraction: float = 1.0  # of the table's rows a partial index holds (pg_stats)
    method: str = "btree"  # "hash" only as a smaller form of a one-column equality lookup (budget.py)

    def estimated_bytes(self) -> float:
        """A btree size estimate that, unlike HypoPG 1.3.1's, counts deduplication (PostgreSQL 13+) where the
        keys' types allow it (``Column.deduplicates``): each distinct key is stored once, with its rows' 6-byte
        heap pointers in posting lists (at most ``POSTING_MAX`` bytes each, so a key with many rows has
        several); every tuple MAXALIGNed with its 4-byte line pointer; whole tuples per leaf page, filled to
        90 % as CREATE INDEX fills them, plus the upper levels and the metapage."""
        if self.method == "hash":
            return hash_bytes(self.table.rows * self.predicate_fraction)
        total = 0.0
        for member in self.members:
            rows = member.table.rows * member.predicate_fraction
            width = member.table.entry_width([k for k, _ in member.keys]) or 8.0 + 8 * len(member.keys)
            base = _maxalign(width)
            distinct = 1.0
            for key, _ in member.keys:
                d = None if key.is_expression else member.table.distinct_values(key.text)
                distinct *= d if d else rows
            distinct = min(max(distinct, 1.0), max(rows, 1.0))
            per_key = rows / distinct
            if per_key < 1.5 or not member.table.deduplicates([k for k, _ in member.keys]):  # one tuple per row
                tuples, size = rows, base + 4
            else:  # posting lists of at most POSTING_MAX bytes
                postings = -(-per_key // max(1.0, (POSTING_MAX - base) // 6))
                tuples, size = distinct * postings, _maxalign(base + 6 * per_key / postings) + 4
            room = LEAF_ROOM - base - 4  # a leaf's high key
            per_page = max(1.0, (room - LEAF_RESERVE) // size)  # filled to 90 %
            total += -(-tuples // per_page) * 8192 * 1.01 + 8192  # leaves; upper levels; metapage
        return total

    @property
    def members(self) -> tuple[Candidate, ...]:
        return (self, *self.companions)

    def order_reason(self) -> str:
        """One line: why the columns are in this order (and why this index at all, for an OR or a skew)."""
        reason = self._order_reason()
        return f"{reason.rstrip('.')}; {self.why}." if self.why else reason

    def _order_reason(self) -> str:
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
            cols = f"then {cols}" if parts else cols  # "then" only after a first column
            if role == "range":
                parts.append(f"{cols} ({_ROLE_TEXT[role]}: a range can only use the last column it reaches)")
            elif role == "order":
                parts.append(f"{cols} ({_ROLE_TEXT[role]}: rows come out in order, the scan stops at the LIMIT)")
            else:
                parts.append(f"{cols} ({_ROLE_TEXT[role]}: rows come out grouped)")
        return "; ".join(parts) + "."

    @property
    def key_signature(self) -> tuple[tuple[str, bool], ...]:
        return tuple((key_signature(k), d) for k, d in self.keys)

    @property
    def signature(self) -> tuple[object, ...]:
        own: tuple[object, ...] = (self.table.oid, self.key_signature, self.predicate or "")
        own += (self.method,) if self.method != "btree" else ()
        return own if not self.companions else (own, *(c.signature for c in self.companions))

    @property
    def columns(self) -> list[str]:
        return [k.text + (" DESC" if d else "") for k, d in self.keys]

    @property
    def label(self) -> str:
        where = f" WHERE {self.predicate}" if self.predicate else ""
        using = f" USING {self.method}" if self.method != "btree" else ""
        return f"{self.table.qualified}{using} ({', '.join(self.columns)}){where}"

    def ddl(self) -> str:
        return create_index(self.table.schema, self.table.name, list(self.keys), method=self.method,
                            where=self.predicate, concurrently=not self.table.partitioned)

    def hypothetical_sql(self) -> str:
        return self.ddl().replace("CREATE INDEX CONCURRENTLY ", "CREATE INDEX ").rstrip(";")


@dataclass
class Workload:
    """Statements that can be analyzed, with the per-table statements they touch."""

    items: list[tuple[StatementStat, StatementAnalysis]]
    # queryid -> the text to plan, when it differs from the statement's own (see normalize.py)
    planned_texts: dict[int, str] = field(default_factory=dict)
    rewrites: dict[int, tuple[str, ...]] = field(default_factory=dict)  # queryid -> the rules that made it
    # queryid -> the values a skewed column is compared with, weighted by how often (skew.py)
    variants: dict[int, list[Variant]] = field(default_factory=dict)
    # queryid -> why a write has nothing to plan (INSERT … VALUES reads no table: no index speeds it up)
    unread: dict[int, str] = field(default_factory=dict)

    def planned(self, stat: StatementStat, analysis: StatementAnalysis) -> tuple[str, int]:
        """(text, number of parameters) to EXPLAIN for a statement."""
        return self.planned_texts.get(stat.queryid, stat.query), analysis.n_params

    def on_table(self, table: Table, cat: Catalog) -> list[tuple[StatementStat, StatementAnalysis]]:
        out = []
        for stat, analysis in self.items:
            if analysis.kind == "insert" and "read_side" not in self.rewrites.get(stat.queryid, ()):
                continue  # INSERT … VALUES; an INSERT … SELECT is planned through its SELECT (writes.py)
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
    order: list[tuple[Key, bool]] = []
    if usage.order_by and usage.limited:
        # All-descending order is served by a backward scan of an ascending index.
        all_desc = all(d for _, d in usage.order_by)
        order = [(k, d and not all_desc) for k, d in usage.order_by if k not in eq_keys]
    if usage.ranges:
        tail = [(usage.ranges[0], False)]
    elif order:
        tail, tail_role = order, "order"
    elif usage.group_by:
        tail, tail_role = [(k, False) for k in usage.group_by], "group"
    tail = [(k, d) for k, d in tail if k not in eq_keys]
    low = frozenset(k.text for k in eq_keys if _is_low(k, table, settings))
    out = []
    eq_part: list[tuple[tuple[Key, bool], Role]] = [((k, False), r) for k, r in eq]
    tail_part: list[tuple[tuple[Key, bool], Role]] = [(kd, tail_role) for kd in tail]
    shapes = [eq_part + tail_part, eq_part]
    if eq_part and order and tail_role == "range" and [k for k, _ in order] != [k for k, _ in tail]:
        # A range and an ORDER BY ... LIMIT on other columns: rows in order, the scan stops at the LIMIT.
        shapes.append(eq_part + [(kd, "order") for kd in order])
    # In a join, the filters alone (for a hash join that reads this table once) and the join keys alone
    # (the inner side of a nested loop) are candidates too: the whole statement's cost decides.
    filters = [p for p in eq_part if p[1] != "join"]
    joins = [p for p in eq_part if p[1] == "join"]
    if joins and (filters or tail_part):
        shapes += [filters + tail_part, joins]
    for parts in shapes:
        parts = parts[: settings.max_index_columns]
        n_eq = sum(1 for _, r in parts if r in ("equality", "in", "join"))
        if parts:
            out.append(Candidate(table, tuple(kd for kd, _ in parts), n_eq,
                                 roles=tuple(r for _, r in parts), low_cardinality=low))
    if not eq and not tail:
        return []
    return out


def or_candidates(usage: TableUsage, table: Table, settings: Thresholds, indexes: Sequence[Index]) -> list[Candidate]:
    """One bundle per OR group: the widest candidate of every disjunct no existing index serves yet."""
    out = []
    for parts in usage.or_groups:
        members: dict[object, Candidate] = {}
        for part in parts:
            own = candidates_for_usage(part, table, settings)
            if not own:
                break
            if any(served_by(c, indexes) is not None for c in own):
                continue  # this branch already has an index: the BitmapOr uses it
            members.setdefault(own[0].signature, own[0])
        else:
            if not members:
                continue
            first, *rest = members.values()
            if rest:
                names = " OR ".join(f"({', '.join(m.columns)})" for m in members.values())
                first = Candidate(first.table, first.keys, first.n_equality, set(), first.roles,
                                  first.low_cardinality, companions=tuple(rest),
                                  why=f"the statement ORs its conditions ({names}): a BitmapOr needs an index on "
                                      "every branch, so they are advised together")
            out.append(first)
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
            for cand in [*candidates_for_usage(usage, table, settings),
                         *or_candidates(usage, table, settings, indexes)]:
                if not cand.companions and served_by(cand, indexes) is not None:
                    continue
                known = found.setdefault(cand.signature, cand)
                known.queryids.add(stat.queryid)
    return list(found.values())


