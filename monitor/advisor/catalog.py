"""The catalog facts the advisor needs, read once per run in the advisor's session.

Tables (rows, size, write counts), their columns with ``pg_stats`` (n_distinct,
null_frac), unique and foreign keys, and every index with its key columns or
expressions, predicate, access method, operator classes, validity, scans and
size. Each query is tagged ``dbpulse_advisor`` so the advisor can recognise
(and ignore) its own statements in ``pg_stat_statements``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from collectors.postgres.access import ADVISOR_TAG as TAG

from .ddl import drop_index
from .query_analysis import Key, TableRef, canonical_expression

TABLES_SQL = f"""
SELECT /* {TAG} */ c.oid, n.nspname AS schema, c.relname AS name, greatest(c.reltuples, 0)::float8 AS rows,
       pg_relation_size(c.oid) AS size, coalesce(s.n_tup_ins + s.n_tup_upd + s.n_tup_del, 0) AS writes,
       coalesce(s.seq_scan, 0) AS seq_scan, coalesce(s.idx_scan, 0) AS idx_scan,
       coalesce(s.n_tup_ins, 0) AS inserts, coalesce(s.n_tup_upd, 0) AS updates,
       c.relkind = 'p' AS partitioned, coalesce(s.n_tup_hot_upd, 0) AS hot_updates
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'p', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
"""

COLUMNS_SQL = f"""
SELECT /* {TAG} */ a.attrelid AS relid, a.attname, a.attnum,
       NOT (t.typname IN ('numeric', 'float4', 'float8', 'jsonb', 'bpchar') OR t.typcategory IN ('A', 'C', 'R')
            OR coalesce((SELECT NOT co.collisdeterministic FROM pg_collation co WHERE co.oid = a.attcollation),
                        false)) AS deduplicates
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t0 ON t0.oid = a.atttypid
JOIN pg_type t ON t.oid = CASE WHEN t0.typtype = 'd' THEN t0.typbasetype ELSE t0.oid END
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
"""

STATS_SQL = f"""
SELECT /* {TAG} */ schemaname, tablename, attname, n_distinct, null_frac, avg_width,
       most_common_vals::text AS most_common_vals, most_common_freqs
FROM pg_stats WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
"""

CONSTRAINTS_SQL = f"""
SELECT /* {TAG} */ co.conrelid AS relid, co.contype,
       array(SELECT a.attname FROM unnest(co.conkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord)::text[] AS columns
FROM pg_constraint co
WHERE co.contype IN ('p', 'u', 'f') AND co.conrelid <> 0
"""

INDEXES_SQL = f"""
SELECT /* {TAG} */ i.indexrelid AS oid, n.nspname AS schema, ic.relname AS name, i.indrelid AS relid,
       am.amname AS method, i.indisunique AS is_unique, i.indisprimary AS is_primary, i.indisvalid AS is_valid,
       i.indisready AS is_ready, i.indnkeyatts AS n_key,
       i.indkey::int2[] AS indkey, i.indclass::oid[] AS opclasses, i.indcollation::oid[] AS collations,
       array(SELECT pg_get_indexdef(i.indexrelid, k, true)
             FROM generate_series(1, i.indnatts) k ORDER BY k)::text[] AS defs,
       array(SELECT coalesce(a.attname::text, '') FROM unnest(i.indkey::int2[]) WITH ORDINALITY u(attnum, ord)
             LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.attnum
             ORDER BY u.ord)::text[] AS attnames,
       pg_get_expr(i.indpred, i.indrelid, true) AS predicate,
       EXISTS (SELECT 1 FROM pg_constraint co WHERE co.conindid = i.indexrelid
               AND co.contype IN ('p', 'u', 'x')) AS constraint_backed,
       coalesce(s.idx_scan, 0) AS scans, pg_relation_size(i.indexrelid) AS size,
       NOT EXISTS (SELECT 1 FROM unnest(i.indclass::oid[]) WITH ORDINALITY u(opc, ord)
                   JOIN pg_opclass o ON o.oid = u.opc
                   WHERE u.ord <= i.indnkeyatts AND NOT o.opcdefault) AS default_opclasses,
       ic.relkind = 'I' AS partitioned,
       EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid) AS attached
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_am am ON am.oid = ic.relam
LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = i.indexrelid
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
"""

# Which table each foreign key references, and on which columns (the N+1 detector pairs statements with it).
REFERENCES_SQL = f"""
SELECT /* {TAG} */ co.conrelid AS relid, co.confrelid AS referenced,
       array(SELECT a.attname FROM unnest(co.conkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.attnum ORDER BY k.ord)::text[]
         AS columns,
       array(SELECT a.attname FROM unnest(co.confkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = co.confrelid AND a.attnum = k.attnum ORDER BY k.ord)::text[]
         AS referenced_columns
FROM pg_constraint co
WHERE co.contype = 'f' AND co.conrelid <> 0
"""

BUILDING_SQL = f"SELECT /* {TAG} */ index_relid FROM pg_stat_progress_create_index"
SERVER_VERSION_SQL = f"SELECT /* {TAG} */ current_setting('server_version_num') AS server_version_num"
SEARCH_PATH_SQL = f"SELECT /* {TAG} */ current_schemas(false) AS schemas"
QUALSTATS_SQL = f"SELECT /* {TAG} */ extversion FROM pg_extension WHERE extname = 'pg_qualstats'"
STATS_RESET_SQL = (
    f"SELECT /* {TAG} */ stats_reset, now() AS now FROM pg_stat_database WHERE datname = current_database()"
)
ROLE_SQL = f"""
SELECT /* {TAG} */ coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false)
       OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS reads_all_stats,
       current_setting('track_commit_timestamp') = 'on' AS commit_timestamps
"""
# The commit time of each index's pg_class row; NULL for frozen or too old transaction ids.
INDEX_COMMIT_SQL = f"""
SELECT /* {TAG} */ c.oid, pg_xact_commit_timestamp(c.xmin) AS committed
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
"""
HYPOPG_SQL = f"""
SELECT /* {TAG} */ e.extversion,
       EXISTS (SELECT 1 FROM pg_proc p WHERE p.proname = 'hypopg_hide_index' AND p.pronamespace = e.extnamespace)
         AS can_hide
FROM pg_extension e WHERE e.extname = 'hypopg'
"""


@dataclass
class Column:
    name: str
    n_distinct: float | None = None  # pg_stats convention: negative = fraction of rows
    null_frac: float | None = None
    avg_width: int | None = None  # bytes, from pg_stats
    attnum: int = 0
    most_common: list[tuple[str, float]] | None = None  # pg_stats most_common_vals (as text) and freqs
    # A btree on it can store equal keys once (deduplication, PostgreSQL 13+): not numeric, float, jsonb,
    # arrays, composites, ranges or a nondeterministic collation (the documented exceptions), nor character(n),
    # which measured no deduplication on PostgreSQL 15 (14 MB for 450,000 rows of 5 values, as many as unique ones).
    deduplicates: bool = True


@dataclass(frozen=True)
class TableId:
    """A table as PostgreSQL knows it: its oid, and its schema and name (either may hold dots); ``qualified``
    is for display only, never split back."""

    relid: int
    schema: str
    name: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass
class Table:
    oid: int
    schema: str
    name: str
    rows: float
    size_bytes: int
    writes: int
    seq_scan: int
    idx_scan: int
    inserts: int = 0  # n_tup_ins and n_tup_upd: the writes that add index entries
    updates: int = 0
    hot_updates: int = 0  # n_tup_hot_upd: updates that touched no index (HOT), evidence for write costs
    partitioned: bool = False  # relkind 'p': its indexes cannot be created or dropped CONCURRENTLY
    columns: dict[str, Column] = field(default_factory=dict)
    unique_keys: list[tuple[str, ...]] = field(default_factory=list)  # primary key and unique
    foreign_keys: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def id(self) -> TableId:
        return TableId(self.oid, self.schema, self.name)

    @property
    def row_width(self) -> float:
        """Average heap row size in bytes: the columns' pg_stats widths plus the tuple header, else size / rows."""
        widths = [c.avg_width for c in self.columns.values()]
        if widths and all(w is not None for w in widths):
            return 24.0 + sum(w for w in widths if w is not None)
        return self.size_bytes / self.rows if self.rows >= 1 else 0.0

    def entry_width(self, keys: Sequence[Key]) -> float | None:
        """Bytes of one btree entry on ``keys`` (8-byte header plus the keys' average widths), as pganalyze
        models it; None when a key has no statistics (expressions, columns never analyzed)."""
        total = 8.0
        for key in keys:
            col = None if key.is_expression else self.columns.get(key.text)
            if col is None or col.avg_width is None:
                return None
            total += col.avg_width
        return total

    def deduplicates(self, keys: Sequence[Key]) -> bool:
        """A btree on ``keys`` stores equal keys once: every key column's type allows it (an expression's type
        is not known here: assumed to)."""
        return all(key.is_expression or getattr(self.columns.get(key.text), "deduplicates", True) for key in keys)

    def distinct_values(self, column: str) -> float | None:
        col = self.columns.get(column)
        if col is None or col.n_distinct is None:
            return None
        return col.n_distinct if col.n_distinct >= 0 else -col.n_distinct * self.rows


@dataclass
class Index:
    oid: int
    schema: str
    name: str
    table_oid: int
    method: str
    is_unique: bool
    is_primary: bool
    is_valid: bool
    is_ready: bool
    n_key: int
    keys: tuple[Key, ...]  # key columns only; expression text as printed by the server
    include: tuple[str, ...]
    opclasses: tuple[int, ...]
    collations: tuple[int, ...]
    predicate: str | None
    constraint_backed: bool
    scans: int
    size_bytes: int
    default_opclasses: bool = True  # every key column uses its type's default operator class
    building: bool = False
    # The earliest time the index is known to have existed (None: unknown): the commit time of its pg_class
    # row (track_commit_timestamp; a REINDEX or rename makes it later, never earlier), or when the service
    # first saw it. An index younger than the unused window is never "unused" (hygiene.index_old_enough).
    known_since: datetime | None = None
    partitioned: bool = False  # a partitioned table's index (relkind 'I'): no CONCURRENTLY
    attached: bool = False  # a partition's index attached to its parent's: only the parent's can be dropped

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def protected(self) -> bool:
        """Never advise dropping: it enforces something, or PostgreSQL would refuse the drop."""
        return self.is_primary or self.is_unique or self.constraint_backed or self.attached

    def drop_ddl(self) -> str:
        return drop_index(self.schema, self.name, concurrently=not self.partitioned)

    def key_signature(self) -> tuple[str, ...]:
        return tuple(key_signature(k) for k in self.keys)


@dataclass(frozen=True)
class Reference:
    """A foreign key: ``table``'s ``columns`` reference ``referenced``'s ``referenced_columns``."""

    table: int  # oid
    columns: tuple[str, ...]
    referenced: int  # oid
    referenced_columns: tuple[str, ...]


def key_signature(key: Key) -> str:
    return "e:" + canonical_expression(key.text) if key.is_expression else "c:" + key.text


@dataclass
class Catalog:
    tables: dict[int, Table] = field(default_factory=dict)
    indexes: list[Index] = field(default_factory=list)
    stats_reset: datetime | None = None
    now: datetime | None = None
    server_version_num: int = 0
    hypopg_version: str | None = None
    hypopg_can_hide: bool = False  # HypoPG >= 1.4: hypopg_hide_index()
    qualstats_version: str | None = None  # pg_qualstats in this database: samples of real constants
    reads_all_stats: bool = True  # superuser or pg_read_all_stats: other roles' statement texts are visible
    commit_timestamps: bool = False  # track_commit_timestamp = on: indexes' known_since from their pg_class rows
    notes: list[str] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)  # every foreign key, with what it references
    _by_name: dict[tuple[str, str], Table] = field(default_factory=dict)
    search_path: tuple[str, ...] = ("public",)

    def table(self, ref: TableRef) -> Table | None:
        schemas = (ref.schema,) if ref.schema else self.search_path
        for schema in schemas:
            found = self._by_name.get((schema, ref.name))
            if found is not None:
                return found
        return None

    def columns_of(self, ref: TableRef) -> frozenset[str] | None:
        table = self.table(ref)
        return frozenset(table.columns) if table else None

    def indexes_of(self, table: Table) -> list[Index]:
        return [i for i in self.indexes if i.table_oid == table.oid]


def parse_array(text: str) -> list[str] | None:
    """Elements of a one-dimensional PostgreSQL array literal (``{a,"b c",NULL}``); None if it is not one."""
    if len(text) < 2 or text[0] != "{" or text[-1] != "}":
        return None
    out: list[str] = []
    i, body = 0, text[1:-1]
    while i < len(body):
        if body[i] == '"':
            i += 1
            value = []
            while i < len(body) and body[i] != '"':
                if body[i] == "\\" and i + 1 < len(body):
                    i += 1
                value.append(body[i])
                i += 1
            out.append("".join(value))
            i += 1  # the closing quote
        else:
            end = body.find(",", i)
            end = len(body) if end < 0 else end
            item = body[i:end]
            if item.startswith("{"):
                return None  # nested: not one-dimensional
            out.append(item)
            i = end
        if i < len(body) and body[i] == ",":
            i += 1
    return out


def _rows(conn: psycopg.Connection[Any], sql: str) -> list[dict[str, Any]]:
    """The rows of ``sql`` by column name: each reader names what it reads, so the SQL and it cannot drift."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql).fetchall()


def read_catalog(conn: psycopg.Connection[Any]) -> Catalog:
    """Read tables, columns, constraints, indexes; degrade (with a note) where refused."""
    cat = Catalog()
    cat.server_version_num = int(_rows(conn, SERVER_VERSION_SQL)[0]["server_version_num"])
    path = _rows(conn, SEARCH_PATH_SQL)[0]["schemas"]
    cat.search_path = tuple(path) or ("public",)
    _read_tables(conn, cat)
    _read_stats(conn, cat)
    _read_constraints(conn, cat)
    _read_indexes(conn, cat)
    _read_session(conn, cat)
    return cat


def _read_tables(conn: psycopg.Connection[Any], cat: Catalog) -> None:
    """The tables with their activity counters, and their columns."""
    for r in _rows(conn, TABLES_SQL):
        table = Table(r["oid"], r["schema"], r["name"], float(r["rows"]), int(r["size"]), int(r["writes"]),
                      int(r["seq_scan"]), int(r["idx_scan"]), int(r["inserts"]), int(r["updates"]),
                      partitioned=bool(r["partitioned"]), hot_updates=int(r["hot_updates"]))
        cat.tables[table.oid] = table
        cat._by_name[(table.schema, table.name)] = table
    for r in _rows(conn, COLUMNS_SQL):
        if r["relid"] in cat.tables:
            cat.tables[r["relid"]].columns[r["attname"]] = Column(r["attname"], attnum=int(r["attnum"]),
                                                                  deduplicates=bool(r["deduplicates"]))


def _read_stats(conn: psycopg.Connection[Any], cat: Catalog) -> None:
    """pg_stats per column: distinct values, null fraction, width, most common values."""
    try:
        for r in _rows(conn, STATS_SQL):
            stats_of = cat._by_name.get((r["schemaname"], r["tablename"]))
            if stats_of is not None and r["attname"] in stats_of.columns:
                column = stats_of.columns[r["attname"]]
                column.n_distinct = float(r["n_distinct"])
                column.null_frac = float(r["null_frac"])
                column.avg_width = int(r["avg_width"]) if r["avg_width"] is not None else None
                mcv, freqs = r["most_common_vals"], r["most_common_freqs"]
                values = parse_array(mcv) if mcv else None
                if values is not None and freqs is not None and len(values) == len(freqs):
                    column.most_common = [(v, float(f)) for v, f in zip(values, freqs, strict=True)]
    except psycopg.Error as exc:
        cat.notes.append(f"pg_stats not readable ({exc.sqlstate}): low-selectivity checks disabled")


def _read_constraints(conn: psycopg.Connection[Any], cat: Catalog) -> None:
    """Foreign and unique keys per table, and the references between tables."""
    for r in _rows(conn, CONSTRAINTS_SQL):
        owner = cat.tables.get(r["relid"])
        if owner is None:
            continue
        (owner.foreign_keys if r["contype"] == "f" else owner.unique_keys).append(tuple(r["columns"]))
    cat.references = [Reference(int(r["relid"]), tuple(r["columns"]), int(r["referenced"]),
                                tuple(r["referenced_columns"]))
                      for r in _rows(conn, REFERENCES_SQL)]


def _read_indexes(conn: psycopg.Connection[Any], cat: Catalog) -> None:
    """Every index with its keys and use; a valid unique one on plain columns is a unique key of its table."""
    building = {r["index_relid"] for r in _rows(conn, BUILDING_SQL)}
    for r in _rows(conn, INDEXES_SQL):
        n_key, indkey, defs, attnames = r["n_key"], r["indkey"], r["defs"], r["attnames"]
        keys = tuple(
            Key(attnames[k]) if indkey[k] != 0 else Key(defs[k], True) for k in range(n_key)
        )
        index = Index(
            r["oid"], r["schema"], r["name"], r["relid"], r["method"], r["is_unique"], r["is_primary"],
            r["is_valid"], r["is_ready"], n_key, keys, tuple(defs[n_key:]), tuple(r["opclasses"][:n_key]),
            tuple(r["collations"][:n_key]), r["predicate"], r["constraint_backed"], int(r["scans"]), int(r["size"]),
            default_opclasses=bool(r["default_opclasses"]), building=r["oid"] in building,
            partitioned=bool(r["partitioned"]), attached=bool(r["attached"]),
        )
        cat.indexes.append(index)
        indexed = cat.tables.get(index.table_oid)
        if indexed is not None and index.is_unique and index.is_valid and index.predicate is None and all(
            not k.is_expression for k in keys
        ):
            cols = tuple(k.text for k in keys)
            if cols not in indexed.unique_keys:
                indexed.unique_keys.append(cols)


def _read_session(conn: psycopg.Connection[Any], cat: Catalog) -> None:
    """When statistics were reset, what the role may read, and the extensions the advisor uses."""
    reset = _rows(conn, STATS_RESET_SQL)[0]
    cat.stats_reset, cat.now = reset["stats_reset"], reset["now"]
    role = _rows(conn, ROLE_SQL)[0]
    cat.reads_all_stats, cat.commit_timestamps = bool(role["reads_all_stats"]), bool(role["commit_timestamps"])
    if cat.commit_timestamps:
        try:
            committed = {r["oid"]: r["committed"] for r in _rows(conn, INDEX_COMMIT_SQL)}
        except psycopg.Error as exc:
            cat.notes.append(f"indexes' commit timestamps not readable ({exc.sqlstate}): an index's age is "
                             "known only from when the service first saw it")
            committed = {}
        for index in cat.indexes:
            index.known_since = committed.get(index.oid)
    found = _rows(conn, HYPOPG_SQL)
    cat.hypopg_version = str(found[0]["extversion"]) if found else None
    cat.hypopg_can_hide = bool(found[0]["can_hide"]) if found else False
    found = _rows(conn, QUALSTATS_SQL)
    cat.qualstats_version = str(found[0]["extversion"]) if found else None
