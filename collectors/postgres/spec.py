"""PostgreSQL as a registered source: its section, pollers, flags, charts and views (``collectors/base/spec.py``)."""

from __future__ import annotations

from collectors.base.spec import ChartSpec, Flag, SourceSpec
from collectors.postgres.poller import pollers
from collectors.postgres.settings import PostgresSettings, target_from_flag
from collectors.postgres.snapshot import PostgresSnapshot
from collectors.postgres.view import postgres_view

NAME = "postgres"
FLAG_HELP = ("PostgreSQL to watch (repeatable); NAME= before a URI sets the target label. Prefer PGPASSWORD, "
             "~/.pgpass or password_env/password_file in the config file to a password in the DSN")

CHARTS = (
    ChartSpec("cache-hit", "Cache hit ratio", "ratio", "dbpulse_pg_database_cache_hit_ratio", label="datname",
              scoped=True, threshold="PostgresCacheHitRatioLow"),
    ChartSpec("tps", "Transactions per second", "/s",
              ("dbpulse_pg_database_xact_commit_total", "dbpulse_pg_database_xact_rollback_total"),
              line="commits + rollbacks", scoped=True, rate=True, combine=True),
    ChartSpec("connections", "Connections by state", "count", "dbpulse_pg_connections", label="state", combine=True,
              threshold="PostgresConnectionsNearMax", relative=True, ceiling="dbpulse_pg_max_connections",
              ceiling_label="max_connections"),
    ChartSpec("app-pools", "Server-side pool use per application", "ratio", "dbpulse_pg_app_pool_usage_ratio",
              label="application_name", optional=True, threshold="PostgresAppPoolNearCapacity", ceiling=1.0,
              ceiling_label="capacity"),
    ChartSpec("lock-waits", "Sessions waiting on a lock", "count", "dbpulse_pg_lock_waiting_sessions",
              line="waiting", threshold="PostgresLockWaits"),
    ChartSpec("replication-lag", "Replication lag (replay, per standby)", "bytes", "dbpulse_pg_replication_lag_bytes",
              label="standby", match={"stage": "replay"}, optional=True, threshold="PostgresReplicationLag"),
    ChartSpec("replay-lag", "Standby replay lag", "seconds", "dbpulse_pg_replay_lag_seconds", line="replay lag",
              optional=True, threshold="PostgresStandbyReplayLag"),
)

SPEC = SourceSpec(
    name=NAME, title="PostgreSQL", order=0, settings=PostgresSettings, pollers=pollers, snapshot=PostgresSnapshot,
    flags=(Flag("--postgres", "[NAME=]DSN", FLAG_HELP, convert=target_from_flag),), env="DBPULSE_POSTGRES",
    charts=CHARTS, view=postgres_view, attention=lambda snap: snap.attention, links=PostgresSnapshot.links,
    rule_groups=("dbpulse.postgres", "dbpulse.postgres.health"), dashboards=("postgres", "postgres_health"),
)
