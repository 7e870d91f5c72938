"""What the advisor's role may not read, checked before it plans anything.

``EXPLAIN`` checks privileges as a query would: a statement on a table the role may not ``SELECT``, or one
calling a function it may not ``EXECUTE`` (``pg_switch_wal()``, ``pg_reload_conf()``,
``pg_stat_statements_reset()``: a DBA's or the provider's agent's statements, which pg_stat_statements shows
like any other), is refused, and the server logs every refusal as an ERROR. On a managed cloud that log is
the customer's (CloudWatch, Cloud Logging, Azure Monitor): a monitoring role should fill it with nothing. So
those statements are not sent: they are skipped with the same reason the server's refusal would give
(``no privilege to plan it: SELECT on table orders``, category ``privilege``), and the rest is planned.

The check is conservative: a table counts as unreadable only when the role may read none of its columns
(``has_any_column_privilege``) or may not use its schema, a function name only when the role may execute
none of the functions of that name. Whatever this misses is still refused by the server and reported the
same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from collectors.postgres.access import ADVISOR_TAG as TAG

from .candidates import Workload
from .catalog import Catalog
from .query_analysis import StatementAnalysis, TableRef

DENIED_SQL = f"""
SELECT /* {TAG} */ 'table', n.nspname, c.relname,
       CASE WHEN has_schema_privilege(n.oid, 'USAGE') THEN 'SELECT on table ' || c.relname
            ELSE 'USAGE on schema ' || n.nspname END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT (has_schema_privilege(n.oid, 'USAGE') AND has_any_column_privilege(c.oid, 'SELECT'))
UNION ALL
SELECT 'function', NULL, p.proname, 'EXECUTE on function ' || p.proname
FROM pg_proc p
GROUP BY p.proname
HAVING bool_and(NOT has_function_privilege(p.oid, 'EXECUTE'))
"""
TABLE_SQL = f"""
SELECT /* {TAG} */ CASE WHEN NOT has_schema_privilege(n.oid, 'USAGE') THEN 'USAGE on schema ' || n.nspname
                        WHEN NOT has_any_column_privilege(c.oid, 'SELECT') THEN 'SELECT on table ' || c.relname END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = %s
"""
PREFIX = "no privilege to plan it: "
# String literals and comments, where a function's name is no call (pg_stat_statements replaces most constants
# with $n, not all).
_NOT_CODE = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/", re.DOTALL)


@dataclass
class Denied:
    """The relations (schema, name) and function names the role may not use, with the privilege it lacks."""

    tables: dict[tuple[str, str], str] = field(default_factory=dict)
    functions: dict[str, str] = field(default_factory=dict)
    _calls: re.Pattern[str] | None = None

    def table(self, ref: TableRef, search_path: tuple[str, ...]) -> str | None:
        for schema in (ref.schema,) if ref.schema else search_path:
            found = self.tables.get((schema, ref.name))
            if found is not None:
                return found
        return None

    def function(self, text: str) -> str | None:
        """The privilege lacked for the first call in ``text`` of a function the role may not execute."""
        if not self.functions:
            return None
        if self._calls is None:
            names = "|".join(re.escape(n) for n in sorted(self.functions, key=len, reverse=True))
            self._calls = re.compile(rf'(?<![\w$"])(?:\w+\s*\.\s*)?({names})\s*\(', re.IGNORECASE)
        for found in self._calls.finditer(_NOT_CODE.sub(" ", text)):
            missing = self.functions.get(found.group(1)) or self.functions.get(found.group(1).lower())
            if missing is not None:
                return missing
        return None


def read_denied(conn: psycopg.Connection[Any]) -> Denied:
    """What the role may not read or call; nothing when the check itself fails (the server still refuses)."""
    denied = Denied()
    try:
        rows = conn.execute(DENIED_SQL).fetchall()
    except psycopg.Error:
        return denied
    for kind, schema, name, missing in rows:
        if kind == "table":
            denied.tables[(schema, name)] = missing
        else:
            denied.functions[name] = missing
    return denied


def table_privilege_missing(conn: psycopg.Connection[Any], oid: int) -> str | None:
    """The privilege the role lacks to plan a query on table ``oid`` (``SELECT on table orders``), else None."""
    row = conn.execute(TABLE_SQL, (oid,)).fetchone()
    return str(row[0]) if row and row[0] else None


def refused_by_privilege(denied: Denied, workload: Workload, cat: Catalog,
                         analyze: Callable[[str, Catalog], StatementAnalysis]) -> dict[int, str]:
    """The statements the server would refuse to plan for the role, with the reason (queryid -> reason): what
    is planned is checked (a write's read side, ``plan_forms``), so a write's own table needs no SELECT."""
    refused: dict[int, str] = {}
    for stat, analysis in workload.items:
        if stat.queryid in workload.unread:
            continue  # never planned
        text = workload.planned_texts.get(stat.queryid, stat.query)
        relations = analysis.relations if text == stat.query else analyze(text, cat).relations
        missing = next((m for m in (denied.table(r, cat.search_path) for r in relations) if m), None)
        missing = missing or denied.function(text)
        if missing is not None:
            refused[stat.queryid] = f"{PREFIX}{missing} (permission denied: found before planning, so not sent)"
    return refused
