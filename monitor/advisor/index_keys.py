"""What may become an index key: plain columns and expressions of one table that an index can hold.

The query analysis finds sides of predicates, sorts and groupings made of one table's columns; not all
of them are expressions ``CREATE INDEX`` accepts. Grouping sets (``ROLLUP(a, b)`` prints like a function
call), aggregates, window functions, sub-queries, parameters, row constructors and functions of the
session (``now()``, ``CURRENT_DATE``) never become keys. Whether the functions and operators that remain
are IMMUTABLE is the server's to say: ``validate.py`` asks it before anything is printed.
"""

from __future__ import annotations

from typing import Any

from pglast import ast

# Aggregates by name (an aggregate call without DISTINCT, ORDER BY, FILTER or OVER looks like any function).
AGGREGATES = frozenset({
    "count", "sum", "avg", "min", "max", "array_agg", "string_agg", "bool_and", "bool_or", "every", "json_agg",
    "jsonb_agg", "json_object_agg", "jsonb_object_agg", "stddev", "stddev_pop", "stddev_samp", "variance",
    "var_pop", "var_samp", "percentile_cont", "percentile_disc", "mode", "bit_and", "bit_or", "bit_xor",
    "corr", "covar_pop", "covar_samp", "regr_avgx", "regr_avgy", "regr_count", "regr_intercept", "regr_r2",
    "regr_slope", "regr_sxx", "regr_sxy", "regr_syy", "xmlagg", "range_agg", "range_intersect_agg",
    "any_value",
})  # window functions need OVER, which is checked on its own
# Columns every table has that an index cannot be built on (or that mean nothing in one).
SYSTEM_COLUMNS = frozenset({"tableoid", "ctid", "xmin", "xmax", "cmin", "cmax"})

_NEVER: dict[type, str] = {
    ast.GroupingSet: "a grouping set (ROLLUP, CUBE, GROUPING SETS)",
    ast.GroupingFunc: "GROUPING()",
    ast.SubLink: "a sub-query",
    ast.SelectStmt: "a sub-query",
    ast.ParamRef: "a parameter",
    ast.RowExpr: "a row constructor",
    ast.SQLValueFunction: "a function of the session (CURRENT_DATE, CURRENT_USER, ...)",
    ast.WindowDef: "a window function",
    ast.A_Star: "*",
    ast.SetToDefault: "DEFAULT",
    ast.CurrentOfExpr: "CURRENT OF",
    ast.MultiAssignRef: "a multiple assignment",
}


def expression_problem(node: Any) -> str | None:
    """Why ``node`` (a pglast expression of one table's columns) cannot be an index key; None when it
    may be (the server still checks that its functions and operators are IMMUTABLE)."""
    stack = [node]
    while stack:
        item = stack.pop()
        for kind, what in _NEVER.items():
            if isinstance(item, kind):
                return f"{what} is not an index key"
        if isinstance(item, ast.FuncCall):
            name = str(getattr(item.funcname[-1], "sval", "")).lower() if item.funcname else ""
            if (item.over is not None or item.agg_star or item.agg_distinct or item.agg_filter is not None
                    or item.agg_order or item.agg_within_group or name in AGGREGATES):
                return f"an aggregate or window function ({name}) is not an index key"
        if isinstance(item, ast.ColumnRef) and item.fields:
            last = item.fields[-1]
            if isinstance(last, ast.String) and str(last.sval) in SYSTEM_COLUMNS:
                return f"the system column {last.sval} is not an index key"
        if isinstance(item, tuple):
            stack.extend(item)
        elif isinstance(item, ast.Node):
            stack.extend(getattr(item, member) for member in item)
    return None
