"""Normalized texts that PostgreSQL cannot prepare, rewritten into equivalent parameterized forms.

``pg_stat_statements`` replaces every constant by ``$n``. A *typed literal*
(``date '2024-01-01'``, ``interval '10 minutes'``, ``interval '3' month``,
``timestamp with time zone '…'``, ``uuid '…'``: a type name followed by a
string) then reads ``date $1``, which the server's grammar rejects ("syntax
error at or near $1"). pglast (libpg_query) parses that form into a cast of
the parameter without a source location, so ``planned_form`` finds exactly
those casts and prints the statement with pglast's printer:
``CAST($1 AS date)``, ``CAST($2 AS interval month)``: the same generic plan,
because a generic plan never sees the value.

Other texts prepare but fail on parameter types the parser cannot infer, once
their constants are gone: ``.06 - 0.01`` becomes ``$4 - $5`` ("operator is not
unique: unknown - unknown"), ``THEN 1 ELSE 0`` becomes ``THEN $3 ELSE $4``
(resolved as text, then "function sum(text) does not exist"). Only
when the server refuses a text for a type reason (``TYPE_ERRORS``),
``fallback_form`` casts such parameters (numeric for arithmetic between two
parameters and for all-parameter CASE results, text for a parameter whose type
the server could not determine) and the advisor tries once more. What still fails is skipped
with the server's reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pglast import ast, parse_sql
from pglast.stream import RawStream
from pglast.visitors import Ancestor, Visitor

# ambiguous function/operator, undefined function, indeterminate datatype, datatype mismatch
TYPE_ERRORS = frozenset({"42725", "42883", "42P18", "42804"})
ARITHMETIC = frozenset({"+", "-", "*", "/", "%", "^"})
_UNDETERMINED = re.compile(r"could not determine data type of parameter \$(\d+)")


@dataclass(frozen=True)
class Planned:
    """The text to plan for a statement, and the rules that rewrote it (none: the text itself)."""

    text: str
    rewrites: tuple[str, ...] = ()


def _cast(node: Any, type_name: str) -> ast.TypeCast:
    return ast.TypeCast(arg=node, typeName=ast.TypeName(names=(ast.String(sval=type_name),)))


def _op(node: ast.A_Expr) -> str:
    return str(node.name[-1].sval) if node.name and isinstance(node.name[-1], ast.String) else ""


class _TypedLiterals(Visitor):
    found = 0

    def visit_TypeCast(self, ancestors: Ancestor, node: ast.TypeCast) -> None:
        # A cast written by the application (``$1::date``, ``CAST($1 AS date)``) has a location; the
        # typed-literal form ``date $1`` has none.
        if isinstance(node.arg, ast.ParamRef) and node.location is None:
            self.found += 1


class _UntypedParameters(Visitor):
    def __init__(self, undetermined: set[int]) -> None:
        super().__init__()
        self.undetermined = undetermined
        self.rules: set[str] = set()

    def visit_A_Expr(self, ancestors: Ancestor, node: ast.A_Expr) -> Any:
        both = isinstance(node.lexpr, ast.ParamRef) and isinstance(node.rexpr, ast.ParamRef)
        if both and _op(node) in ARITHMETIC:
            self.rules.add("param_arithmetic")
            return ast.A_Expr(kind=node.kind, name=node.name, lexpr=_cast(node.lexpr, "numeric"),
                              rexpr=_cast(node.rexpr, "numeric"))
        return None

    def visit_CaseExpr(self, ancestors: Ancestor, node: ast.CaseExpr) -> Any:
        results = [w.result for w in node.args or ()] + ([node.defresult] if node.defresult is not None else [])
        if not results or not all(isinstance(r, ast.ParamRef) for r in results):
            return None
        self.rules.add("case_params")
        whens = tuple(ast.CaseWhen(expr=w.expr, result=_cast(w.result, "numeric")) for w in node.args or ())
        default = _cast(node.defresult, "numeric") if node.defresult is not None else None
        return ast.CaseExpr(arg=node.arg, args=whens, defresult=default)

    def visit_ParamRef(self, ancestors: Ancestor, node: ast.ParamRef) -> Any:
        if node.number in self.undetermined and not isinstance(ancestors.node, ast.TypeCast):
            self.rules.add("param_text")
            return _cast(node, "text")
        return None


def planned_form(text: str) -> Planned:
    """The text to plan: typed literals (``date $1``) become casts; anything else stays as it is."""
    try:
        tree = parse_sql(text)
    except Exception:
        return Planned(text)  # the analysis reports unparseable texts
    finder = _TypedLiterals()
    finder(tree)
    if not finder.found:
        return Planned(text)
    try:
        return Planned(str(RawStream()(tree)), ("typed_literal",))
    except Exception:  # a construct the printer does not know: plan the text as it is
        return Planned(text)


def fallback_form(planned: Planned, sqlstate: str | None, message: str = "") -> Planned | None:
    """A second form for a text the server refused for a type reason, or None when there is none."""
    if sqlstate not in TYPE_ERRORS:
        return None
    undetermined = {int(n) for n in _UNDETERMINED.findall(message)}
    try:
        tree = parse_sql(planned.text)
        fixer = _UntypedParameters(undetermined)
        tree = fixer(tree)
        if not fixer.rules:
            return None
        return Planned(str(RawStream()(tree)), planned.rewrites + tuple(sorted(fixer.rules)))
    except Exception:
        return None
