"""Generic-plan costs with and without HypoPG hypothetical indexes, under a budget.

All of it happens in the advisor's own read-only session: ``hypopg_create_index``
only adds the index to this backend's memory (it writes nothing, so
``default_transaction_read_only`` does not block it), ``EXPLAIN`` without
ANALYZE plans but never executes (also for UPDATE/DELETE), and ``PREPARE`` /
``SET`` are session-local. Nothing reaches the monitored database.

Normalized texts carry ``$n`` parameters without values, so we ask for the
generic plan: PostgreSQL 16+ has ``EXPLAIN (GENERIC_PLAN)``; 13-15 need
``PREPARE`` + ``SET plan_cache_mode = force_generic_plan`` + ``EXPLAIN EXECUTE``
with NULL arguments (NULLs are never looked at: the generic plan does not
depend on the values). A prepared statement caches its generic plan and
HypoPG does not invalidate it, so every measurement prepares afresh and
deallocates afterwards.

pg_stat_statements records every EXPLAIN as a utility statement by its text,
so the prepared statement always has the same name: thousands of what-if
plans then add a handful of entries (one per number of arguments) instead of
one each, which would evict the application's statements from the view.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from collectors.postgres.access import ADVISOR_TAG as TAG


@dataclass
class Budget:
    max_explains: int
    max_seconds: float
    explains: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def exhausted(self) -> bool:
        return self.explains >= self.max_explains or self.seconds >= self.max_seconds


class PlanError(Exception):
    """The statement cannot be planned (normalization artefact, unknown type, no privilege, ...)."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def plan_error(exc: psycopg.Error) -> PlanError:
    """The server refused one statement: a PlanError the caller skips and counts. Only a cancel from
    outside (``Advisor.cancel``, the service shutting down) goes on up; a statement that reached the
    session's statement_timeout is one statement that cannot be planned in time, not the end of the run."""
    if isinstance(exc, psycopg.errors.QueryCanceled) and "statement timeout" not in str(exc):
        raise exc
    return PlanError((str(exc).strip().splitlines() or [type(exc).__name__])[0][:200], getattr(exc, "sqlstate", None))


class WhatIf:
    def __init__(self, conn: psycopg.Connection[Any], server_version_num: int, budget: Budget,
                 can_hide: bool = False) -> None:
        self.conn = conn
        self.generic_explain = server_version_num >= 160000
        self.budget = budget
        self.hypothetical: list[int] = []
        self.can_hide = can_hide  # HypoPG >= 1.4: hypopg_hide_index() takes a real index out of plans
        self.hidden: list[int] = []
        if not self.generic_explain:
            conn.execute(f"SET /* {TAG} */ plan_cache_mode = force_generic_plan")

    def cost(self, query: str, n_params: int) -> float:
        """Total cost of the generic plan of ``query``; raises PlanError, counts one EXPLAIN."""
        return float(self.explain(query, n_params)["Total Cost"])

    def explain(self, query: str, n_params: int) -> dict[str, Any]:
        """The generic plan of ``query`` (EXPLAIN's JSON ``Plan`` node); raises PlanError, counts one EXPLAIN."""
        self.budget.explains += 1
        try:
            if self.generic_explain:
                row = self.conn.execute(
                    f"EXPLAIN (GENERIC_PLAN, FORMAT JSON) /* {TAG} */ {query}"
                ).fetchone()
            else:
                # One name (the tag), so pg_stat_statements sees one EXPLAIN text per arity; EXECUTE and
                # DEALLOCATE carry the tag as a comment too (PG 17+ record "DEALLOCATE $1", without the name).
                name = TAG
                self.conn.execute(f"PREPARE {name} AS {query}")
                try:
                    args = "(" + ", ".join(["NULL"] * n_params) + ")" if n_params else ""
                    row = self.conn.execute(
                        f"EXPLAIN (FORMAT JSON) EXECUTE /* {TAG} */ {name}{args}"
                    ).fetchone()
                finally:
                    self.conn.execute(f"DEALLOCATE /* {TAG} */ {name}")
        except psycopg.Error as exc:
            raise plan_error(exc) from exc
        assert row is not None
        plan: dict[str, Any] = row[0][0]["Plan"]
        return plan

    def create(self, create_index_sql: str) -> tuple[int, int]:
        """(oid, estimated size in bytes) of a new hypothetical index; raises PlanError when HypoPG refuses it."""
        try:
            row = self.conn.execute(
                f"SELECT /* {TAG} */ indexrelid, hypopg_relation_size(indexrelid) FROM hypopg_create_index(%s)",
                (create_index_sql,),
            ).fetchone()
        except psycopg.Error as exc:
            raise plan_error(exc) from exc
        assert row is not None
        self.hypothetical.append(int(row[0]))
        return int(row[0]), int(row[1])

    def drop(self, oid: int) -> None:
        self.conn.execute(f"SELECT /* {TAG} */ hypopg_drop_index(%s)", (oid,))
        self.hypothetical.remove(oid)

    def hide(self, oid: int) -> None:
        """Plan as if the real index ``oid`` were gone (HypoPG >= 1.4; this session only)."""
        self.conn.execute(f"SELECT /* {TAG} */ hypopg_hide_index(%s)", (oid,))
        self.hidden.append(oid)

    def unhide_all(self) -> None:
        if self.hidden:
            self.conn.execute(f"SELECT /* {TAG} */ hypopg_unhide_all_indexes()")
            self.hidden.clear()

    def reset(self) -> None:
        self.unhide_all()
        self.conn.execute(f"SELECT /* {TAG} */ hypopg_reset()")
        self.hypothetical.clear()
