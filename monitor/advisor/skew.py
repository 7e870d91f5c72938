"""Skew: a parameter compared with a column whose values are far from uniform.

A generic plan treats ``status = $1`` as matching 1/n_distinct of the table, so
a lookup of a rare value (``'pending'`` on 1% of the rows, in
``pg_stats.most_common_vals`` / ``most_common_freqs``) looks unselective and no
index seems worth it. For such a statement the advisor costs the values it is
really called with, weighted by how often, instead of the generic plan:

* from **pg_qualstats**, when the extension is installed in the database: its
  samples of real constants per statement (``pg_qualstats()``, with
  ``pg_qualstats.track_constants = on``), counted by executions;
* otherwise from **rows per call**, when the statement returns table rows one
  for one (no aggregate, GROUP BY, DISTINCT or LIMIT) and the skewed column is
  its only key: the most common value whose share of the rows best explains the
  rows each call returned (within a factor of 3);
* otherwise the generic plan stays.

Where a rare value dominates the calls (``skew_min_share`` of them), a partial
index (``WHERE status = 'pending'``) is a candidate beside the usual ones (the
composite with the skewed column first comes from the usual rules), and its
advice says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from pglast import ast, parse_sql
from pglast.stream import RawStream
from pglast.visitors import Ancestor, Visitor

from collectors.postgres.access import ADVISOR_TAG as TAG

from .candidates import Candidate, Variant, Workload, candidates_for_usage, served_by
from .catalog import Catalog, Index, Table
from .ddl import quote_ident
from .query_analysis import Key, TableUsage, canonical_expression
from .settings import Thresholds

MAX_VARIANTS = 3
QUALSTATS_SQL = f"""
SELECT /* {TAG} */ q.queryid, q.lrelid::oid, q.lattnum, q.constvalue, sum(q.execution_count)::float8
FROM pg_qualstats() q JOIN pg_operator o ON o.oid = q.opno AND o.oprname = '='
WHERE q.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND q.constvalue IS NOT NULL AND q.lrelid IS NOT NULL AND q.queryid IS NOT NULL
GROUP BY 1, 2, 3, 4
"""
Samples = dict[tuple[int, int, int], dict[str, float]]  # (queryid, table oid, attnum) -> {value: executions}


@dataclass(frozen=True)
class Skewed:
    """A statement's parameter on a skewed column, and the rare value that dominates its calls."""

    queryid: int
    table: Table
    usage: TableUsage
    key: Key
    value: str
    row_fraction: float  # of the table's rows (pg_stats)
    call_share: float  # of the statement's calls
    source: str  # "pg_qualstats" | "rows per call"

    @property
    def predicate(self) -> str:
        return f"{quote_ident(self.key.text)} = {literal(self.value)}"

    @property
    def why(self) -> str:
        generic = 1 / max(self.table.distinct_values(self.key.text) or 1.0, 1.0)
        return (f"{self.predicate} is {100 * self.row_fraction:.1f}% of the rows (pg_stats) but "
                f"{100 * self.call_share:.0f}% of this statement's calls ({self.source}); its generic plan "
                f"assumes {100 * generic:.0f}%, so only the plan for the value shows the gain, and a partial "
                f"index holds just those rows")


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def read_qualstats(conn: psycopg.Connection[Any]) -> tuple[Samples, str | None]:
    """pg_qualstats' constants of the current database's equality quals, or a note why they are missing."""
    try:
        rows = conn.execute(QUALSTATS_SQL).fetchall()
    except psycopg.Error as exc:
        return {}, (f"pg_qualstats is installed but its samples are not readable ({exc.sqlstate}): skewed values are "
                    "judged from rows per call only")
    samples: Samples = {}
    for queryid, relid, attnum, constvalue, executions in rows:
        value = constant_text(str(constvalue))
        if value is not None:
            entry = samples.setdefault((int(queryid), int(relid), int(attnum)), {})
            entry[value] = entry.get(value, 0.0) + float(executions)
    return samples, None


def constant_text(constvalue: str) -> str | None:
    """The value of a constant as pg_qualstats prints it (``'pending'::text``, ``42``), as text."""
    try:
        stmt: Any = parse_sql("SELECT " + constvalue)[0].stmt
        node: Any = stmt.targetList[0].val
    except Exception:
        return None
    if isinstance(node, ast.TypeCast):
        node = node.arg
    if not isinstance(node, ast.A_Const) or node.isnull:
        return None
    val = node.val
    for attr in ("sval", "ival", "fval", "boolval"):
        if hasattr(val, attr):
            return str(getattr(val, attr)).lower() if attr == "boolval" else str(getattr(val, attr))
    return None


def _skewed_column(table: Table, key: Key, settings: Thresholds) -> list[tuple[str, float]] | None:
    """The column's most common values when some are rare against the generic estimate (1/n_distinct)."""
    col = None if key.is_expression else table.columns.get(key.text)
    distinct = table.distinct_values(key.text) if col else None
    if col is None or not col.most_common or not distinct:
        return None
    generic = 1 / max(distinct, 1.0)
    rare = [f for _, f in col.most_common if f <= settings.skew_rare_max_fraction and 4 * f <= generic]
    return col.most_common if rare else None


def _sampled(samples: Samples, queryid: int, table: Table, key: Key) -> tuple[dict[str, float], str] | None:
    """The shares of the values the statement was called with, as pg_qualstats sampled them."""
    sampled = samples.get((queryid, table.oid, table.columns[key.text].attnum))
    if sampled:
        total = sum(sampled.values())
        return {v: n / total for v, n in sampled.items()}, "pg_qualstats"
    return None


def _shares_by_rows(table: Table, usage: TableUsage, key: Key, rows_per_call: float, plain_rows: bool,
                    mcv: list[tuple[str, float]]) -> tuple[dict[str, float], str] | None:
    """Without samples: the common value whose row count matches the rows the statement returns per call."""
    only_key = not (usage.in_list or usage.ranges or usage.joins or usage.or_groups) and usage.equality == [key]
    if not plain_rows or not only_key or rows_per_call <= 0:
        return None
    best = min(mcv, key=lambda vf: abs(math.log(max(vf[1] * table.rows, 0.5) / rows_per_call)))
    expected = max(best[1] * table.rows, 0.5)
    if abs(math.log(expected / rows_per_call)) > math.log(3):
        return None
    return {best[0]: 1.0}, "rows per call"


class _Substitute(Visitor):
    """``$k`` becomes a literal; the parameters after it are renumbered so the text still prepares."""

    def __init__(self, number: int, value: str) -> None:
        super().__init__()
        self.number, self.value = number, value

    def visit_ParamRef(self, ancestors: Ancestor, node: ast.ParamRef) -> Any:
        number = int(node.number or 0)
        if number == self.number:
            return ast.A_Const(val=ast.String(sval=self.value))
        if number > self.number:
            return ast.ParamRef(number=number - 1)
        return None


def substituted(text: str, number: int, value: str) -> str | None:
    try:
        tree = _Substitute(number, value)(parse_sql(text))
        return str(RawStream()(tree))
    except Exception:
        return None


def analyze_skew(workload: Workload, cat: Catalog, settings: Thresholds, samples: Samples) -> list[Skewed]:
    """Set ``workload.variants`` for statements on skewed columns; return the rare values that dominate."""
    dominant: list[Skewed] = []
    for stat, analysis in workload.items:
        for usage in analysis.usages:
            table = cat.table(usage.table)
            if table is None or table.rows < settings.min_table_rows or stat.queryid in workload.variants:
                continue
            for key, number in usage.params.items():
                mcv = _skewed_column(table, key, settings)
                if mcv is None:
                    continue
                found = _sampled(samples, stat.queryid, table, key) or _shares_by_rows(
                    table, usage, key, stat.rows_per_call, analysis.plain_rows, mcv)
                if found is None:
                    continue
                shares, source = found
                text, n_params = workload.planned(stat, analysis)
                variants = []
                for value, share in sorted(shares.items(), key=lambda vs: -vs[1])[:MAX_VARIANTS]:
                    sub = substituted(text, number, value)
                    if sub is not None:
                        variants.append(Variant(sub, n_params - 1, share, f"{key.text} = {literal(value)}"))
                rest = 1.0 - sum(v.weight for v in variants)
                if rest > 0.01:
                    variants.append(Variant(text, n_params, rest, "other values (generic plan)"))
                if variants:
                    workload.variants[stat.queryid] = variants
                freq = dict(mcv)
                for value, share in shares.items():
                    fraction = freq.get(value)
                    if fraction is not None and fraction <= settings.skew_rare_max_fraction and \
                            share >= settings.skew_min_share:
                        dominant.append(Skewed(stat.queryid, table, usage, key, value, fraction, share, source))
                break  # one skewed parameter per statement
    return dominant


def partial_candidates(skewed: list[Skewed], settings: Thresholds) -> list[Candidate]:
    """Per dominant rare value: a partial index on the statement's other keys ``WHERE col = 'value'``, and
    the composite with the skewed column first (its usual place is last, as a low-cardinality key)."""
    out: dict[object, Candidate] = {}
    for s in skewed:
        rest = TableUsage(s.usage.table, s.usage.alias, equality=[k for k in s.usage.equality if k != s.key],
                          in_list=list(s.usage.in_list), ranges=list(s.usage.ranges), joins=list(s.usage.joins),
                          order_by=list(s.usage.order_by), limited=s.usage.limited, group_by=list(s.usage.group_by))
        others = candidates_for_usage(rest, s.table, settings)
        if others:
            base = others[0]
            partial = Candidate(s.table, base.keys, base.n_equality, set(), base.roles, predicate=s.predicate,
                                why=s.why, predicate_fraction=s.row_fraction)
            first = Candidate(s.table, ((s.key, False), *base.keys), base.n_equality + 1, set(),
                              ("equality", *base.roles), why=f"{s.key.text} first: {s.why}")
        else:
            partial = Candidate(s.table, ((s.key, False),), 1, set(), ("equality",), predicate=s.predicate,
                                why=s.why, predicate_fraction=s.row_fraction)
            first = None
        for cand in (partial, first):
            if cand is not None and len(cand.keys) <= settings.max_index_columns:
                out.setdefault(cand.signature, cand).queryids.add(s.queryid)
    return list(out.values())


def partial_served(cand: Candidate, indexes: list[Index]) -> bool:
    """An existing valid index already gives this access path (with the same predicate, for a partial one)."""
    if cand.predicate is None:
        return served_by(cand, indexes) is not None
    wanted = canonical_expression(cand.predicate)
    same = [i for i in indexes if i.predicate is not None and canonical_expression(i.predicate) == wanted]
    plain = replace(cand, predicate=None, companions=())
    return any(served_by(plain, [replace(i, predicate=None)]) is not None for i in same)
