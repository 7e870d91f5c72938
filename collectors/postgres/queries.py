"""Statistics SQL kept as data, one text per server-version band.

Each entry maps a minimum ``server_version_num`` to the SQL used from that
version on; ``pick`` chooses the newest band the server satisfies. Columns
were renamed between releases (PG 13 ``total_time`` -> ``total_exec_time``,
PG 17 ``blk_read_time`` -> ``shared_blk_read_time``, PG 14 added
``pg_stat_statements_info``), so a query is never patched at run time.
"""

from __future__ import annotations

from collections.abc import Mapping

MIN_SUPPORTED = 130000

SERVER = {
    MIN_SUPPORTED: """
SELECT current_setting('server_version_num')::int AS version_num,
       current_setting('server_version') AS version,
       current_setting('max_connections')::int AS max_connections,
       current_database() AS datname,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS read_all_stats,
       EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') AS pgss_installed,
       EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg') AS hypopg_available
""",
}

ACTIVITY = {
    MIN_SUPPORTED: """
SELECT coalesce(datname, '') AS datname,
       coalesce(state, 'unknown') AS state,
       coalesce(application_name, '') AS application_name,
       count(*) AS n
FROM pg_stat_activity
WHERE backend_type = 'client backend'
GROUP BY 1, 2, 3
""",
}

ACTIVITY_AGES = {
    MIN_SUPPORTED: """
SELECT coalesce(extract(epoch FROM max(now() - xact_start)
                FILTER (WHERE pid <> pg_backend_pid())), 0)::float8 AS oldest_xact,
       coalesce(extract(epoch FROM max(now() - state_change)
                FILTER (WHERE state IN ('idle in transaction', 'idle in transaction (aborted)'))),
                0)::float8 AS oldest_idle_in_xact,
       count(*) FILTER (WHERE wait_event_type = 'Lock') AS lock_waiting
FROM pg_stat_activity
WHERE backend_type = 'client backend'
""",
}

DATABASES = {
    MIN_SUPPORTED: """
SELECT d.datname, d.xact_commit, d.xact_rollback, d.blks_hit, d.blks_read, d.deadlocks, d.temp_bytes,
       extract(epoch FROM d.stats_reset)::float8 AS stats_reset
FROM pg_stat_database d
JOIN pg_database db ON db.oid = d.datid
WHERE d.datname IS NOT NULL AND db.datallowconn
""",
}

# Column names are the field names of snapshot.TableRow / IndexRow.
TABLES = {
    MIN_SUPPORTED: """
SELECT relid, schemaname AS schema, relname AS "table", seq_scan AS seq_scans,
       coalesce(idx_scan, 0) AS index_scans, n_live_tup AS live_rows, n_dead_tup AS dead_rows,
       n_tup_ins AS rows_inserted, n_tup_upd AS rows_updated, n_tup_del AS rows_deleted,
       n_tup_hot_upd AS rows_hot_updated,
       extract(epoch FROM last_vacuum)::float8 AS last_vacuum,
       extract(epoch FROM last_autovacuum)::float8 AS last_autovacuum,
       extract(epoch FROM last_analyze)::float8 AS last_analyze,
       extract(epoch FROM last_autoanalyze)::float8 AS last_autoanalyze
FROM pg_stat_user_tables
""",
}

INDEXES = {
    MIN_SUPPORTED: """
SELECT indexrelid, schemaname AS schema, relname AS "table", indexrelname AS "index", idx_scan AS scans
FROM pg_stat_user_indexes
""",
}

# Sizes cost a stat() per file and change slowly: they are read every
# postgres.size_interval seconds, not every poll. Sizing a relation takes an
# ACCESS SHARE lock; to never queue behind the application's ACCESS EXCLUSIVE
# locks (ALTER TABLE, REINDEX, ...), a locked relation is sized from
# pg_class.relpages (as of its last VACUUM/ANALYZE). A lock taken between the
# check and the call is cut by lock_timeout.
SIZES = {
    MIN_SUPPORTED: """
WITH locked AS (
    SELECT DISTINCT relation FROM pg_locks
    WHERE locktype = 'relation' AND mode = 'AccessExclusiveLock'
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
)
SELECT rel.oid AS relid,
       CASE WHEN rel.oid IN (SELECT relation FROM locked) OR rel.table_oid IN (SELECT relation FROM locked)
            THEN rel.relpages::bigint * current_setting('block_size')::int
            WHEN rel.is_index THEN pg_relation_size(rel.oid)
            ELSE pg_total_relation_size(rel.oid) END AS size_bytes
FROM (
    SELECT relid AS oid, relid AS table_oid, false AS is_index, c.relpages
    FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
    UNION ALL
    SELECT indexrelid, relid, true, c.relpages
    FROM pg_stat_user_indexes s JOIN pg_class c ON c.oid = s.indexrelid
) rel
""",
}

DATABASE_SIZES = {
    MIN_SUPPORTED: """
SELECT datname, pg_database_size(oid) AS size_bytes
FROM pg_database
WHERE datallowconn AND (has_database_privilege(oid, 'CONNECT')
                        OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'))
""",
}

# The one pg_stat_statements reader (collectors/postgres/statements.py), for
# the collector and the advisor. Summed over userid: one row per statement of
# this database. From PG 14 on, only top-level statements: with
# pg_stat_statements.track = all the nested ones (inside functions, or planned
# inside another session's EXPLAIN, such as the advisor's what-if plans) would
# add calls the application never made, under the same queryid.
# Parameters: text_length (characters of text), limit (rows; NULL for all).
_STATEMENTS = """
SELECT queryid, sum(calls)::bigint AS calls, sum(total_exec_time)::float8 / 1000 AS exec_seconds,
       sum(rows)::bigint AS rows, sum(shared_blks_hit)::bigint AS blks_hit,
       sum(shared_blks_read)::bigint AS blks_read, min(left(query, %(text_length)s)) AS query
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND queryid IS NOT NULL {toplevel}
GROUP BY queryid
ORDER BY sum(total_exec_time) DESC, queryid
LIMIT %(limit)s
"""
STATEMENTS = {
    MIN_SUPPORTED: _STATEMENTS.format(toplevel=""),
    140000: _STATEMENTS.format(toplevel="AND toplevel"),
}

STATEMENTS_RESET: dict[int, str | None] = {
    MIN_SUPPORTED: None,
    140000: "SELECT extract(epoch FROM stats_reset)::float8 AS stats_reset FROM pg_stat_statements_info",
}


def pick(bands: Mapping[int, str | None], version_num: int) -> str | None:
    """The SQL of the newest band at or below ``version_num``; None where the version lacks the view."""
    if version_num < MIN_SUPPORTED:
        raise ValueError(f"PostgreSQL {version_num} is older than the supported 13")
    return bands[max(v for v in bands if v <= version_num)]


def pick_required(bands: Mapping[int, str], version_num: int) -> str:
    """``pick`` for a query every supported version has."""
    sql = pick(bands, version_num)
    assert sql is not None
    return sql
