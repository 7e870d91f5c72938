"""Statistics SQL kept as data: each query one ``Query`` value (``query.py``), one text per server-version band.

Each band maps a minimum ``server_version_num`` to the SQL used from that
version on; ``Query.sql`` chooses the newest band the server satisfies. Columns
were renamed between releases (PG 13 ``total_time`` -> ``total_exec_time``,
PG 17 ``blk_read_time`` -> ``shared_blk_read_time``, PG 14 added
``pg_stat_statements_info``), so a query is never patched at run time. A new
query is one value here: ``ALL`` (below) finds it, so its error counter exists
from the first poll.
"""

from __future__ import annotations

from collectors.postgres.access import OWN_STATEMENT_PATTERN, OWN_TAG_CHARS
from collectors.postgres.cloud import not_admin_database
from collectors.postgres.query import MIN_SUPPORTED, Query

SERVER = Query("server", {
    MIN_SUPPORTED: """
SELECT current_setting('server_version_num')::int AS version_num,
       current_setting('server_version') AS version,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int
           + coalesce(current_setting('reserved_connections', true), '0')::int AS reserved_connections,
       current_database() AS datname,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS read_all_stats,
       EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') AS pgss_installed,
       (SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements') AS pgss_version,
       current_setting('pg_stat_statements.track_planning', true) AS track_planning,
       EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg') AS hypopg_available
""",
})

ACTIVITY = Query("activity", {
    MIN_SUPPORTED: """
SELECT coalesce(datname, '') AS datname,
       coalesce(state, 'unknown') AS state,
       coalesce(application_name, '') AS application_name,
       count(*) AS n,
       max(extract(epoch FROM now() - query_start))
           FILTER (WHERE state = 'active' AND pid <> pg_backend_pid())::float8 AS longest_active_seconds
FROM pg_stat_activity
WHERE backend_type = 'client backend'
GROUP BY 1, 2, 3
""",
})

ACTIVITY_AGES = Query("activity_ages", {
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
})

# The databases of the cluster, but for those that allow no connection (template0) and the cloud providers'
# administration databases (cloud.ADMIN_DATABASES): the same in every query that lists databases.
DATABASES = Query("databases", {
    MIN_SUPPORTED: f"""
SELECT d.datname, d.xact_commit, d.xact_rollback, d.blks_hit, d.blks_read, d.deadlocks, d.temp_bytes,
       extract(epoch FROM d.stats_reset)::float8 AS stats_reset
FROM pg_stat_database d
JOIN pg_database db ON db.oid = d.datid
WHERE d.datname IS NOT NULL AND db.datallowconn AND {not_admin_database("d.datname")}
""",
})

# Column names are the field names of snapshot.TableRow / IndexRow. Every table and index is read on
# the size cadence (postgres.size_interval: TABLES, INDEXES), which picks the top-K; between those
# reads only the top-K are read, by relid (TABLES_TOP, INDEXES_TOP, parameter ids: their oids): an
# index scan of pg_class instead of a stats lookup per column of every relation (relations.py).
_TABLES = """
SELECT relid, schemaname AS schema, relname AS "table", seq_scan AS seq_scans,
       coalesce(idx_scan, 0) AS index_scans, n_live_tup AS live_rows, n_dead_tup AS dead_rows,
       n_tup_ins AS rows_inserted, n_tup_upd AS rows_updated, n_tup_del AS rows_deleted,
       n_tup_hot_upd AS rows_hot_updated,
       extract(epoch FROM last_vacuum)::float8 AS last_vacuum,
       extract(epoch FROM last_autovacuum)::float8 AS last_autovacuum,
       extract(epoch FROM last_analyze)::float8 AS last_analyze,
       extract(epoch FROM last_autoanalyze)::float8 AS last_autoanalyze,
       vacuum_count AS vacuums, autovacuum_count AS autovacuums,
       analyze_count AS analyzes, autoanalyze_count AS autoanalyzes,
       n_ins_since_vacuum AS inserted_since_vacuum, n_mod_since_analyze AS modified_since_analyze
FROM pg_stat_user_tables
"""
TABLES = Query("tables", {MIN_SUPPORTED: _TABLES})
TABLES_TOP = Query("tables_top", {MIN_SUPPORTED: _TABLES + "WHERE relid = ANY(%(ids)s::oid[])\n"})

_INDEXES = """
SELECT indexrelid, schemaname AS schema, relname AS "table", indexrelname AS "index", idx_scan AS scans
FROM pg_stat_user_indexes
"""
INDEXES = Query("indexes", {MIN_SUPPORTED: _INDEXES})
INDEXES_TOP = Query("indexes_top", {MIN_SUPPORTED: _INDEXES + "WHERE indexrelid = ANY(%(ids)s::oid[])\n"})

# Sizes cost a stat() per file and change slowly: they are read every
# postgres.size_interval seconds, not every poll. Sizing a relation takes an
# ACCESS SHARE lock; to never queue behind the application's ACCESS EXCLUSIVE
# locks (ALTER TABLE, REINDEX, ...), a locked relation is sized from
# pg_class.relpages (as of its last VACUUM/ANALYZE). A lock taken between the
# check and the call is cut by lock_timeout.
SIZES = Query("sizes", {
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
})

DATABASE_SIZES = Query("database_sizes", {
    MIN_SUPPORTED: f"""
SELECT datname, pg_database_size(oid) AS size_bytes
FROM pg_database
WHERE datallowconn AND {not_admin_database()}
  AND (has_database_privilege(oid, 'CONNECT') OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'))
""",
})

# The advisor's pg_stat_statements read (collectors/postgres/statements.py; the collector's is
# STATEMENT_COUNTERS below). Summed over userid: one row per statement of
# this database. From PG 14 on, only top-level statements: with
# pg_stat_statements.track = all the nested ones (inside functions, or planned
# inside another session's EXPLAIN, such as the advisor's what-if plans) would
# add calls the application never made, under the same queryid.
# ``own`` is the dbpulse component whose tag the text carries (access.OWN_STATEMENT_PATTERN), NULL for the
# application's statements, which come first: a limit never drops one of them for one of dbpulse's. (strpos
# first: the regular expression on every text doubled the server time of this read at 5,000 statements.)
# Parameters: text_length (characters of text), limit (rows; NULL for all).
_OWN = (f"CASE WHEN strpos(query, 'dbpulse_') > 0 "
        f"THEN substring(left(query, {OWN_TAG_CHARS}) FROM '{OWN_STATEMENT_PATTERN}') END")
_STATEMENTS = f"""
SELECT queryid, {_OWN} AS own,
       sum(calls)::bigint AS calls, sum(total_exec_time)::float8 / 1000 AS exec_seconds,
       sum(rows)::bigint AS rows, sum(shared_blks_hit)::bigint AS blks_hit,
       sum(shared_blks_read)::bigint AS blks_read,
       sum(total_plan_time)::float8 / 1000 AS plan_seconds, sum(temp_blks_read)::bigint AS temp_blks_read,
       sum(temp_blks_written)::bigint AS temp_blks_written, sum(wal_bytes)::float8 AS wal_bytes,
       min(left(query, %(text_length)s)) AS query
FROM pg_stat_statements
WHERE dbid = {{dbid}}
  AND queryid IS NOT NULL {{toplevel}}
GROUP BY queryid, own
"""
_THIS_DATABASE = "(SELECT oid FROM pg_database WHERE datname = current_database())"
_RANKED = "ORDER BY own NULLS FIRST, sum(total_exec_time) DESC, queryid\nLIMIT %(limit)s\n"
STATEMENTS = Query("statements", {
    MIN_SUPPORTED: _STATEMENTS.format(dbid=_THIS_DATABASE, toplevel="") + _RANKED,
    140000: _STATEMENTS.format(dbid=_THIS_DATABASE, toplevel="AND toplevel") + _RANKED,
})
# One other database's statements (parameter dbid), read on the main connection in that database's turn
# (collectors/postgres/databases.py): pg_stat_statements is cluster-wide. Ranked in dbpulse.
DATABASE_STATEMENTS = Query("database_statements", {
    MIN_SUPPORTED: _STATEMENTS.format(dbid="%(dbid)s", toplevel=""),
    140000: _STATEMENTS.format(dbid="%(dbid)s", toplevel="AND toplevel"),
})

# The collector's reads of pg_stat_statements (statements.CollectorStatements): every poll the counters
# of every entry, without texts (pg_stat_statements(false) does not read the file of texts, and
# nothing is grouped or sorted: the entries are summed per queryid in dbpulse); texts, and whose
# statement each entry is (``own``), only of the entries not seen before and of the top-K statements
# whose text is not known (parameters: every: all entries, else ids: queryids, bigint[]). Texts are cut to
# statement_text_length in dbpulse: left() on every text cost the server more than reading them.
_STATEMENT_COUNTERS = """
SELECT userid, queryid, calls, total_exec_time, rows, shared_blks_hit AS blks_hit, shared_blks_read AS blks_read,
       total_plan_time, temp_blks_read, temp_blks_written, wal_bytes
FROM pg_stat_statements(false)
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND queryid IS NOT NULL {toplevel}
"""
STATEMENT_COUNTERS = Query("statement_counters", {
    MIN_SUPPORTED: _STATEMENT_COUNTERS.format(toplevel=""),
    140000: _STATEMENT_COUNTERS.format(toplevel="AND toplevel"),
})
_STATEMENT_LABELS = f"""
SELECT userid, queryid, {_OWN} AS own, query
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND queryid IS NOT NULL {{toplevel}} AND (%(every)s OR queryid = ANY(%(ids)s::bigint[]))
"""
STATEMENT_LABELS = Query("statement_labels", {
    MIN_SUPPORTED: _STATEMENT_LABELS.format(toplevel=""),
    140000: _STATEMENT_LABELS.format(toplevel="AND toplevel"),
})

# Whole texts of the application's statements by queryid (parameter ids: bigint[]): the exported ones whose
# short text was cut, read once each to fingerprint them (statements.fingerprint).
STATEMENT_TEXTS = Query("statement_texts", {
    MIN_SUPPORTED: f"""
SELECT queryid, min(query) AS query
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND queryid = ANY(%(ids)s) AND {_OWN} IS NULL
GROUP BY queryid
""",
})

# pg_stat_statements' columns follow the *extension's* version, not the
# server's: after pg_upgrade the old version stays until ALTER EXTENSION
# pg_stat_statements UPDATE (1.8 on a 14+ server has no toplevel). The band
# of STATEMENTS is the older of the server's and this one.
PGSS_BANDS = {"1.8": 130000, "1.9": 140000}


def pgss_band(version_num: int, extversion: str | None) -> int:
    """The version to pick STATEMENTS' band with: the server's, unless the extension is older."""
    return min(version_num, PGSS_BANDS.get(extversion or "", version_num))


STATEMENTS_RESET = Query("statements_reset", {
    MIN_SUPPORTED: None,
    140000: "SELECT extract(epoch FROM stats_reset)::float8 AS stats_reset FROM pg_stat_statements_info",
})


# --- server health (collectors/postgres/health.py) ------------------------------------------------
# Column names are the field names of the row types in replication.py, vacuum.py, locks.py, wal.py,
# sequences.py and bloat.py. Functions that raise on one side of replication are guarded by
# pg_is_in_recovery() (a CASE is not evaluated early): pg_current_wal_lsn() raises on a standby,
# pg_is_wal_replay_paused() and pg_get_wal_replay_pause_state() on a primary.
_CURRENT_LSN = "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END"

# One row, every poll: role, replay state, the settings the health metrics are measured against.
# replay_lag_seconds is 0 when everything received is replayed (on an idle primary,
# now() - pg_last_xact_replay_timestamp() grows forever on a standby that is caught up), NULL while
# nothing was replayed since the standby started (no transaction to date the lag by).
_SERVER_STATE = """
SELECT pg_is_in_recovery() AS in_recovery,
       {paused} AS replay_paused,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8 AS replay_backlog_bytes,
       CASE WHEN NOT pg_is_in_recovery() THEN NULL
            WHEN pg_last_wal_receive_lsn() IS NOT NULL
                 AND pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())
       END::float8 AS replay_lag_seconds,
       current_setting('autovacuum_freeze_max_age')::float8 AS freeze_max_age,
       current_setting('autovacuum_multixact_freeze_max_age')::float8 AS multixact_freeze_max_age,
       current_setting('autovacuum_max_workers')::int AS autovacuum_max_workers,
       extract(epoch FROM current_setting('autovacuum_naptime')::interval)::float8 AS autovacuum_naptime,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker') AS autovacuum_workers,
       current_setting('archive_mode') AS archive_mode,
       has_function_privilege('pg_ls_archive_statusdir()', 'EXECUTE') AS archive_status_readable
"""
SERVER_STATE = Query("server_state", {
    # 13: only the boolean, true as soon as a pause is requested.
    MIN_SUPPORTED: _SERVER_STATE.format(paused="CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END"),
    140000: _SERVER_STATE.format(
        paused="CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() <> 'not paused' END"),
}, feature="replication")

# One row per WAL sender (a standby, pg_basebackup, pg_receivewal), from this server's position.
# The *_lag_seconds are NULL about 10 s after the standby caught up while nothing is written:
# nothing to measure, not "no standby" (the *_lag_bytes stay meaningful). Without
# pg_read_all_stats only application_name is shown (state and positions NULL).
REPLICATION_SENDERS = Query("replication_senders", {
    MIN_SUPPORTED: f"""
SELECT coalesce(r.application_name, '') AS application_name, coalesce(r.state, 'unknown') AS state,
       coalesce(r.sync_state, 'unknown') AS sync_state,
       pg_wal_lsn_diff({_CURRENT_LSN}, r.sent_lsn)::float8 AS sent_lag_bytes,
       pg_wal_lsn_diff({_CURRENT_LSN}, r.write_lsn)::float8 AS write_lag_bytes,
       pg_wal_lsn_diff({_CURRENT_LSN}, r.flush_lsn)::float8 AS flush_lag_bytes,
       pg_wal_lsn_diff({_CURRENT_LSN}, r.replay_lsn)::float8 AS replay_lag_bytes,
       extract(epoch FROM r.write_lag)::float8 AS write_lag_seconds,
       extract(epoch FROM r.flush_lag)::float8 AS flush_lag_seconds,
       extract(epoch FROM r.replay_lag)::float8 AS replay_lag_seconds,
       extract(epoch FROM now() - r.reply_time)::float8 AS reply_age_seconds
FROM pg_stat_replication r
""",
}, feature="replication")

# The standby's WAL receiver: no row when none runs (a primary, or a standby whose primary is gone
# and whose receiver has not restarted yet). Read only in recovery.
WAL_RECEIVER = Query("wal_receiver", {
    MIN_SUPPORTED: """
SELECT w.status, extract(epoch FROM now() - w.last_msg_receipt_time)::float8 AS last_msg_age_seconds
FROM pg_stat_wal_receiver w
""",
}, feature="replication")

# retained_bytes: WAL the slot holds back (from restart_lsn to this server's position); NULL for a
# physical slot never used and for a lost one. confirmed_lag_bytes: how far a logical slot's
# consumer is behind (NULL for physical slots). safe_wal_size is NULL unless
# max_slot_wal_keep_size >= 0. wal_status: reserved | extended | unreserved | lost.
_SLOT_LSN = f"coalesce(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() END, {_CURRENT_LSN})"
REPLICATION_SLOTS = Query("replication_slots", {
    MIN_SUPPORTED: f"""
SELECT s.slot_name, s.slot_type, s.temporary, s.active, s.wal_status,
       s.safe_wal_size::float8 AS safe_wal_size_bytes,
       pg_wal_lsn_diff({_SLOT_LSN}, s.restart_lsn)::float8 AS retained_bytes,
       pg_wal_lsn_diff({_SLOT_LSN}, s.confirmed_flush_lsn)::float8 AS confirmed_lag_bytes,
       greatest(age(s.xmin), age(s.catalog_xmin))::float8 AS xmin_age
FROM pg_replication_slots s
""",
}, feature="replication_slots")

# Queries a standby cancelled because replay needed what they used (read only in recovery).
_CONFLICTS = f"""
SELECT c.datname, c.confl_tablespace, c.confl_lock, c.confl_snapshot, c.confl_bufferpin, c.confl_deadlock,
       {{logicalslot}} AS confl_active_logicalslot
FROM pg_stat_database_conflicts c
JOIN pg_database d ON d.oid = c.datid
WHERE d.datallowconn AND {not_admin_database("c.datname")}
"""
DATABASE_CONFLICTS = Query("database_conflicts", {
    MIN_SUPPORTED: _CONFLICTS.format(logicalslot="NULL::bigint"),
    160000: _CONFLICTS.format(logicalslot="c.confl_active_logicalslot"),
}, feature="replication")

# Transaction-ID and multixact ages of every database (template0 too: autovacuum freezes it as well; and the
# cloud providers' administration databases: wraparound is the whole cluster's, and an old one there is for
# the provider to fix, which only a support case gets done).
# New XIDs stop about 3 million short of 2^31; anti-wraparound autovacuum is forced past
# autovacuum_freeze_max_age (multixacts: autovacuum_multixact_freeze_max_age).
FROZEN_AGES = Query("frozen_ages", {
    MIN_SUPPORTED: """
SELECT datname, age(datfrozenxid)::float8 AS xid_age, mxid_age(datminmxid)::float8 AS mxid_age
FROM pg_database
""",
}, feature="wraparound")

# Running VACUUMs of every database but the cloud providers' administration databases; the relation is
# named in the current one, an oid elsewhere.
VACUUM_PROGRESS = Query("vacuum_progress", {
    MIN_SUPPORTED: f"""
SELECT p.datname,
       CASE WHEN p.datname = current_database() THEN p.relid::regclass::text ELSE p.relid::text END AS relation,
       coalesce(p.phase, 'unknown') AS phase, p.heap_blks_total, p.heap_blks_scanned,
       coalesce(a.backend_type = 'autovacuum worker', false) AS autovacuum,
       extract(epoch FROM now() - a.xact_start)::float8 AS running_seconds
FROM pg_stat_progress_vacuum p
LEFT JOIN pg_stat_activity a ON a.pid = p.pid
WHERE {not_admin_database("p.datname")}
""",
}, feature="autovacuum")

# Read only while ACTIVITY_AGES counts a session waiting on a lock. Waiting lock requests by
# lock type and mode; the wait began at pg_locks.waitstart (14+; NULL for a moment after the wait
# starts), else (13) when the waiting statement started, an upper bound.
_LOCK_WAITS = """
SELECT l.locktype, l.mode, count(*) AS waiting,
       extract(epoch FROM now() - min({wait_start}))::float8 AS longest_wait_seconds
FROM pg_locks l
LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE NOT l.granted
GROUP BY l.locktype, l.mode
"""
LOCK_WAITS = Query("lock_waits", {
    MIN_SUPPORTED: _LOCK_WAITS.format(wait_start="a.state_change"),
    140000: _LOCK_WAITS.format(wait_start="coalesce(l.waitstart, a.state_change)"),
}, feature="locks")

# The roots of the blocking chains and how many sessions each holds up, directly and through the
# sessions queued behind them (pg_blocking_pids() names only the first: a transitive walk finds the
# root). pg_blocking_pids() returns 0 for a prepared transaction (no backend).
_LOCK_BLOCKERS = """
WITH RECURSIVE waiting AS (
    SELECT a.pid, pg_blocking_pids(a.pid) AS blockers, {wait_start} AS wait_start
    FROM pg_stat_activity a
    WHERE a.wait_event_type = 'Lock'
), edges AS (
    SELECT w.pid AS waiter, b.pid AS blocker
    FROM waiting w, unnest(w.blockers) AS b(pid)
), roots AS (
    SELECT DISTINCT e.blocker AS pid FROM edges e
    WHERE NOT EXISTS (SELECT 1 FROM waiting w WHERE w.pid = e.blocker)
), tree(root, pid, path) AS (
    SELECT r.pid, e.waiter, ARRAY[r.pid, e.waiter]
    FROM roots r JOIN edges e ON e.blocker = r.pid
    UNION ALL
    SELECT t.root, e.waiter, t.path || e.waiter
    FROM tree t JOIN edges e ON e.blocker = t.pid
    WHERE e.waiter <> ALL (t.path)
)
SELECT r.pid, coalesce(a.application_name, '') AS application_name,
       CASE WHEN r.pid = 0 THEN 'prepared transaction' ELSE coalesce(a.state, 'unknown') END AS state,
       extract(epoch FROM now() - a.xact_start)::float8 AS xact_age_seconds,
       (SELECT count(DISTINCT e.waiter) FROM edges e WHERE e.blocker = r.pid) AS blocked_directly,
       count(DISTINCT t.pid) AS blocked_total,
       extract(epoch FROM now() - min(w.wait_start))::float8 AS longest_wait_seconds,
       coalesce(left(a.query, 300), '') AS query
FROM roots r
LEFT JOIN pg_stat_activity a ON a.pid = r.pid
LEFT JOIN tree t ON t.root = r.pid
LEFT JOIN waiting w ON w.pid = t.pid
GROUP BY r.pid, a.application_name, a.state, a.xact_start, a.query
ORDER BY blocked_total DESC
"""
LOCK_BLOCKERS = Query("lock_blockers", {
    MIN_SUPPORTED: _LOCK_BLOCKERS.format(wait_start="a.state_change"),
    140000: _LOCK_BLOCKERS.format(
        wait_start="coalesce((SELECT min(l.waitstart) FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted),"
                   " a.state_change)"),
}, feature="locks")

# One row: WAL, checkpoints, the background writer and the archiver.
# wal_bytes is this server's WAL position in bytes (replayed position on a standby): its rate is
# the WAL written. pg_stat_wal exists from 14. 17 moved the checkpoint columns from
# pg_stat_bgwriter to pg_stat_checkpointer and dropped buffers_backend: from 17 the buffers
# backends wrote come from pg_stat_io (shared-buffer writes of every process but the checkpointer
# and the background writer; 18 counts I/O operations there, so bytes / block size). On a standby
# 13-16 count restartpoints as checkpoints; 17+ apart, added back here so that checkpoints_* mean
# the same on every version.
_WAL = f"""
SELECT pg_wal_lsn_diff({_CURRENT_LSN}, '0/0')::float8 AS wal_bytes,
       {{wal}},
       {{checkpoints}},
       a.archived_count, a.failed_count,
       extract(epoch FROM a.last_archived_time)::float8 AS last_archived_time,
       extract(epoch FROM a.last_failed_time)::float8 AS last_failed_time
FROM pg_stat_archiver a{{views}}
"""
_WAL_13 = "NULL::float8 AS wal_records, NULL::float8 AS wal_fpi, NULL::float8 AS wal_buffers_full"
_WAL_14 = "w.wal_records::float8, w.wal_fpi::float8, w.wal_buffers_full::float8"
_CHECKPOINTS_13 = """b.checkpoints_timed AS checkpoints_timed, b.checkpoints_req AS checkpoints_requested,
       b.checkpoint_write_time / 1000 AS checkpoint_write_seconds,
       b.checkpoint_sync_time / 1000 AS checkpoint_sync_seconds,
       b.buffers_checkpoint, b.buffers_clean, b.buffers_backend, b.maxwritten_clean"""
_CHECKPOINTS_17 = """c.num_timed + c.restartpoints_timed AS checkpoints_timed,
       c.num_requested + c.restartpoints_req AS checkpoints_requested,
       c.write_time / 1000 AS checkpoint_write_seconds, c.sync_time / 1000 AS checkpoint_sync_seconds,
       c.buffers_written AS buffers_checkpoint, b.buffers_clean,
       (SELECT sum({writes}) FROM pg_stat_io
        WHERE object = 'relation' AND backend_type NOT IN ('checkpointer', 'background writer'))::float8
           AS buffers_backend,
       b.maxwritten_clean"""
WAL = Query("wal", {
    MIN_SUPPORTED: _WAL.format(wal=_WAL_13, checkpoints=_CHECKPOINTS_13, views=", pg_stat_bgwriter b"),
    140000: _WAL.format(wal=_WAL_14, checkpoints=_CHECKPOINTS_13, views=", pg_stat_bgwriter b, pg_stat_wal w"),
    170000: _WAL.format(wal=_WAL_14, checkpoints=_CHECKPOINTS_17.format(writes="writes"),
                        views=", pg_stat_bgwriter b, pg_stat_wal w, pg_stat_checkpointer c"),
    180000: _WAL.format(wal=_WAL_14,
                        checkpoints=_CHECKPOINTS_17.format(writes="write_bytes / current_setting('block_size')::int"),
                        views=", pg_stat_bgwriter b, pg_stat_wal w, pg_stat_checkpointer c"),
}, feature="wal")

# WAL segments waiting for the archiver. pg_ls_archive_statusdir() needs pg_monitor (or a grant):
# it is read only when SERVER_STATE.archive_status_readable, and archive_mode is not off.
ARCHIVE_PENDING = Query("archive_pending", {
    MIN_SUPPORTED: """
SELECT count(*) FILTER (WHERE right(name, 6) = '.ready') AS pending_segments FROM pg_ls_archive_statusdir()
""",
}, feature="archive_pending")

# pg_stat_io (16+) by backend type, object and context, in bytes: 16-17 count blocks (op_bytes
# each), 18 counts I/O operations that may combine several blocks and gives bytes itself (and adds
# object 'wal'). Times need track_io_timing. Rows where nothing can happen are all NULL: skipped.
_IO = """
SELECT backend_type, object, context,
       {read_bytes} AS read_bytes, {write_bytes} AS write_bytes, {extend_bytes} AS extend_bytes,
       hits::float8, evictions::float8,
       read_time / 1000 AS read_seconds, write_time / 1000 AS write_seconds
FROM pg_stat_io
WHERE coalesce(reads, writes, extends, hits) IS NOT NULL
"""
IO = Query("io", {
    MIN_SUPPORTED: None,
    160000: _IO.format(read_bytes="(reads * op_bytes)::float8", write_bytes="(writes * op_bytes)::float8",
                       extend_bytes="(extends * op_bytes)::float8"),
    180000: _IO.format(read_bytes="read_bytes::float8", write_bytes="write_bytes::float8",
                       extend_bytes="extend_bytes::float8"),
}, feature="io")

# --- maintenance reads: every postgres.maintenance_interval, not every poll ------------------------
# The tables (and materialized views) of the current database with the oldest relfrozenxid, each once:
# its age is the greater of its own and its TOAST relation's (per kind), so a table never has two series.
# The top-K relations are picked first, a TOAST relation is taken to its owner (pg_class.reltoastrelid),
# then the owners are read by oid (joining every table to its TOAST relation cost 2.3x, and joining the
# owners by a hash of pg_class 1.2x, this at 2,000 tables); a table whose heap and TOAST relation are both
# in the top-K is one row, so fewer than K may come back. Parameter: limit.
OLDEST_TABLES = Query("oldest_tables", {
    MIN_SUPPORTED: """
WITH oldest_relations AS (
    SELECT oid, relkind FROM pg_class WHERE relkind IN ('r', 'm', 't')
    ORDER BY age(relfrozenxid) DESC LIMIT %(limit)s
)
SELECT n.nspname AS schema, c.relname AS "table",
       coalesce(age(t.relfrozenxid) > age(c.relfrozenxid), false) AS toast,
       greatest(age(c.relfrozenxid), age(t.relfrozenxid))::float8 AS xid_age,
       greatest(mxid_age(c.relminmxid), mxid_age(t.relminmxid))::float8 AS mxid_age
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
WHERE c.oid = ANY (ARRAY(
    SELECT coalesce(owner.oid, o.oid) FROM oldest_relations o
    LEFT JOIN pg_class owner ON o.relkind = 't' AND owner.reltoastrelid = o.oid))
ORDER BY xid_age DESC, c.oid
""",
}, feature="wraparound")

# Autovacuum's own thresholds of every table (autovacuum.c, relation_needs_vacanalyze), from its
# reloptions else the settings: VACUUM when dead rows > vacuum_threshold or rows inserted since the
# last vacuum > insert_threshold (NULL: disabled with -1), ANALYZE when rows modified since >
# analyze_threshold. They change with reltuples, that is at VACUUM and ANALYZE, so they are read on
# the maintenance cadence (joining pg_class and the reloptions every poll doubled TABLES' cost) and
# compared with each poll's counters. reltuples is -1 until the first VACUUM/ANALYZE (14+), counted
# as 0 as autovacuum does. 18 caps the vacuum threshold at autovacuum_vacuum_max_threshold (-1: no
# cap) and scales the insert threshold by the share of pages not all-frozen.
_AUTOVACUUM_THRESHOLDS = """
SELECT s.relid,
       current_setting('autovacuum')::bool AND coalesce(o.enabled, true) AS autovacuum_enabled,
       {vacuum_threshold} AS vacuum_threshold,
       CASE WHEN o.ins_base >= 0 THEN o.ins_base + o.ins_scale * o.reltuples * {unfrozen_share} END
           AS insert_threshold,
       o.anl_base + o.anl_scale * o.reltuples AS analyze_threshold
FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
CROSS JOIN LATERAL (
    SELECT greatest(c.reltuples, 0)::float8 AS reltuples,
           max(option_value) FILTER (WHERE option_name = 'autovacuum_enabled')::bool AS enabled,
           coalesce(max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_threshold')::float8,
                    current_setting('autovacuum_vacuum_threshold')::float8) AS vac_base,
           coalesce(max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_scale_factor')::float8,
                    current_setting('autovacuum_vacuum_scale_factor')::float8) AS vac_scale,
           {vac_max} AS vac_max,
           coalesce(max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_insert_threshold')::float8,
                    current_setting('autovacuum_vacuum_insert_threshold')::float8) AS ins_base,
           coalesce(max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_insert_scale_factor')::float8,
                    current_setting('autovacuum_vacuum_insert_scale_factor')::float8) AS ins_scale,
           coalesce(max(option_value) FILTER (WHERE option_name = 'autovacuum_analyze_threshold')::float8,
                    current_setting('autovacuum_analyze_threshold')::float8) AS anl_base,
           coalesce(max(option_value) FILTER (WHERE option_name = 'autovacuum_analyze_scale_factor')::float8,
                    current_setting('autovacuum_analyze_scale_factor')::float8) AS anl_scale
    FROM pg_options_to_table(c.reloptions)
) o
"""
AUTOVACUUM_THRESHOLDS = Query("autovacuum_thresholds", {
    MIN_SUPPORTED: _AUTOVACUUM_THRESHOLDS.format(vacuum_threshold="o.vac_base + o.vac_scale * o.reltuples",
                                                 unfrozen_share="1", vac_max="-1::float8"),
    180000: _AUTOVACUUM_THRESHOLDS.format(
        vacuum_threshold="CASE WHEN o.vac_max >= 0 THEN least(o.vac_base + o.vac_scale * o.reltuples, o.vac_max)"
                         " ELSE o.vac_base + o.vac_scale * o.reltuples END",
        unfrozen_share="CASE WHEN c.relpages > 0 AND c.relallfrozen > 0"
                       " THEN 1 - least(c.relallfrozen, c.relpages)::float8 / c.relpages ELSE 1 END",
        vac_max="coalesce(max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_max_threshold')::float8,"
                " current_setting('autovacuum_vacuum_max_threshold')::float8)"),
}, feature="autovacuum")

# How much of its range each sequence has used, counting the range of the columns it feeds: a
# bigint sequence behind an int4 column fails at 2^31 - 1. It feeds the columns that own it
# (serial: pg_depend 'a'; identity: 'i') and those defaulting to its nextval() (pg_attrdef, 'n');
# the narrowest wins. last_value is NULL for a sequence never used and for one the role may not
# read (pg_monitor grants no sequence access; pg_read_all_data, 14+, does): readable tells them
# apart, and used_ratio is NULL when it is false.
SEQUENCES = Query("sequences", {
    MIN_SUPPORTED: """
WITH feeds AS (
    SELECT d.objid AS seqid, a.atttypid
    FROM pg_depend d
    JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
    UNION
    SELECT d.refobjid, a.atttypid
    FROM pg_depend d
    JOIN pg_attrdef ad ON ad.oid = d.objid
    JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
    WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'n'
), cols AS (
    SELECT f.seqid,
           min(CASE f.atttypid WHEN 'int2'::regtype THEN 32767 WHEN 'int4'::regtype THEN 2147483647
                               WHEN 'int8'::regtype THEN 9223372036854775807 END) AS col_max,
           max(CASE f.atttypid WHEN 'int2'::regtype THEN -32768 WHEN 'int4'::regtype THEN -2147483648
                               WHEN 'int8'::regtype THEN -9223372036854775808 END) AS col_min
    FROM feeds f JOIN pg_class sc ON sc.oid = f.seqid AND sc.relkind = 'S'
    GROUP BY f.seqid
), seqs AS (
    SELECT s.schemaname, s.sequencename, s.increment_by, s.last_value,
           has_sequence_privilege(sc.oid, 'SELECT,USAGE') AS readable,
           least(s.max_value, coalesce(c.col_max, s.max_value))::numeric AS usable_max,
           greatest(s.min_value, coalesce(c.col_min, s.min_value))::numeric AS usable_min
    FROM pg_sequences s
    JOIN pg_namespace n ON n.nspname = s.schemaname
    JOIN pg_class sc ON sc.relnamespace = n.oid AND sc.relname = s.sequencename
    LEFT JOIN cols c ON c.seqid = sc.oid
)
SELECT schemaname AS schema, sequencename AS sequence, readable,
       CASE WHEN NOT readable THEN NULL
            WHEN last_value IS NULL THEN 0
            WHEN usable_max <= usable_min THEN 1
            WHEN increment_by > 0 THEN least(greatest((last_value - usable_min) / (usable_max - usable_min), 0), 1)
            ELSE least(greatest((usable_max - last_value) / (usable_max - usable_min), 0), 1)
       END::float8 AS used_ratio
FROM seqs
""",
}, feature="sequences")

# Estimated bloat of the tables and btree indexes of at least 1 MiB (below that, bloat is never
# worth acting on) of the current database, from pg_stats, without pgstattuple: how many more
# pages each has than its live rows need. The statistical method is the well-known one (ioguix,
# pgexperts), written afresh (copies of ioguix's query that read pg_class.relhasoids fail on 12+):
# tuple = header + null bitmap + sum of the columns' average widths, MAXALIGNed (8), packed into
# pages at the fillfactor. pg_stats is looked up per column (a qual on it reaches pg_statistic's
# index); it shows only the columns the role may SELECT, so without SELECT on a table (pg_monitor
# is not enough; pg_read_all_data is, 14+) and before its first ANALYZE the estimate is NULL
# (readable tells the two apart). Limits: no TOAST, no per-column alignment padding; btree
# deduplication packs repeated keys, so an index with few distinct keys can be bloated and
# estimated at 0 (index estimates are lower bounds).
BLOAT = Query("bloat", {
    MIN_SUPPORTED: """
WITH rel AS (
    SELECT c.oid AS relid, i.indrelid AS table_oid, n.nspname AS schema,
           coalesce(t.relname, c.relname) AS "table", CASE WHEN i.indexrelid IS NOT NULL THEN c.relname END AS "index",
           has_table_privilege(coalesce(i.indrelid, c.oid), 'SELECT') AS readable,
           c.relpages::float8 AS relpages, greatest(c.reltuples, 0)::float8 AS reltuples,
           coalesce((SELECT option_value::float8 FROM pg_options_to_table(c.reloptions)
                     WHERE option_name = 'fillfactor'), CASE WHEN i.indexrelid IS NULL THEN 100 ELSE 90 END)
               AS fillfactor,
           i.indnatts, i.indkey
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_index i ON i.indexrelid = c.oid
    LEFT JOIN pg_class t ON t.oid = i.indrelid
    WHERE c.relpages::float8 * current_setting('block_size')::int >= 1048576
      AND (c.relkind IN ('r', 'm') OR (c.relkind = 'i' AND c.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')))
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
), cols AS (
    -- a table's live columns; an index's key columns: a plain one has its table column's
    -- statistics, an expression its own, filed under the index's name
    SELECT r.relid, r.schema, r."table" AS stats_of, a.attname
    FROM rel r JOIN pg_attribute a ON a.attrelid = r.relid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE r."index" IS NULL
    UNION ALL
    SELECT r.relid, r.schema, CASE WHEN k.attnum <> 0 THEN r."table" ELSE r."index" END,
           CASE WHEN k.attnum <> 0 THEN ta.attname ELSE ia.attname END
    FROM rel r
    CROSS JOIN LATERAL unnest(r.indkey::int2[]) WITH ORDINALITY AS k(attnum, pos)
    LEFT JOIN pg_attribute ta ON k.attnum <> 0 AND ta.attrelid = r.table_oid AND ta.attnum = k.attnum
    LEFT JOIN pg_attribute ia ON k.attnum = 0 AND ia.attrelid = r.relid AND ia.attnum = k.pos
    WHERE r."index" IS NOT NULL AND k.pos <= r.indnatts
), width AS (
    SELECT c.relid, count(*) AS natts, count(s.avg_width) AS natts_with_stats,
           sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 0))::float8 AS data_width,
           bool_or(coalesce(s.null_frac, 0) > 0) AS has_nulls
    FROM cols c
    LEFT JOIN LATERAL (SELECT st.avg_width, st.null_frac FROM pg_stats st
                       WHERE st.schemaname = c.schema AND st.tablename = c.stats_of AND st.attname = c.attname
                         AND NOT st.inherited) s ON true
    GROUP BY c.relid
), est AS (
    SELECT r.*, w.natts = w.natts_with_stats AS has_stats, current_setting('block_size')::float8 AS bs,
           CASE WHEN r."index" IS NULL
                -- heap: line pointer + MAXALIGN(23-byte header + null bitmap) + MAXALIGN(data)
                THEN 4 + 8 * ceil((23 + CASE WHEN w.has_nulls THEN ceil(w.natts / 8.0) ELSE 0 END) / 8.0)
                     + 8 * ceil(w.data_width / 8.0)
                -- btree: line pointer + MAXALIGN(8-byte IndexTupleData + null bitmap + data)
                ELSE 4 + 8 * ceil((8 + CASE WHEN w.has_nulls THEN 4 ELSE 0 END + w.data_width) / 8.0) END
               AS tuple_bytes
    FROM rel r JOIN width w ON w.relid = r.relid
), pages AS (
    -- page header 24 (+ 16 of btree special space, + the btree metapage)
    SELECT e.*, CASE WHEN "index" IS NULL THEN 0 ELSE 1 END
                + ceil(reltuples / greatest(floor((bs - CASE WHEN "index" IS NULL THEN 24 ELSE 40 END)
                                                  * fillfactor / 100 / tuple_bytes), 1)) AS expected_pages
    FROM est e
)
SELECT relid::bigint AS relid, schema, "table", coalesce("index", '') AS "index", readable,
       relpages * bs AS size_bytes,
       CASE WHEN has_stats THEN greatest(relpages - expected_pages, 0) * bs END AS bloat_bytes,
       CASE WHEN has_stats THEN greatest(relpages - expected_pages, 0) / relpages END AS bloat_ratio
FROM pages
""",
}, feature="bloat")



# Every query above, in the order declared: their names are the ``query`` labels counted from the start.
ALL: tuple[Query, ...] = tuple(v for v in tuple(globals().values()) if isinstance(v, Query))
