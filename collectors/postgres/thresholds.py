"""PostgreSQL's alert thresholds (``collectors/base/thresholds.py``): triage's Health list and the charts
read them here; ``tests/rules/test_thresholds.py`` holds the rules to them."""

from __future__ import annotations

from collectors.base.thresholds import Threshold

CACHE_HIT = Threshold("cache_hit", 0.95, "ratio", "PostgresCacheHitRatioLow", "< #")
CONNECTIONS = Threshold("connections", 0.8, "ratio", "PostgresConnectionsNearMax")  # share of max_connections
APP_POOL = Threshold("app_pool", 0.9, "ratio", "PostgresAppPoolNearCapacity")  # share of the pool's capacity
LOCK_WAITS = Threshold("lock_waits", 3, "count", "PostgresLockWaits")
REPLICATION_LAG = Threshold("replication_lag", 64 * 1024**2, "bytes", "PostgresReplicationLag")
REPLAY_LAG = Threshold("replay_lag", 300, "seconds", "PostgresStandbyReplayLag")
SLOT_RETAINED = Threshold("slot_retained", 0, "bytes", "PostgresReplicationSlotInactive")  # any WAL, slot inactive
WRAPAROUND_WARNING = Threshold("wraparound_warning", 0.5, "ratio", "PostgresTransactionIdWraparound",
                               also=("PostgresMultixactIdWraparound",))
WRAPAROUND_CRITICAL = Threshold("wraparound_critical", 0.75, "ratio", "PostgresTransactionIdWraparound",
                                severity="critical", also=("PostgresMultixactIdWraparound",))
# A database's age past this many times autovacuum_freeze_max_age.
FREEZE_OVERDUE = Threshold("freeze_overdue", 1.2, "factor", "PostgresAutovacuumFreezeOverdue",
                           "(# * dbpulse_pg_freeze_max_age)")
# A table past its autovacuum threshold with no VACUUM in this many autovacuum_naptimes.
AUTOVACUUM_NAPTIMES = Threshold("autovacuum_naptimes", 5, "count", "PostgresAutovacuumNotKeepingUp",
                                "(# * dbpulse_pg_autovacuum_naptime_seconds)")
BLOCKED_SESSIONS = Threshold("blocked_sessions", 5, "count", "PostgresBlockingChain", ">= #")
LOCK_WAIT = Threshold("lock_wait", 60, "seconds", "PostgresLongLockWait")
SEQUENCE_USED = Threshold("sequence_used", 0.75, "ratio", "PostgresSequenceNearExhaustion")
# Requested checkpoints' share of all: the rule says "more requested than timed" (in the last hour).
CHECKPOINTS_REQUESTED = Threshold("checkpoints_requested", 0.5, "ratio", "PostgresCheckpointsTooFrequent",
                                  '> ignoring (kind) increase(dbpulse_pg_checkpoints_total{kind="timed"}[1h])')
# A wait class (LWLock, IO) above this share of active sessions' time, while at least WAIT_ACTIVE_SESSIONS are active
# on average (an idle system never fires).
WAIT_CLASS_SHARE = Threshold("wait_class_share", 0.5, "ratio", "PostgresWaitClassDominant")
WAIT_ACTIVE_SESSIONS = Threshold("wait_active_sessions", 1, "count", "PostgresWaitClassDominant", ">= #")

ALL = (CACHE_HIT, CONNECTIONS, APP_POOL, LOCK_WAITS, REPLICATION_LAG, REPLAY_LAG, SLOT_RETAINED, WRAPAROUND_WARNING,
       WRAPAROUND_CRITICAL, FREEZE_OVERDUE, AUTOVACUUM_NAPTIMES, BLOCKED_SESSIONS, LOCK_WAIT, SEQUENCE_USED,
       CHECKPOINTS_REQUESTED, WAIT_CLASS_SHARE, WAIT_ACTIVE_SESSIONS)
