"""Every candidate index is checked by the server before it is costed or printed.

A ``CREATE INDEX`` the advisor prints is run as printed, so each candidate must be one the server builds:
its columns exist, each key's type has a btree operator class, and its expressions are IMMUTABLE. With
HypoPG the server says so itself: the candidate is created hypothetically (HypoPG runs the same checks as
``CREATE INDEX``) and dropped. Without it, nothing can be created in the read-only session, so the check is
conservative: the keys must sort (``EXPLAIN ... ORDER BY`` the keys finds a btree ordering operator for
each), and an expression may only call functions and operators whose every overload is IMMUTABLE and no
cast (whose volatility depends on the types). A refused candidate is dropped and counted with the
server's reason; it never ends the run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg
from pglast import ast, parse_sql

from collectors.postgres.access import ADVISOR_TAG as TAG

from .candidates import Candidate
from .catalog import Catalog
from .ddl import index_element, qualified
from .index_keys import SYSTEM_COLUMNS
from .privileges import table_privilege_missing
from .query_analysis import Key
from .whatif import PlanError, WhatIf, plan_error


@dataclass
class Refused:
    """Candidates the server (or the advisor's own rules) refused, by reason."""

    reasons: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> one candidate's label
    of_statement: dict[int, tuple[str, str]] = field(default_factory=dict)  # queryid -> (a label, its reason)

    def add(self, cand: Candidate, reason: str) -> None:
        self.reasons[reason] += 1
        self.examples.setdefault(reason, cand.label)
        for q in cand.queryids:
            self.of_statement.setdefault(q, (cand.label, reason))

    @property
    def count(self) -> int:
        return sum(self.reasons.values())

    def note(self) -> str | None:
        if not self.reasons:
            return None
        parts = [f"{n} x {reason} (e.g. {self.examples[reason]})" for reason, n in self.reasons.most_common(5)]
        more = len(self.reasons) - 5
        return (f"{self.count} candidate index(es) refused before costing, so none of them is advised: "
                + "; ".join(parts) + (f"; and {more} other reason(s)" if more > 0 else ""))


def check_candidates(conn: psycopg.Connection[Any], cat: Catalog, candidates: list[Candidate],
                     whatif: WhatIf | None) -> tuple[list[Candidate], Refused]:
    """The candidates the server would build (with HypoPG: ``whatif``), and the refused ones by reason."""
    refused = Refused()
    kept: list[Candidate] = []
    functions: dict[str, bool] = {}
    for cand in candidates:
        problem = _column_problem(cand)
        if problem is None:
            problem = (_hypothetical_problem(cand, whatif) if whatif is not None
                       else _heuristic_problem(conn, cand, functions))
        if problem is None:
            kept.append(cand)
        else:
            refused.add(cand, problem)
    return kept, refused


def _column_problem(cand: Candidate) -> str | None:
    for member in cand.members:
        for key, _ in member.keys:
            if not key.is_expression and (key.text not in member.table.columns or key.text in SYSTEM_COLUMNS):
                return f"{key.text} is not a column of the table"
    return None


def _hypothetical_problem(cand: Candidate, whatif: WhatIf) -> str | None:
    created: list[int] = []
    try:
        for member in cand.members:
            created.append(whatif.create(member.hypothetical_sql())[0])
    except PlanError as exc:
        return f"refused by HypoPG: {exc}"
    finally:
        for oid in created:
            whatif.drop(oid)
    return None


def _heuristic_problem(conn: psycopg.Connection[Any], cand: Candidate, functions: dict[str, bool]) -> str | None:
    for member in cand.members:
        for key, _ in member.keys:
            if key.is_expression:
                problem = _expression_problem(conn, key, functions)
                if problem is not None:
                    return problem
        order = ", ".join(index_element(k) for k, _ in member.keys)
        missing = table_privilege_missing(conn, member.table.oid)
        if missing is not None:  # the EXPLAIN below would be refused, and the refusal logged by the server
            return f"no privilege to check it with the planner: {missing}"
        try:
            conn.execute(f"EXPLAIN SELECT /* {TAG} */ 1 FROM {qualified(member.table.schema, member.table.name)} "
                         f"ORDER BY {order}")
        except psycopg.Error as exc:
            return f"refused by the planner: {plan_error(exc)}"
    return None


def _expression_problem(conn: psycopg.Connection[Any], key: Key, known: dict[str, bool]) -> str | None:
    """Without HypoPG: every function and operator of the expression has only IMMUTABLE overloads."""
    try:
        node: Any = parse_sql("SELECT " + key.text)[0].stmt
    except Exception as exc:  # an expression the parser refuses is not printed either
        return f"cannot be parsed: {str(exc).splitlines()[0][:80]}"
    names: list[tuple[str, str]] = []  # (kind, name)
    stack = [node.targetList[0].val]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.TypeCast):
            return "a cast's volatility cannot be checked without HypoPG"
        if isinstance(item, ast.FuncCall) and item.funcname:
            names.append(("function", str(getattr(item.funcname[-1], "sval", ""))))
        if isinstance(item, ast.A_Expr) and item.name:
            names.append(("operator", str(getattr(item.name[-1], "sval", ""))))
        if isinstance(item, tuple):
            stack.extend(item)
        elif isinstance(item, ast.Node):
            stack.extend(getattr(item, member) for member in item)
    for kind, name in names:
        if kind + ":" + name not in known:
            sql = (f"SELECT /* {TAG} */ coalesce(bool_and(provolatile = 'i'), false) FROM pg_proc WHERE proname = %s"
                   if kind == "function" else
                   f"SELECT /* {TAG} */ coalesce(bool_and(p.provolatile = 'i'), false) FROM pg_operator o "
                   "JOIN pg_proc p ON p.oid = o.oprcode WHERE o.oprname = %s")
            row = conn.execute(sql, (name.lower() if kind == "function" else name,)).fetchone()
            known[kind + ":" + name] = bool(row and row[0])
        if not known[kind + ":" + name]:
            return f"the {kind} {name} is not IMMUTABLE in every form"
    return None
