"""Write statements: the read side that plans them, and the rows they write per table.

``EXPLAIN`` of an ``UPDATE``, ``DELETE`` or ``INSERT`` checks the write
privilege even though nothing runs, and so does ``SELECT … FOR UPDATE``. The
part of a write an index can speed up is its read: finding the rows. So a write
is planned through an equivalent read on the same tables with the same
predicate, built from the pglast tree, which a role with ``SELECT`` may plan:

- ``UPDATE t SET c = e FROM u WHERE p`` → ``SELECT CASE WHEN false THEN t.c ELSE e END FROM t, u WHERE p``
  (a ``SET`` value with a parameter or a sub-query stays, under a ``CASE`` that gives its parameters the
  column's type; ``WHEN false`` is folded away by the planner);
- ``DELETE FROM t USING u WHERE p`` → ``SELECT 1 FROM t, u WHERE p``;
- ``INSERT INTO t … SELECT q`` → ``q``; ``INSERT … VALUES`` without a sub-query reads no table: nothing to plan;
- ``SELECT … FOR UPDATE`` → the same ``SELECT`` without its locking clauses.

Every ``$n`` of the write stays in its read side (checked), so the generic plan and the skew variants
(skew.py) number parameters alike. What cannot be turned into a read with the same meaning (a ``WITH``
that writes, ``WHERE CURRENT OF``, a multi-column ``SET`` from a sub-query, an array element or field
``SET``, a ``RETURNING`` with a sub-query, a parameter only in a written part) is refused with its
reason, which the report counts.

``written_rows`` attributes each write statement's rows (``pg_stat_statements``) to its target table, with
the columns an ``UPDATE`` sets: the time base of write costs (rates.py) and HOT updates (selection.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pglast import ast, parse_sql
from pglast.stream import RawStream

from collectors.postgres.statements import StatementStat

from .findings import WRITE_REFUSED as REFUSED
from .query_analysis import TableRef

WRITES = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)


@dataclass(frozen=True)
class ReadSide:
    """The read that plans a write: ``text`` to plan, or None with ``reason`` (refused) or none (reads nothing)."""

    text: str | None
    reason: str | None = None

    @property
    def reads_nothing(self) -> bool:
        return self.text is None and self.reason is None


def _walk(node: Any) -> Iterator[Any]:
    stack = [node]
    while stack:
        item = stack.pop()
        yield item
        if isinstance(item, tuple):
            stack.extend(item)
        elif isinstance(item, ast.Node):
            stack.extend(getattr(item, member) for member in item)


def _params(node: Any) -> set[int]:
    return {int(n.number or 0) for n in _walk(node) if isinstance(n, ast.ParamRef)}


def _has(node: Any, kinds: tuple[type, ...]) -> bool:
    return any(isinstance(n, kinds) for n in _walk(node))


def _returning(node: Any) -> Any:
    clause = getattr(node, "returningClause", None)  # pglast 7; older releases have returningList
    return clause if clause is not None else getattr(node, "returningList", None)


def _refused(why: str) -> ReadSide:
    return ReadSide(None, f"{REFUSED}: {why}")


def read_side(text: str) -> ReadSide | None:
    """The read side of a write statement (or of a locking SELECT); None when ``text`` is planned as it is."""
    try:
        tree = parse_sql(text)
    except Exception:
        return None  # the analysis reports unparseable texts
    if len(tree) != 1:
        return None
    stmt = tree[0].stmt
    if not isinstance(stmt, ast.SelectStmt | ast.UpdateStmt | ast.DeleteStmt | ast.InsertStmt):
        return None
    try:
        return _read_side(stmt)
    except Exception as exc:  # a shape this module does not know: the statement is skipped, never the run
        return _refused(f"its read could not be built ({type(exc).__name__})")


def _read_side(stmt: ast.SelectStmt | ast.UpdateStmt | ast.DeleteStmt | ast.InsertStmt) -> ReadSide | None:
    if isinstance(stmt, ast.SelectStmt):
        if not _has(stmt, (ast.LockingClause,)):
            return None
        read: Any = _Unlock()(stmt)
    else:
        built = _read_of(stmt)
        if not isinstance(built, ast.Node):
            return built
        read = built
    if _has(read, (ast.LockingClause,)):
        read = _Unlock()(read)
    if _params(read) != _params(stmt):
        return _refused("a parameter appears only in the written part (ON CONFLICT … SET, a SET target)")
    try:
        return ReadSide(str(RawStream()(read)))
    except Exception as exc:  # a construct the printer does not know
        return _refused(f"its read cannot be printed ({type(exc).__name__})")


def _read_of(stmt: ast.UpdateStmt | ast.DeleteStmt | ast.InsertStmt) -> ast.Node | ReadSide:
    with_clause = stmt.withClause
    if with_clause is not None and any(_has(cte.ctequery, WRITES) for cte in with_clause.ctes or ()):
        return _refused("a WITH clause that writes")
    returning = _returning(stmt)
    if returning is not None and _has(returning, (ast.SubLink,)):
        return _refused("RETURNING with a sub-query")
    if isinstance(stmt, ast.InsertStmt):
        query = stmt.selectStmt
        if query is None or (isinstance(query, ast.SelectStmt) and query.valuesLists is not None
                             and not _has(query, (ast.SubLink,))):
            return ReadSide(None)  # INSERT … VALUES / DEFAULT VALUES: no table read, no index helps it
        if not isinstance(query, ast.SelectStmt):
            return _refused(f"INSERT from {type(query).__name__}")
        if with_clause is not None:
            if query.withClause is not None:
                return _refused("a WITH clause on both the INSERT and its SELECT")
            query.withClause = with_clause
        return query
    if stmt.whereClause is not None and _has(stmt.whereClause, (ast.CurrentOfExpr,)):
        return _refused("WHERE CURRENT OF a cursor")
    target = stmt.relation
    if target is None:
        return _refused("no target table")
    name = str(target.alias.aliasname) if target.alias is not None else str(target.relname)
    columns: list[ast.ResTarget] = []
    if isinstance(stmt, ast.UpdateStmt):
        for res in stmt.targetList or ():
            if res.indirection:
                return _refused("SET of an array element or a field")
            value = res.val
            if isinstance(value, ast.MultiAssignRef):
                if not isinstance(value.source, ast.RowExpr):
                    return _refused("a multi-column SET from a sub-query")
                value = (value.source.args or ())[int(value.colno or 1) - 1]
            if not _has(value, (ast.ParamRef, ast.SubLink)):
                continue  # constants and column arithmetic: nothing to type, nothing to read
            column = ast.ColumnRef(fields=(ast.String(sval=name), ast.String(sval=str(res.name))))
            false = ast.A_Const(val=ast.Boolean(boolval=False))
            typed = ast.CaseExpr(args=(ast.CaseWhen(expr=false, result=column),), defresult=value)
            columns.append(ast.ResTarget(val=typed))
        others = stmt.fromClause or ()
    else:
        others = stmt.usingClause or ()
    one = ast.ResTarget(val=ast.A_Const(val=ast.Integer(ival=1)))
    return ast.SelectStmt(targetList=tuple(columns) or (one,), fromClause=(target, *others),
                          whereClause=stmt.whereClause, withClause=with_clause)


class _Unlock:
    """Removes FOR UPDATE / FOR SHARE from every SELECT of a tree (they need UPDATE privilege to plan)."""

    def __call__(self, node: Any) -> Any:
        for item in _walk(node):
            if isinstance(item, ast.SelectStmt) and item.lockingClause:
                item.lockingClause = None
        return node


# --- rows written per table, from pg_stat_statements ------------------------------------------------------


@dataclass
class Written:
    """Rows one table got from write statements over the statements' window."""

    added: float = 0.0  # inserted, copied or merged rows: each adds an entry to every index
    updated: dict[frozenset[str] | None, float] = field(default_factory=dict)  # rows by the columns SET
    # (None: not known, e.g. the table statistics' share no statement accounts for)

    @property
    def updates(self) -> float:
        return sum(self.updated.values())

    @property
    def total(self) -> float:
        return self.added + self.updates


@dataclass(frozen=True)
class WriteShape:
    table: TableRef
    kind: str  # insert | update | delete | copy | merge
    set_columns: frozenset[str] | None = None  # an UPDATE's SET columns


def write_shape(text: str) -> WriteShape | None:
    """The target table (and an UPDATE's SET columns) of a write statement, None for anything else."""
    try:
        tree = parse_sql(text)
    except Exception:
        return None
    if len(tree) != 1:
        return None
    try:
        return _shape(tree[0].stmt)
    except Exception:  # a shape this module does not know: its rows are not attributed
        return None


def _shape(stmt: Any) -> WriteShape | None:
    rel = getattr(stmt, "relation", None)
    if not isinstance(rel, ast.RangeVar):
        return None
    ref = TableRef(str(rel.schemaname) if rel.schemaname else None, str(rel.relname))
    if isinstance(stmt, ast.UpdateStmt):
        return WriteShape(ref, "update", frozenset(str(r.name) for r in stmt.targetList or ()))
    if isinstance(stmt, ast.CopyStmt):
        return WriteShape(ref, "copy") if stmt.is_from else None
    kinds = {ast.InsertStmt: "insert", ast.DeleteStmt: "delete", ast.MergeStmt: "merge"}
    kind = kinds.get(type(stmt))
    return WriteShape(ref, kind) if kind else None


def written_rows(statements: Iterable[StatementStat], table_oid: Any) -> dict[int, Written]:
    """Rows written per table oid by the write statements among ``statements`` (``table_oid`` resolves a
    TableRef to its table's oid, or None). A DELETE adds no index entry, so it is left out."""
    out: dict[int, Written] = {}
    for stat in statements:
        if stat.rows <= 0:
            continue
        shape = write_shape(stat.query)
        if shape is None or shape.kind == "delete":
            continue
        oid = table_oid(shape.table)
        if oid is None:
            continue
        entry = out.setdefault(oid, Written())
        if shape.kind == "update":
            entry.updated[shape.set_columns] = entry.updated.get(shape.set_columns, 0.0) + stat.rows
        else:
            entry.added += stat.rows
    return out


def referenced_columns(expression: str) -> frozenset[str]:
    """The column names an index expression or predicate (SQL text) reads; empty when it does not parse."""
    try:
        tree = parse_sql(f"SELECT {expression}")
    except Exception:
        return frozenset()
    return frozenset(str(n.fields[-1].sval) for n in _walk(tree)
                     if isinstance(n, ast.ColumnRef) and n.fields and isinstance(n.fields[-1], ast.String))
