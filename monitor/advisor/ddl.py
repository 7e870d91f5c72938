"""DDL text for people to copy: identifiers quoted the way PostgreSQL reads them."""

from __future__ import annotations

import re

from pglast.keywords import COL_NAME_KEYWORDS, RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS

from .query_analysis import Key

_SIMPLE = re.compile(r"[a-z_][a-z0-9_$]*\Z")
_KEYWORDS = RESERVED_KEYWORDS | TYPE_FUNC_NAME_KEYWORDS | COL_NAME_KEYWORDS


def quote_ident(name: str) -> str:
    """Bare when safe, otherwise double-quoted with embedded quotes doubled."""
    if _SIMPLE.match(name) and name not in _KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def index_element(key: Key, descending: bool = False) -> str:
    # An expression element must be parenthesised unless it is a bare function call;
    # parentheses are always accepted, so always use them.
    text = f"({key.text})" if key.is_expression else quote_ident(key.text)
    return text + (" DESC" if descending else "")


def create_index(schema: str, table: str, keys: list[tuple[Key, bool]], method: str = "btree",
                 where: str | None = None, concurrently: bool = True) -> str:
    """CONCURRENTLY unless the table is partitioned (PostgreSQL refuses it there)."""
    using = "" if method == "btree" else f" USING {quote_ident(method)}"
    elements = ", ".join(index_element(k, d) for k, d in keys)
    predicate = f" WHERE {where}" if where else ""
    how = "CONCURRENTLY " if concurrently else ""
    return f"CREATE INDEX {how}ON {qualified(schema, table)}{using} ({elements}){predicate};"


def drop_index(schema: str, name: str, concurrently: bool = True) -> str:
    """CONCURRENTLY unless the index is a partitioned table's (PostgreSQL refuses it there)."""
    return f"DROP INDEX {'CONCURRENTLY ' if concurrently else ''}{qualified(schema, name)};"
