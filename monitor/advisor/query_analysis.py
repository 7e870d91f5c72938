"""Per-table predicate usage of a normalized statement, found with pglast Visitors.

A statement from ``pg_stat_statements`` (``$n`` parameters, constants already
replaced) is parsed once; every SELECT/UPDATE/DELETE block gets a scope (its
FROM items, resolved aliases and schemas, CTE names, the enclosing block for
correlated sub-queries), and its WHERE/JOIN conjuncts, ORDER BY ... LIMIT and
GROUP BY are attributed to the table reference they constrain. Nothing here
talks to a database; unqualified columns in multi-table blocks are resolved
through an optional ``columns_of`` callback backed by the catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pglast import ast, parse_sql
from pglast.enums.parsenodes import A_Expr_Kind, SetOperation, SortByDir
from pglast.enums.primnodes import BoolExprType, SubLinkType
from pglast.stream import RawStream
from pglast.visitors import Ancestor, Visitor

from .index_keys import AGGREGATES, expression_problem

RANGE_OPERATORS = frozenset({"<", ">", "<=", ">="})
DML_KINDS = {
    ast.SelectStmt: "select",
    ast.InsertStmt: "insert",
    ast.UpdateStmt: "update",
    ast.DeleteStmt: "delete",
}


class TableRef(NamedTuple):
    """A relation as written in the query: schema may be ``None`` (search_path)."""

    schema: str | None
    name: str


class Key(NamedTuple):
    """An index element: a column name, or an expression's SQL text (unqualified)."""

    text: str
    is_expression: bool = False


@dataclass
class TableUsage:
    """How one table reference of one query block is constrained."""

    table: TableRef
    alias: str | None = None
    equality: list[Key] = field(default_factory=list)
    in_list: list[Key] = field(default_factory=list)
    ranges: list[Key] = field(default_factory=list)
    joins: list[Key] = field(default_factory=list)
    order_by: list[tuple[Key, bool]] = field(default_factory=list)  # (key, descending)
    limited: bool = False
    group_by: list[Key] = field(default_factory=list)
    # ``a = $1 OR b = $2``: one part per disjunct, each with that disjunct's keys on this table reference
    # (a BitmapOr needs every part indexed); keys found in every part are also in the lists above.
    or_groups: list[list[TableUsage]] = field(default_factory=list)
    params: dict[Key, int] = field(default_factory=dict)  # an equality key compared with a bare $n: n

    def add(self, bucket: list[Key], key: Key) -> None:
        if key not in bucket:
            bucket.append(key)

    @property
    def has_predicates(self) -> bool:
        return bool(self.equality or self.in_list or self.ranges or self.joins
                    or (self.order_by and self.limited) or self.group_by)


@dataclass
class StatementAnalysis:
    """What one statement text tells about its tables, or why it could not be read."""

    kind: str = "unknown"  # select | insert | update | delete | utility | unknown
    usages: list[TableUsage] = field(default_factory=list)
    relations: list[TableRef] = field(default_factory=list)
    n_params: int = 0
    error: str | None = None
    # sides of predicates, sorts and groupings that cannot be index keys, and why (ROLLUP(...), count(...))
    not_keys: list[str] = field(default_factory=list)
    # the outer SELECT returns table rows one for one: no aggregate, GROUP BY, DISTINCT or LIMIT
    # (so rows per call tell how many rows a lookup matched)
    plain_rows: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


ColumnsOf = Callable[[TableRef], "frozenset[str] | None"]


@dataclass
class _Scope:
    parent: _Scope | None
    usages: list[TableUsage] = field(default_factory=list)
    opaque: set[str] = field(default_factory=set)  # aliases of sub-selects, functions, CTE refs
    ctes: set[str] = field(default_factory=set)

    def cte_visible(self, name: str) -> bool:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.ctes:
                return True
            scope = scope.parent
        return False


def _name(node: Any) -> str:
    return str(node.sval) if isinstance(node, ast.String) else ""


def _column_refs(node: Any) -> Iterator[ast.ColumnRef]:
    """Every ColumnRef below ``node`` that is not inside a nested sub-query."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.ColumnRef):
            yield item
        elif isinstance(item, ast.SubLink | ast.SelectStmt):
            continue
        elif isinstance(item, tuple):
            stack.extend(item)
        elif isinstance(item, ast.Node):
            stack.extend(getattr(item, member) for member in item)


def _contains(node: Any, kinds: tuple[type, ...]) -> bool:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, kinds):
            return True
        if isinstance(item, tuple):
            stack.extend(item)
        elif isinstance(item, ast.Node):
            stack.extend(getattr(item, member) for member in item)
    return False


class _Unqualify(Visitor):
    """Rewrites ``o.email`` to ``email`` so an expression can become an index element."""

    def visit_ColumnRef(self, ancestors: Ancestor, node: ast.ColumnRef) -> ast.ColumnRef | None:
        fields = node.fields or ()
        if len(fields) > 1:
            return ast.ColumnRef(fields=(fields[-1],))
        return None


class _StripCasts(Visitor):
    """Drops type casts: the catalog prints ``lower((email)::text)`` for ``lower(email)``."""

    def visit_TypeCast(self, ancestors: Ancestor, node: ast.TypeCast) -> Any:
        return node.arg


def _parse_expression(text: str) -> Any:
    stmt: Any = parse_sql("SELECT " + text)[0].stmt
    return stmt.targetList[0].val


def expression_text(node: ast.Node) -> str:
    """SQL text of an expression with column qualifiers removed."""
    tree = _Unqualify()(_parse_expression(RawStream()(node)))
    return str(RawStream()(tree))


def canonical_expression(text: str) -> str:
    """Comparable form of an expression from a query or from ``pg_get_indexdef``."""
    try:
        node = _parse_expression(text)
        node = _StripCasts()(_Unqualify()(node))
        return str(RawStream()(node)).lower()
    except Exception:
        return text.strip().lower()


def _note_param(usage: TableUsage, key: Key, value: Any) -> None:
    if isinstance(value, ast.TypeCast):
        value = value.arg
    if isinstance(value, ast.ParamRef) and not key.is_expression:
        usage.params.setdefault(key, int(value.number or 0))


def _returns_rows(node: ast.SelectStmt) -> bool:
    if node.groupClause or node.distinctClause or node.limitCount is not None or node.havingClause:
        return False
    return not any(_contains_aggregate(target) for target in node.targetList or ())


def _contains_aggregate(node: Any) -> bool:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.FuncCall) and item.funcname and _name(item.funcname[-1]).lower() in AGGREGATES:
            return True
        if isinstance(item, ast.SubLink | ast.SelectStmt):
            continue
        if isinstance(item, tuple):
            stack.extend(item)
        elif isinstance(item, ast.Node):
            stack.extend(getattr(item, member) for member in item)
    return False


def _is_value(node: Any) -> bool:
    """A side that is fixed for one execution: parameters, constants, sub-queries, now()."""
    return not any(True for _ in _column_refs(node))


class _Analyzer(Visitor):
    def __init__(self, columns_of: ColumnsOf | None) -> None:
        self.columns_of = columns_of
        self.scopes: dict[int, _Scope] = {}
        self.result = StatementAnalysis()
        self.max_param = 0

    # -- scopes -------------------------------------------------------------------------
    def _parent_scope(self, ancestors: Ancestor) -> _Scope | None:
        anc: Ancestor | None = ancestors
        while anc is not None:
            node = anc.node
            if isinstance(node, ast.SelectStmt | ast.UpdateStmt | ast.DeleteStmt | ast.InsertStmt):
                return self.scopes.get(id(node))
            anc = anc.parent
        return None

    def _new_scope(self, ancestors: Ancestor, node: ast.Node) -> _Scope:
        scope = _Scope(parent=self._parent_scope(ancestors))
        with_clause = getattr(node, "withClause", None)
        if with_clause is not None:
            scope.ctes.update(str(cte.ctename) for cte in with_clause.ctes or ())
        self.scopes[id(node)] = scope
        return scope

    def _add_relation(self, scope: _Scope, rv: ast.RangeVar) -> None:
        name = str(rv.relname)
        alias = str(rv.alias.aliasname) if rv.alias is not None else None
        if rv.schemaname is None and scope.cte_visible(name):
            scope.opaque.add(alias or name)
            return
        ref = TableRef(str(rv.schemaname) if rv.schemaname else None, name)
        if ref not in self.result.relations:
            self.result.relations.append(ref)
        usage = TableUsage(table=ref, alias=alias)
        scope.usages.append(usage)
        self.result.usages.append(usage)

    def _add_from(self, scope: _Scope, item: Any, quals: list[Any]) -> None:
        if isinstance(item, ast.RangeVar):
            self._add_relation(scope, item)
        elif isinstance(item, ast.JoinExpr):
            self._add_from(scope, item.larg, quals)
            self._add_from(scope, item.rarg, quals)
            if item.quals is not None:
                quals.append(item.quals)
            for col in item.usingClause or ():
                quals.append(("using", _name(col)))
        elif isinstance(item, ast.RangeSubselect | ast.RangeFunction) and item.alias is not None:
            scope.opaque.add(str(item.alias.aliasname))

    # -- column resolution ----------------------------------------------------------------
    def _resolve_in(self, scope: _Scope, fields: tuple[str, ...]) -> TableUsage | bool | None:
        """The usage a column belongs to in this scope, None if not here, False if unknowable."""
        if len(fields) >= 2:
            qual = fields[-2]
            schema = fields[-3] if len(fields) >= 3 else None
            if qual in scope.opaque:
                return False
            for usage in scope.usages:
                names = {usage.alias} if usage.alias else {usage.table.name}
                if qual in names and (schema is None or schema == usage.table.schema):
                    return usage
            return None
        column = fields[0]
        if not scope.usages:
            return None
        if len(scope.usages) == 1 and not scope.opaque and self.columns_of is None:
            return scope.usages[0]
        if self.columns_of is None:
            return False
        owners = []
        for usage in scope.usages:
            cols = self.columns_of(usage.table)
            if cols is None:
                return False
            if column in cols:
                owners.append(usage)
        if len(owners) == 1:
            return owners[0]
        if owners:  # ambiguous in SQL terms: the server would reject it
            return False
        return False if scope.opaque else None

    def _resolve(self, scope: _Scope, ref: ast.ColumnRef) -> tuple[TableUsage, bool] | None:
        """(usage, is_local) for a column reference, walking out to enclosing blocks."""
        raw = ref.fields or ()
        if not raw or any(not isinstance(f, ast.String) for f in raw):
            return None  # a.* and friends
        fields = tuple(_name(f) for f in raw)
        current: _Scope | None = scope
        local = True
        while current is not None:
            found = self._resolve_in(current, fields)
            if found is False:
                return None
            if isinstance(found, TableUsage):
                return found, local
            current = current.parent
            local = False
        return None

    def _key_side(self, scope: _Scope, node: Any) -> tuple[TableUsage, Key, bool] | None:
        """A side made of columns of exactly one table reference: (usage, key, is_local)."""
        if node is None or _contains(node, (ast.ParamRef, ast.SubLink)):
            return None
        refs = list(_column_refs(node))
        if not refs:
            return None
        resolved = [self._resolve(scope, r) for r in refs]
        if any(r is None for r in resolved):
            return None
        owners = {id(r[0]) for r in resolved if r is not None}
        if len(owners) != 1:
            return None
        usage, local = resolved[0]  # type: ignore[misc]
        problem = expression_problem(node)
        if problem is not None:  # ROLLUP(...), count(...), ctid: never an index key
            text = f"{RawStream()(node)}: {problem}"
            if text not in self.result.not_keys:
                self.result.not_keys.append(text)
            return None
        if isinstance(node, ast.ColumnRef) and node.fields:
            return usage, Key(_name(node.fields[-1])), local
        return usage, Key(expression_text(node), True), local

    # -- predicates -----------------------------------------------------------------------
    def _conjuncts(self, node: Any) -> Iterator[Any]:
        if isinstance(node, ast.BoolExpr) and node.boolop == BoolExprType.AND_EXPR:
            for arg in node.args or ():
                yield from self._conjuncts(arg)
        elif node is not None:
            yield node

    def _predicate(self, scope: _Scope, node: Any) -> None:
        if isinstance(node, tuple) and node[0] == "using":
            for usage in scope.usages:
                cols = self.columns_of(usage.table) if self.columns_of else None
                if cols is not None and node[1] in cols:
                    usage.add(usage.joins, Key(node[1]))
            return
        if isinstance(node, ast.A_Expr):
            self._a_expr(scope, node)
        elif isinstance(node, ast.SubLink) and node.subLinkType == SubLinkType.ANY_SUBLINK:
            side = self._key_side(scope, node.testexpr)
            if side is not None and side[2]:
                side[0].add(side[0].joins, side[1])

    def _a_expr(self, scope: _Scope, node: ast.A_Expr) -> None:
        op = _name(node.name[-1]) if node.name else ""
        kind = node.kind
        left = self._key_side(scope, node.lexpr)
        if kind == A_Expr_Kind.AEXPR_OP and op == "=":
            right = self._key_side(scope, node.rexpr)
            if left and right:
                if left[0] is right[0]:
                    return
                for usage, key, local in (left, right):
                    if local:
                        usage.add(usage.joins, key)
            elif left and _is_value(node.rexpr) and left[2]:
                left[0].add(left[0].equality, left[1])
                _note_param(left[0], left[1], node.rexpr)
            elif right and _is_value(node.lexpr) and right[2]:
                right[0].add(right[0].equality, right[1])
                _note_param(right[0], right[1], node.lexpr)
        elif kind == A_Expr_Kind.AEXPR_OP and op in RANGE_OPERATORS:
            right = self._key_side(scope, node.rexpr)
            if left and not right and _is_value(node.rexpr) and left[2]:
                left[0].add(left[0].ranges, left[1])
            elif right and not left and _is_value(node.lexpr) and right[2]:
                right[0].add(right[0].ranges, right[1])
        elif (kind == A_Expr_Kind.AEXPR_OP_ANY and op == "=") or (kind == A_Expr_Kind.AEXPR_IN and op == "="):
            if left and left[2] and _is_value(node.rexpr):
                left[0].add(left[0].in_list, left[1])
        elif kind in (A_Expr_Kind.AEXPR_BETWEEN, A_Expr_Kind.AEXPR_BETWEEN_SYM) and left and left[2] \
                and _is_value(node.rexpr):
            left[0].add(left[0].ranges, left[1])

    def _sorting(self, scope: _Scope, node: ast.SelectStmt) -> None:
        limited = node.limitCount is not None
        keys: list[tuple[TableUsage, Key, bool]] = []
        for item in node.sortClause or ():
            side = self._key_side(scope, item.node)
            if side is None or not side[2]:
                keys = []
                break
            keys.append((side[0], side[1], item.sortby_dir == SortByDir.SORTBY_DESC))
        if keys and len({id(k[0]) for k in keys}) == 1:
            usage = keys[0][0]
            usage.order_by = [(k[1], k[2]) for k in keys]
            usage.limited = limited
        groups = [self._key_side(scope, g) for g in node.groupClause or ()]
        if groups and all(g is not None and g[2] for g in groups):
            owners = {id(g[0]) for g in groups if g is not None}
            if len(owners) == 1:
                usage = groups[0][0]  # type: ignore[index]
                for g in groups:
                    usage.add(usage.group_by, g[1])  # type: ignore[index]

    # -- visitor hooks --------------------------------------------------------------------
    def visit_ParamRef(self, ancestors: Ancestor, node: ast.ParamRef) -> None:
        self.max_param = max(self.max_param, int(node.number or 0))

    def visit_SelectStmt(self, ancestors: Ancestor, node: ast.SelectStmt) -> None:
        scope = self._new_scope(ancestors, node)
        quals: list[Any] = []
        for item in node.fromClause or ():
            self._add_from(scope, item, quals)
        self._block(scope, [*quals, node.whereClause])
        self._sorting(scope, node)

    def visit_UpdateStmt(self, ancestors: Ancestor, node: ast.UpdateStmt) -> None:
        scope = self._new_scope(ancestors, node)
        quals: list[Any] = []
        self._add_from(scope, node.relation, quals)
        for item in node.fromClause or ():
            self._add_from(scope, item, quals)
        self._block(scope, [*quals, node.whereClause])

    def visit_DeleteStmt(self, ancestors: Ancestor, node: ast.DeleteStmt) -> None:
        scope = self._new_scope(ancestors, node)
        quals: list[Any] = []
        self._add_from(scope, node.relation, quals)
        for item in node.usingClause or ():
            self._add_from(scope, item, quals)
        self._block(scope, [*quals, node.whereClause])

    def visit_InsertStmt(self, ancestors: Ancestor, node: ast.InsertStmt) -> None:
        self._new_scope(ancestors, node)
        rel = node.relation
        if rel is None:
            return
        ref = TableRef(str(rel.schemaname) if rel.schemaname else None, str(rel.relname))
        if ref not in self.result.relations:
            self.result.relations.append(ref)

    def _block(self, scope: _Scope, clauses: list[Any]) -> None:
        for clause in clauses:
            for conjunct in self._conjuncts(clause):
                if isinstance(conjunct, ast.BoolExpr) and conjunct.boolop == BoolExprType.OR_EXPR:
                    self._disjunction(scope, conjunct)
                else:
                    self._predicate(scope, conjunct)

    def _disjunction(self, scope: _Scope, node: ast.BoolExpr) -> None:
        """``p OR q``: each disjunct's conjuncts are read on copies of the block's table references."""
        branches: list[list[TableUsage]] = []
        for arg in node.args or ():
            copy = _Scope(parent=scope.parent, usages=[TableUsage(u.table, u.alias) for u in scope.usages],
                          opaque=scope.opaque, ctes=scope.ctes)
            for conjunct in self._conjuncts(arg):
                if not (isinstance(conjunct, ast.BoolExpr) and conjunct.boolop == BoolExprType.OR_EXPR):
                    self._predicate(copy, conjunct)  # a nested OR inside a disjunct is left out
            branches.append(copy.usages)
        if len(branches) < 2:
            return
        for i, usage in enumerate(scope.usages):
            parts = [branch[i] for branch in branches]
            for bucket in ("equality", "in_list", "ranges", "joins"):
                first, *rest = (getattr(p, bucket) for p in parts)
                for key in first:
                    if all(key in other for other in rest):  # in every disjunct: as good as a conjunct
                        usage.add(getattr(usage, bucket), key)
            if all(p.equality or p.in_list or p.ranges for p in parts):
                usage.or_groups.append(parts)


def analyze(sql: str, columns_of: ColumnsOf | None = None) -> StatementAnalysis:
    """Analyze one statement text; never raises (errors end up in ``.error``)."""
    try:
        tree = parse_sql(sql)
    except Exception as exc:  # pglast.parser.ParseError, or anything odd in the input
        return StatementAnalysis(kind="unknown", error=f"cannot be parsed: {_first_line(exc)}")
    if len(tree) != 1:
        return StatementAnalysis(kind="unknown", error=f"{len(tree)} statements in one text")
    stmt = tree[0].stmt
    kind = DML_KINDS.get(type(stmt))
    if kind is None:
        return StatementAnalysis(kind="utility", error=f"utility statement ({type(stmt).__name__})")
    analyzer = _Analyzer(columns_of)
    try:
        analyzer(tree)
    except RecursionError:
        return StatementAnalysis(kind=kind, error="statement too deeply nested")
    except Exception as exc:  # a construct this analyzer does not know: skip, never crash the run
        return StatementAnalysis(kind=kind, error=f"cannot be analyzed: {_first_line(exc)}")
    result = analyzer.result
    result.kind = kind
    result.n_params = analyzer.max_param
    result.plain_rows = isinstance(stmt, ast.SelectStmt) and stmt.op == SetOperation.SETOP_NONE and \
        _returns_rows(stmt) and len(result.usages) == 1
    return result


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
