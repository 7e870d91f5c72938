"""Relative workload cost with HypoPG (Kossmann et al., VLDB 2020), the same ruler for every advisor.

``W(I) = sum over statements s of calls(s) x total cost of the generic plan of s with the hypothetical
indexes I``; relative cost = ``W(I) / W({})``. The workload is read from ``pg_stat_statements`` once
(``fetch_workload``: DML of one database, grouped by text, because psycopg sends a Python int as int2,
int4 or int8 and one text then has several queryids) and kept in memory, so the costing's own EXPLAINs
never count.

PostgreSQL 15 has no ``EXPLAIN (GENERIC_PLAN)``: each statement is prepared afresh
(``plan_cache_mode = force_generic_plan``, ``EXPLAIN EXECUTE`` with NULLs). Normalized texts that do not
prepare are rewritten by this module's own rules (``REWRITES``, then ``FALLBACK_REWRITES`` only where the
first do not suffice), independent of any advisor's normalization, so the ruler does not favour one.

Storage budgets (``cut_greedy``): marginal benefit per byte, re-evaluated after each pick, the same
post-hoc cut for every advisor (none of them orders its output by value per byte); ``cut_in_order`` keeps
the advisor's own order, for reference.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

REWRITES = [  # syntax PREPARE cannot parse at all
    ("typed_literal", re.compile(r"\b(date|timestamptz|timestamp|time)\s+\$(\d+)", re.I), r"$\2::\1"),
    ("interval_literal",
     re.compile(r"\binterval\s+\$(\d+)(\s+(?:year|month|day|hour|minute|second)s?\b)?", re.I), r"$\1::interval"),
]
FALLBACK_REWRITES = [  # untyped parameters the parser cannot resolve
    ("param_arith", re.compile(r"\$(\d+)\s*([-+*/])\s*\$(\d+)"), r"$\1::numeric \2 $\3::numeric"),
    ("case_params", re.compile(r"\bthen\s+\$(\d+)\s+else\s+\$(\d+)", re.I), r"THEN $\1::numeric ELSE $\2::numeric"),
]
NOISE = re.compile(r"\bpg_\w+|hypopg|information_schema|dbpulse_advisor", re.I)
DML = re.compile(r"^\s*(select|with|update|insert|delete)\b", re.I)
TAG = "bench_cost"


@dataclass
class Statement:
    text: str
    calls: int
    queryids: list[int]
    sql: str = ""  # what is prepared
    rewrites: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def n_params(self) -> int:
        return max((int(m) for m in re.findall(r"\$(\d+)", self.sql)), default=0)


def fetch_workload(conn: psycopg.Connection[Any]) -> list[Statement]:
    rows = conn.execute(
        "SELECT s.queryid, s.query, s.calls FROM pg_stat_statements s "
        "WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND s.toplevel "
        "ORDER BY s.calls DESC, s.queryid").fetchall()
    by_text: dict[str, Statement] = {}
    for queryid, text, calls in rows:
        if not DML.match(text) or NOISE.search(text):
            continue
        st = by_text.setdefault(text, Statement(text, 0, []))
        st.calls += int(calls)
        st.queryids.append(int(queryid))
    return sorted(by_text.values(), key=lambda s: -s.calls)


def _apply(rules: Sequence[tuple[str, re.Pattern[str], str]], text: str) -> tuple[str, list[str]]:
    used = []
    for name, rx, repl in rules:
        new = rx.sub(repl, text)
        if new != text:
            used.append(name)
            text = new
    return text, used


def plan_index_names(node: Any) -> set[str]:
    """Every index a JSON plan (or any part of it) names, subplans included."""
    out: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "Index Name" in item:
                out.add(str(item["Index Name"]))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return out


@dataclass
class Cost:
    total: float
    per_statement: list[float]
    sizes: dict[str, int]  # ddl -> hypopg_relation_size
    used: dict[str, list[str]]  # ddl -> statements whose plans use it


class Coster:
    """Costs a fixed workload under sets of hypothetical indexes (cached per set)."""

    def __init__(self, conn: psycopg.Connection[Any], workload: list[Statement]) -> None:
        self.conn = conn
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute("SELECT hypopg_reset()")
        self.statements: list[Statement] = []
        self.failed: list[Statement] = []
        for st in workload:
            st.sql, st.rewrites = _apply(REWRITES, st.text)
            st.error = self._probe(st.sql)
            if st.error:
                sql2, used2 = _apply(FALLBACK_REWRITES, st.sql)
                if used2 and not self._probe(sql2):
                    st.sql, st.error = sql2, None
                    st.rewrites += used2
            (self.failed if st.error else self.statements).append(st)
        self._cache: dict[frozenset[str], Cost] = {}
        self.base = self.cost([])

    def _probe(self, sql: str) -> str | None:
        try:
            self.plan(sql, max((int(m) for m in re.findall(r"\$(\d+)", sql)), default=0))
            return None
        except psycopg.Error as exc:
            return (str(exc).strip().splitlines() or [type(exc).__name__])[0]

    def plan(self, sql: str, n_params: int) -> dict[str, Any]:
        self.conn.execute(f"PREPARE {TAG} AS {sql}")  # type: ignore[arg-type]
        try:
            args = "(" + ", ".join(["NULL"] * n_params) + ")" if n_params else ""
            row = self.conn.execute(f"EXPLAIN (FORMAT JSON) EXECUTE {TAG}{args}").fetchone()  # type: ignore[arg-type]
        finally:
            self.conn.execute(f"DEALLOCATE {TAG}")  # type: ignore[arg-type]
        assert row is not None
        plan: dict[str, Any] = row[0][0]["Plan"]
        return plan

    def hypothetical(self, ddls: Iterable[str]) -> dict[str, tuple[str, int]]:
        """hypopg_reset, then the indexes; {hypopg index name: (ddl, size)}."""
        self.conn.execute("SELECT hypopg_reset()")
        out = {}
        for ddl in ddls:
            row = self.conn.execute(
                "SELECT indexname, hypopg_relation_size(indexrelid) FROM hypopg_create_index(%s)", (ddl,)).fetchone()
            assert row is not None
            out[str(row[0])] = (ddl, int(row[1]))
        return out

    def cost(self, ddls: Iterable[str]) -> Cost:
        key = frozenset(ddls)
        if key in self._cache:
            return self._cache[key]
        hypo = self.hypothetical(sorted(key))
        per, used = [], {}
        for st in self.statements:
            plan = self.plan(st.sql, st.n_params)
            per.append(float(plan["Total Cost"]))
            for name in plan_index_names(plan):
                if name in hypo:
                    used.setdefault(hypo[name][0], []).append(st.text[:60])
        self.conn.execute("SELECT hypopg_reset()")
        result = Cost(sum(st.calls * c for st, c in zip(self.statements, per, strict=True)), per,
                      {ddl: size for ddl, size in hypo.values()}, used)
        self._cache[key] = result
        return result

    def relative(self, ddls: Iterable[str]) -> float:
        return self.cost(ddls).total / self.base.total if self.base.total else 1.0


def cut_in_order(ddls: Sequence[str], sizes: Mapping[str, int], budget: float | None) -> list[str]:
    chosen, used = [], 0
    for d in ddls:
        if budget is not None and used + sizes[d] > budget:
            break
        chosen.append(d)
        used += sizes[d]
    return chosen


def cut_greedy(coster: Coster, ddls: Sequence[str], sizes: Mapping[str, int], budget: float | None) -> list[str]:
    """Add the index with the largest (W(S) - W(S+i)) / size(i) > 0 that fits; stop when none fits or helps."""
    chosen: list[str] = []
    used, current = 0, coster.base.total
    remaining = list(ddls)
    while remaining:
        best: tuple[float, str, float] | None = None
        for d in remaining:
            if budget is not None and used + sizes[d] > budget:
                continue
            w = coster.cost([*chosen, d]).total
            gain = current - w
            if gain <= 1e-9:
                continue
            score = gain / max(sizes[d], 1)
            if best is None or score > best[0]:
                best = (score, d, w)
        if best is None:
            break
        _, d, current = best
        chosen.append(d)
        remaining.remove(d)
        used += sizes[d]
    return chosen
