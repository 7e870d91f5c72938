"""Workload patterns: N+1 lookups and slow statements."""

from __future__ import annotations

from dataclasses import dataclass

from collectors.postgres.statements import StatementStat

from .catalog import Catalog, Table
from .findings import Finding
from .query_analysis import StatementAnalysis
from .settings import Thresholds


@dataclass(frozen=True)
class KeyLookup:
    """A frequent lookup of about one row of one table by its key: a child, if another statement's rows drive it.
    Alone it is just a hot lookup (every OLTP workload has them), never a finding."""

    stat: StatementStat
    table: Table
    key_kind: str  # "primary or unique key" | "foreign key"
    key: tuple[str, ...]
    share: float  # of all calls in the window


def key_lookups(items: list[tuple[StatementStat, StatementAnalysis]], cat: Catalog, settings: Thresholds,
                total_calls: int) -> list[KeyLookup]:
    """Very frequent single-row lookups of one table by a primary, unique or foreign key."""
    out = []
    for stat, analysis in items:
        if analysis.kind != "select" or len(analysis.usages) != 1 or total_calls <= 0:
            continue
        share = stat.calls / total_calls
        if stat.calls < settings.n_plus_one_min_calls or share < settings.n_plus_one_min_share:
            continue
        if stat.rows_per_call > settings.n_plus_one_max_rows_per_call:
            continue
        usage = analysis.usages[0]
        table = cat.table(usage.table)
        if table is None or usage.ranges or usage.joins or usage.in_list or not usage.equality:
            continue
        if any(k.is_expression for k in usage.equality):
            continue
        cols = {k.text for k in usage.equality}
        found = next((("primary or unique key", key) for key in table.unique_keys if set(key) == cols), None)
        if found is None:
            found = next((("foreign key", key) for key in table.foreign_keys if set(key) == cols), None)
        if found is not None:
            out.append(KeyLookup(stat, table, found[0], tuple(found[1]), share))
    return out


@dataclass(frozen=True)
class Parent:
    """The statement whose rows a key lookup follows, and the evidence."""

    stat: StatementStat
    per_call: float  # child calls per parent call: the length of the loop
    per_row: float  # child calls per parent row
    follows_rows: bool  # per_row is at least n_plus_one_min_rows_followed
    recurring: bool  # the same pair at the same rate in the previous window (the service)


class NPlusOne:
    """N+1 findings: a key lookup that runs once per row of another statement, its parent.

    ``pg_stat_statements`` has counters, not call stacks, so the evidence is in the counters of one window:
    the parent reads a table related to the child's by a foreign key (the child looks up what a parent row
    references, or what references it), each parent call is followed by several child calls (a loop,
    ``n_plus_one_min_loop``) and never by more than one per row the parent returned, and either the child's
    calls follow the parent's rows (at least ``n_plus_one_min_rows_followed`` of them) or the pair recurs at
    the same calls per parent call as in the previous window (``n_plus_one_rate_tolerance``; the service keeps
    the pairs of the previous window). A key lookup without such a parent is no finding: pgbench's
    ``SELECT abalance ... WHERE aid = $1``, once per transaction, has none.
    """

    def __init__(self, settings: Thresholds) -> None:
        self.settings = settings
        self._rates: dict[tuple[int, int], float] = {}  # (child, parent) -> child calls per parent call

    def findings(self, items: list[tuple[StatementStat, StatementAnalysis]], cat: Catalog,
                 total_calls: int) -> list[Finding]:
        rates: dict[tuple[int, int], float] = {}
        out = []
        for child in key_lookups(items, cat, self.settings, total_calls):
            parent = self._parent(child, items, cat, rates)
            if parent is not None:
                out.append(_n_plus_one(child, parent))
        self._rates = rates
        return out

    def _parent(self, child: KeyLookup, items: list[tuple[StatementStat, StatementAnalysis]], cat: Catalog,
                rates: dict[tuple[int, int], float]) -> Parent | None:
        s = self.settings
        related = _parent_tables(child, cat)
        calls = child.stat.calls
        found: list[Parent] = []
        for stat, analysis in items:
            if stat.queryid == child.stat.queryid or analysis.kind != "select" or stat.calls <= 0 or stat.rows <= 0:
                continue
            if not related & {t.oid for t in (cat.table(r) for r in analysis.relations) if t is not None}:
                continue
            per_call = calls / stat.calls
            # once per row at most; a loop may straddle the window's edges by a parent call's rows
            if per_call < s.n_plus_one_min_loop or calls > stat.rows * 1.1 + stat.rows_per_call:
                continue
            pair = (child.stat.queryid, stat.queryid)
            rates[pair] = per_call
            before = self._rates.get(pair)
            recurring = before is not None and abs(per_call - before) <= s.n_plus_one_rate_tolerance * before
            per_row = calls / stat.rows
            follows = per_row >= s.n_plus_one_min_rows_followed
            if follows or recurring:
                found.append(Parent(stat, per_call, per_row, follows, recurring))
        # the parent whose rows the child follows most closely
        found.sort(key=lambda p: (abs(1 - p.per_row), -p.stat.rows, p.stat.queryid))
        return found[0] if found else None


def _parent_tables(child: KeyLookup, cat: Catalog) -> set[int]:
    """Tables whose rows lead to the child's lookups, by a foreign key: one that references the child's key (a
    many-to-one relationship walked per row) or the one the child's key references (one-to-many)."""
    key = set(child.key)
    out = set()
    for ref in cat.references:
        if ref.referenced == child.table.oid and set(ref.referenced_columns) == key:
            out.add(ref.table)
        if ref.table == child.table.oid and set(ref.columns) == key:
            out.add(ref.referenced)
    return out


def _n_plus_one(child: KeyLookup, parent: Parent) -> Finding:
    stat, p = child.stat, parent.stat
    how = (f"once for {100 * parent.per_row:.0f}% of the rows it returned" if parent.follows_rows else
           f"{parent.per_row:.2f} times per row it returned")
    if parent.recurring:
        how += ", at the same rate as in the previous window"
    return Finding(
        kind="n_plus_one", table=child.table.qualified, table_id=child.table.id,
        evidence=(f"Statement {stat.queryid} looks up {child.table.qualified} by its {child.key_kind} "
                  f"({', '.join(child.key)}) {stat.calls} times ({100 * child.share:.0f}% of all calls), "
                  f"{stat.rows_per_call:.2f} rows per call, {parent.per_call:.1f} times per call of statement "
                  f"{p.queryid} ({p.calls} calls, {p.rows} rows): {how}. A lazy-loaded relationship walked "
                  f"in a loop over that statement's rows: load it with them (selectinload/joinedload) or batch "
                  f"the lookups with = ANY($1)."),
        columns=list(child.key), queryids=[stat.queryid], calls=stat.calls,
        rows_per_call=round(stat.rows_per_call, 3), share_of_calls=round(child.share, 4),
        mean_exec_seconds=stat.mean_exec_seconds, benefit=float(stat.calls),
        query=stat.query[:1000], parent_queryid=p.queryid, parent_query=p.query[:1000],
    )


def slow_findings(
    items: list[tuple[StatementStat, StatementAnalysis | None]], cat: Catalog, settings: Thresholds,
    window: str,
) -> list[Finding]:
    findings = []
    for stat, analysis in items:
        if stat.calls < settings.slow_min_calls or stat.mean_exec_seconds < settings.slow_mean_seconds:
            continue
        on = next((t for t in map(cat.table, analysis.relations if analysis else []) if t is not None), None)
        findings.append(Finding(
            kind="slow_statement", table=on.qualified if on else "", table_id=on.id if on else None,
            evidence=(f"Statement {stat.queryid} took {stat.mean_exec_seconds * 1000:.0f} ms per call on "
                      f"average over {stat.calls} calls {window} (threshold "
                      f"{settings.slow_mean_seconds * 1000:.0f} ms)."),
            queryids=[stat.queryid], calls=stat.calls, mean_exec_seconds=stat.mean_exec_seconds,
            rows_per_call=round(stat.rows_per_call, 3), benefit=stat.exec_seconds * 1000,
            query=stat.query[:1000],
        ))
    return findings
