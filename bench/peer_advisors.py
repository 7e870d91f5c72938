"""The two advisors dbpulse is compared with: pg_qualstats' own, and a Dexter-style baseline.

**pg_qualstats_index_advisor()** (Debian's postgresql-15-pg-qualstats, 2.0.4): called with its defaults
spelled out (``min_filter => 1000, min_selectivity => 30, forbidden_am => '{}'``). It builds multi-column
suggestions from the quals it sampled as filters (``eval_type = 'f'``) in the current database; it
returns ``{"indexes": ["CREATE INDEX ON public.t USING btree (a, b)", ...], "unoptimised": [...]}``.
It may repeat a suggestion (different qual nodes on one column in later rounds): the first is kept.
Call it before any costing, so the costing's EXPLAINs never reach its samples.

**Dexter-style** (after ankane/dexter's ``lib/dexter/indexer.rb``, ``determine_indexes``, with
``min_cost_savings_pct = 50``), on the same generic plans as the metric (``workload_cost.Coster``):
statements costing at least 100 without hypothetical indexes; candidate columns are those in their
WHERE, JOIN ... ON and HAVING; pass 1 puts a hypothetical single-column btree on every candidate,
pass 2 adds every ordered pair per table; per statement the pass-2 plan's index is taken when it halves
the pass-1 cost, else the pass-1 plan's when it halves the base cost; when a plan uses several, each
is costed alone and the best kept only if it alone meets the bar; prefixes of existing btrees are
dropped; a single column that leads a chosen pair is dropped.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import psycopg
from pglast.parser import parse_sql_json

from bench.workload_cost import Coster, plan_index_names

QUALSTATS_CALL = "SELECT pg_qualstats_index_advisor(min_filter => 1000, min_selectivity => 30, forbidden_am => '{}')"
_DDL = re.compile(r"^CREATE INDEX ON (?P<table>\S+) USING (?P<am>\w+) \((?P<cols>.*)\)$")
_PREDICATES = ("whereClause", "quals", "havingClause")


def qualstats_advice(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    row = conn.execute(QUALSTATS_CALL).fetchone()
    assert row is not None
    raw = row[0] if isinstance(row[0], dict) else json.loads(row[0])
    version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_qualstats'").fetchone()
    entries = conn.execute("SELECT count(*) FROM pg_qualstats()").fetchone()
    indexes = list(dict.fromkeys(raw.get("indexes") or []))
    return {"advisor": "pg_qualstats_index_advisor", "version": version[0] if version else None,
            "call": QUALSTATS_CALL, "indexes": indexes, "repeated": len(raw.get("indexes") or []) - len(indexes),
            "unoptimised": raw.get("unoptimised") or [], "pg_qualstats_entries": entries[0] if entries else None}


def _walk(node: Any, fn: Any) -> None:
    if isinstance(node, dict):
        fn(node)
        for v in node.values():
            _walk(v, fn)
    elif isinstance(node, list):
        for v in node:
            _walk(v, fn)


def _referenced(sql: str) -> tuple[set[str], set[str]]:
    """(relations, predicate columns) of a statement."""
    tree = json.loads(parse_sql_json(sql))
    rels: set[str] = set()
    cols: set[str] = set()

    def colref(n: dict[str, Any]) -> None:
        ref = n.get("ColumnRef")
        if ref and "String" in ref["fields"][-1]:
            cols.add(ref["fields"][-1]["String"]["sval"])

    def visit(n: dict[str, Any]) -> None:
        if "RangeVar" in n:
            rels.add(n["RangeVar"]["relname"])
        for key in _PREDICATES:
            if key in n:
                _walk(n[key], colref)

    _walk(tree, visit)
    return rels, cols


def _ddl(table: str, cols: tuple[str, ...]) -> str:
    return f"CREATE INDEX ON {table} ({', '.join(cols)})"


def dexter_advice(coster: Coster, savings_pct: float = 50.0) -> dict[str, Any]:
    conn = coster.conn
    ratio = 1 - savings_pct / 100
    columns: dict[str, set[str]] = {}
    for rel, col in conn.execute(
            "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' "
            "AND a.attnum > 0 AND NOT a.attisdropped").fetchall():
        columns.setdefault(str(rel), set()).add(str(col))
    existing: set[tuple[str, tuple[str, ...]]] = set()
    for rel, cols in conn.execute(
            "SELECT t.relname, array_agg(a.attname ORDER BY k.ord)::text[] FROM pg_index i "
            "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_class ix ON ix.oid = i.indexrelid "
            "JOIN pg_am am ON am.oid = ix.relam AND am.amname = 'btree' "
            "JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public' "
            "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord) "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
            "GROUP BY t.relname, i.indexrelid").fetchall():
        existing.add((str(rel), tuple(cols[:1])))
        existing.add((str(rel), tuple(cols[:2])))

    sts = coster.statements
    cost0 = coster.base.per_statement
    high = [i for i, c in enumerate(cost0) if c >= 100]
    tables: set[str] = set()
    possible: set[str] = set()
    for i in high:
        rels, cols = _referenced(sts[i].sql)
        tables |= {r for r in rels if r in columns}
        possible |= cols
    by_table = {t: sorted(c for c in columns[t] if c in possible) for t in sorted(tables)}
    by_table = {t: c for t, c in by_table.items() if c}
    single = [(t, (c,)) for t, cs in by_table.items() for c in cs]
    pairs = [(t, p) for t, cs in by_table.items() for p in itertools.permutations(cs, 2)]

    def run(cands: list[tuple[str, tuple[str, ...]]]) -> list[tuple[float, list[tuple[str, tuple[str, ...]]]]]:
        hypo = coster.hypothetical([_ddl(t, c) for t, c in cands])
        by_ddl = {_ddl(t, c): (t, c) for t, c in cands}
        by_name = {name: by_ddl[ddl] for name, (ddl, _) in hypo.items()}
        out = []
        for st in sts:
            plan = coster.plan(st.sql, st.n_params)
            names = plan_index_names(plan)
            out.append((float(plan["Total Cost"]), sorted({by_name[n] for n in names if n in by_name})))
        return out

    pass1, pass2 = run(single), run(single + pairs)
    chosen: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    for i in high:
        c0, (c1, idx1), (c2, idx2) = cost0[i], pass1[i], pass2[i]
        s1, s2 = c1 < c0 * ratio, c1 > 100 and c2 < c1 * ratio
        picked = [x for x in (idx2 if s2 else idx1) if x not in existing]
        if s2 and len(picked) > 1:
            picked, s2 = [x for x in idx1 if x not in existing], False
        suggest = s1 or s2
        if suggest and len(picked) > 1:
            best: tuple[float, tuple[str, tuple[str, ...]]] | None = None
            for x in picked:
                coster.hypothetical([_ddl(*x)])
                c3 = float(coster.plan(sts[i].sql, sts[i].n_params)["Total Cost"])
                if best is None or c3 < best[0]:
                    best = (c3, x)
            assert best is not None
            ok = (c1 > 100 and best[0] < c1 * ratio) if s2 else best[0] < c0 * ratio
            picked, suggest = ([best[1]], True) if ok else ([], False)
        if suggest:
            for x in picked:
                chosen.setdefault(x, []).append(i)
    conn.execute("SELECT hypopg_reset()")
    covered = {(t, c[:1]) for t, c in chosen if len(c) > 1}
    final = sorted(x for x in chosen if x not in covered)
    return {"advisor": "dexter-style", "rule": f"min_cost_savings_pct={savings_pct:g}, columns=predicates",
            "candidates": {"single": len(single), "pairs": len(pairs)}, "indexes": [_ddl(*x) for x in final]}


def parse_ddl(ddl: str) -> dict[str, Any] | None:
    m = _DDL.match(ddl)
    return None if m is None else {"table": m["table"], "am": m["am"],
                                   "columns": [c.strip() for c in m["cols"].split(",")]}
