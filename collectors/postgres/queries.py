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
       CASE WHEN has_database_privilege(d.datid, 'CONNECT')
                 OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')
            THEN pg_database_size(d.datid) END AS size_bytes,
       extract(epoch FROM d.stats_reset)::float8 AS stats_reset
FROM pg_stat_database d
JOIN pg_database db ON db.oid = d.datid
WHERE d.datname IS NOT NULL AND db.datallowconn
""",
}

# Sizing a relation takes an ACCESS SHARE lock. To never queue behind the
# application's ACCESS EXCLUSIVE locks (ALTER TABLE, REINDEX, ...), a locked
# relation is sized from pg_class.relpages (as of its last VACUUM/ANALYZE);
# a lock taken between the check and the call is cut by lock_timeout.
_EXCLUSIVE = """EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'relation' AND l.database = (
    SELECT oid FROM pg_database WHERE datname = current_database())
    AND l.relation IN ({rels}) AND l.mode = 'AccessExclusiveLock')"""

TABLES = {
    MIN_SUPPORTED: """
SELECT schemaname, relname, seq_scan, coalesce(idx_scan, 0) AS idx_scan, n_live_tup, n_dead_tup,
       CASE WHEN """ + _EXCLUSIVE.format(rels="s.relid") + """
            THEN (SELECT relpages::bigint * current_setting('block_size')::int FROM pg_class WHERE oid = s.relid)
            ELSE pg_total_relation_size(s.relid) END AS size_bytes,
       extract(epoch FROM last_vacuum)::float8 AS last_vacuum,
       extract(epoch FROM last_autovacuum)::float8 AS last_autovacuum,
       extract(epoch FROM last_analyze)::float8 AS last_analyze,
       extract(epoch FROM last_autoanalyze)::float8 AS last_autoanalyze
FROM pg_stat_user_tables s
""",
}

INDEXES = {
    MIN_SUPPORTED: """
SELECT schemaname, relname, indexrelname, idx_scan,
       CASE WHEN """ + _EXCLUSIVE.format(rels="s.relid, s.indexrelid") + """
            THEN (SELECT relpages::bigint * current_setting('block_size')::int FROM pg_class
                  WHERE oid = s.indexrelid)
            ELSE pg_relation_size(s.indexrelid) END AS size_bytes
FROM pg_stat_user_indexes s
""",
}

# Summed over userid and toplevel: one series per statement of this database.
STATEMENTS = {
    MIN_SUPPORTED: """
SELECT queryid::text AS queryid, sum(calls)::float8 AS calls,
       sum(total_exec_time)::float8 / 1000 AS exec_seconds, sum(rows)::float8 AS rows,
       sum(shared_blks_hit)::float8 AS blks_hit, sum(shared_blks_read)::float8 AS blks_read,
       min(left(query, %(text_length)s)) AS query
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND queryid IS NOT NULL
GROUP BY queryid
""",
}

STATEMENTS_RESET: dict[int, str | None] = {
    MIN_SUPPORTED: None,
    140000: "SELECT extract(epoch FROM stats_reset)::float8 AS stats_reset FROM pg_stat_statements_info",
}


def pick(bands: Mapping[int, str | None], version_num: int) -> str | None:
    """The SQL of the newest band at or below ``version_num``."""
    if version_num < MIN_SUPPORTED:
        raise ValueError(f"PostgreSQL {version_num} is older than the supported 13")
    return bands[max(v for v in bands if v <= version_num)]
