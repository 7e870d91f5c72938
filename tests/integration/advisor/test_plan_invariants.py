"""Plan invariants on generated schemas, on a real database (Hypothesis).

Each example builds tables with foreign keys, indexes (duplicates, prefixes and permutations included) and
a set of statements run for real, runs the advisor with an unused window drawn from very short to long,
applies the plan as printed, and checks that no plan ever:

- drops an index that a statement uses (with the plan's creates in place) unless an index that stays
  serves its lookups, or that another action relies on;
- leaves a foreign key without a leading index it had;
- calls an index younger than the window unused (its age from its pg_class row's commit time);
- shows DDL for a held-back item;

and that every step it prints runs. ``make test`` runs a bounded number of examples;
``DBPULSE_HYPOTHESIS_PROFILE=thorough`` runs many more.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.servers import LocalPostgres
from monitor.advisor import AdviceReport, Advisor, Thresholds, render_markdown
from monitor.advisor.plans import index_names
from monitor.web.pages import render_advice_report
from tests.integration.advisor.conftest import new_database

settings.register_profile("default-invariants", max_examples=10, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
PROFILE = "thorough" if os.environ.get("DBPULSE_HYPOTHESIS_PROFILE") == "thorough" else "default-invariants"
COLUMNS = ("a", "b", "c")
_names = itertools.count()


@dataclass(frozen=True)
class Schema:
    rows: tuple[int, ...]  # per table t0, t1, ...
    moduli: tuple[tuple[int, ...], ...]  # per table, distinct values of a, b, c
    fks: tuple[tuple[int, int, str], ...]  # (child table, parent table, child column)
    indexes: tuple[tuple[int, tuple[str, ...]], ...]  # (table, columns)
    statements: tuple[tuple[int, str, tuple[str, ...]], ...]  # (table, shape, columns)
    window: float


@st.composite
def schemas(draw: st.DrawFn) -> Schema:
    n = draw(st.integers(1, 3))
    rows = tuple(draw(st.sampled_from((300, 2000, 6000))) for _ in range(n))
    moduli = tuple(tuple(draw(st.sampled_from((2, 7, 50, 400, 5000))) for _ in COLUMNS) for _ in range(n))
    fks = tuple((child, draw(st.integers(0, child - 1)), draw(st.sampled_from(COLUMNS)))
                for child in range(1, n) if draw(st.booleans()))
    cols = st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=2, unique=True).map(tuple)
    indexes = tuple(draw(st.lists(st.tuples(st.integers(0, n - 1), cols), max_size=6)))
    # a foreign key's column often has an index, often a prefix of another one: the demo's shape
    indexes += tuple((child, (col,)) for child, _, col in fks if draw(st.booleans()))
    indexes += tuple((child, (col, draw(st.sampled_from(COLUMNS)))) for child, _, col in fks if draw(st.booleans()))
    shapes = st.sampled_from(("eq", "eq2", "range", "order_limit", "join"))
    statements = tuple(draw(st.lists(st.tuples(st.integers(0, n - 1), shapes, cols), min_size=1, max_size=6)))
    window = draw(st.sampled_from((0.0, 0.3, 1.5, 3600.0)))
    return Schema(rows, moduli, tuple((c, p, col) for c, p, col in fks if (c, p) != (0, 0)), indexes, statements,
                  window)


def _sql(schema: Schema, table: int, shape: str, cols: tuple[str, ...]) -> tuple[str, int] | None:
    """A statement text with $n parameters and its number of parameters."""
    t, first = f"t{table}", cols[0]
    if shape == "eq":
        return f"SELECT id FROM {t} WHERE {first} = $1", 1
    if shape == "eq2" and len(cols) == 2:
        return f"SELECT id FROM {t} WHERE {cols[0]} = $1 AND {cols[1]} = $2", 2
    if shape == "range":
        return f"SELECT count(*) FROM {t} WHERE {first} > $1 AND {first} < $2", 2
    if shape == "order_limit" and len(cols) == 2:
        return f"SELECT id FROM {t} WHERE {cols[0]} = $1 ORDER BY {cols[1]} LIMIT 5", 1
    if shape == "join":
        fk = next(((c, p, col) for c, p, col in schema.fks if table in (c, p)), None)
        if fk is None:
            return None
        child, parent, col = fk
        return (f"SELECT t{child}.id FROM t{child} JOIN t{parent} ON t{parent}.id = t{child}.{col} "
                f"WHERE t{parent}.{first} = $1", 1)
    return None


def _build(dsn: str, schema: Schema) -> list[tuple[str, int]]:
    statements = [s for s in (_sql(schema, *x) for x in schema.statements) if s is not None]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i, (rows, mods) in enumerate(zip(schema.rows, schema.moduli, strict=True)):
            conn.execute(f"CREATE TABLE t{i} (id int PRIMARY KEY, a int NOT NULL, b int NOT NULL, c int NOT NULL)")
            conn.execute(f"INSERT INTO t{i} SELECT g, g % {mods[0]}, (g * 7) % {mods[1]}, (g * 13) % {mods[2]} "  # type: ignore[arg-type]
                         f"FROM generate_series(1, {rows}) g")
        for child, parent, col in schema.fks:
            # every value of the child's column is an id of the parent (1 .. rows)
            conn.execute(f"UPDATE t{child} SET {col} = 1 + {col} % {schema.rows[parent]}")  # type: ignore[arg-type]
            conn.execute(f"ALTER TABLE t{child} ADD FOREIGN KEY ({col}) REFERENCES t{parent}")  # type: ignore[arg-type]
        for table, cols in schema.indexes:
            conn.execute(f"CREATE INDEX ix_{next(_names)} ON t{table} ({', '.join(cols)})")  # type: ignore[arg-type]
        conn.execute("ANALYZE")
        for text, n in statements:
            conn.execute(f"PREPARE q AS {text}")  # type: ignore[arg-type]
            for k in range(12):
                conn.execute(f"EXECUTE q({', '.join(str(k * (p + 3)) for p in range(n))})")  # type: ignore[arg-type]
            conn.execute("DEALLOCATE q")
    return statements


def _plans_use(conn: psycopg.Connection[Any], statements: list[tuple[str, int]]) -> dict[str, list[str]]:
    """Index name -> the statements whose generic plan uses it, now."""
    conn.execute("SET plan_cache_mode = force_generic_plan")
    used: dict[str, list[str]] = {}
    for text, n in statements:
        conn.execute(f"PREPARE g AS {text}")  # type: ignore[arg-type]
        row = conn.execute(f"EXPLAIN (FORMAT JSON) EXECUTE g({', '.join(['NULL'] * n)})").fetchone()  # type: ignore[arg-type]
        conn.execute("DEALLOCATE g")
        assert row is not None
        for name in index_names(row[0][0]["Plan"]):
            used.setdefault(name, []).append(text)
    return used


def _fk_leading(conn: psycopg.Connection[Any], fks: tuple[tuple[int, int, str], ...]) -> set[tuple[int, str]]:
    """The foreign keys (child table, column) that have a valid btree index leading with their column."""
    out = set()
    for child, _, col in fks:
        found = conn.execute(
            "SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE i.indrelid = %s::regclass AND a.attname = %s AND i.indisvalid AND i.indpred IS NULL",
            (f"t{child}", col)).fetchone()
        if found:
            out.add((child, col))
    return out


def _check(report: AdviceReport, dsn: str, schema: Schema, statements: list[tuple[str, int]],
           born: dict[str, datetime]) -> None:
    data = report.to_json_dict()
    actions = data["plan"]["actions"]
    dropped = {name for a in actions for name in a.get("drops", [])}
    created = {f"{n['table']} ({', '.join(n['columns'])})" for a in actions for n in a.get("creates", [])}
    held = {h["subject"] for h in data["plan"]["held_back"]}

    # held-back items have nothing to copy, anywhere
    for f in data["findings"]:
        assert not (f.get("held_back") and f.get("ddl")), f
    texts = [render_markdown(report), render_advice_report(report, standalone=True)]
    texts += [s for a in actions for s in a["steps"]]
    for subject in held & {f"public.{n}" for n in born}:
        assert subject not in dropped, subject
        assert not [t for t in texts if f"INDEX CONCURRENTLY {subject};" in t or f"INDEX {subject};" in t], subject

    # no index younger than the window is called unused
    for f in data["findings"]:
        if f["kind"] == "unused_index":
            age = (report.generated_at - born[f["index"].split(".", 1)[1]]).total_seconds()
            assert age >= schema.window, (f["index"], age, schema.window)

    # no action relies on an index another action drops
    for a in actions:
        for needed in a.get("relies_on", []):
            assert needed not in dropped, (a, dropped)
            assert needed in created or needed.startswith("public."), needed

    with psycopg.connect(dsn, autocommit=True) as conn:
        before = _fk_leading(conn, schema.fks)
        creates = [s for a in actions for s in a["steps"] if s.startswith("CREATE")]
        drops = [s for a in actions for s in a["steps"] if s.startswith("DROP")]
        for step in creates:  # every step runs as printed
            conn.execute(step)  # type: ignore[arg-type]
        used = _plans_use(conn, statements)
        for a in actions:  # a drop on its own: no statement uses the index with the creates in place
            if a["action"] == "drop" and not a.get("relies_on") and "invalid_index" not in a["kinds"]:
                for name in a["drops"]:
                    assert not used.get(name.split(".", 1)[1]), (name, used, a)
        for step in drops:
            conn.execute(step)  # type: ignore[arg-type]
        after = _fk_leading(conn, schema.fks)
    assert before <= after, (before - after, actions)


@settings(settings.get_profile(PROFILE))
@given(schema=schemas())
def test_no_plan_breaks_a_safety_rule(commit_ts_server: LocalPostgres, schema: Schema) -> None:
    name = f"inv{next(_names)}"
    dsn = new_database(commit_ts_server, name)
    try:
        statements = _build(dsn, schema)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_stat_force_next_flush()")
            born = {r[0]: r[1] for r in conn.execute(
                "SELECT c.relname, pg_xact_commit_timestamp(c.xmin) FROM pg_class c JOIN pg_index i "
                "ON i.indexrelid = c.oid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
            ).fetchall()}
        report = Advisor(dsn, name, Thresholds(min_table_rows=200, unused_min_stats_age_seconds=schema.window,
                                               low_selectivity_min_rows=200)).run()
        assert not [n for n in report.notes if "failed" in n.lower()], report.notes
        _check(report, dsn, schema, statements, born)
    finally:
        with psycopg.connect(commit_ts_server.dsn(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]
