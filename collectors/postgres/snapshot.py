"""What one PostgreSQL poll read, and how it becomes samples."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.samples import OTHER, Sample, SampleList


@dataclass(frozen=True)
class DatabaseRow:
    datname: str
    xact_commit: float
    xact_rollback: float
    blks_hit: float
    blks_read: float
    deadlocks: float
    temp_bytes: float
    size_bytes: float | None
    stats_reset: float | None
    cache_hit_ratio: float | None = None  # over the last interval, from deltas


@dataclass(frozen=True)
class TableRow:
    schema: str
    table: str
    seq_scans: float
    index_scans: float
    live_rows: float
    dead_rows: float
    size_bytes: float | None  # None until the first size read (postgres.size_interval)
    last_vacuum: float | None = None
    last_autovacuum: float | None = None
    last_analyze: float | None = None
    last_autoanalyze: float | None = None


@dataclass(frozen=True)
class IndexRow:
    schema: str
    table: str
    index: str
    scans: float
    size_bytes: float | None


@dataclass(frozen=True)
class StatementRow:
    queryid: str
    calls: float
    exec_seconds: float
    rows: float
    blks_hit: float
    blks_read: float
    query: str = ""


@dataclass
class PostgresSnapshot:
    target: str
    datname: str
    server_version: str
    max_connections: int
    features: dict[str, bool]
    connections: list[tuple[str, str, str, int]]  # datname, state, application_name, count
    oldest_transaction_seconds: float
    idle_in_transaction_oldest_seconds: float
    lock_waiting_sessions: int
    databases: list[DatabaseRow]
    tables: list[TableRow]  # top-K plus the __other__ aggregate
    table_count: int
    indexes: list[IndexRow]
    index_count: int
    statements: list[StatementRow]  # top-K plus the __other__ aggregate
    statement_count: int | None
    statements_reset: float | None
    query_errors: dict[str, int]  # cumulative per statistics query
    statement_text_info: bool = False
    app_pools: list[tuple[str, int, int]] = field(default_factory=list)  # app, connections, capacity

    def samples(self) -> list[Sample]:
        out = SampleList(target=self.target)
        out.add("dbpulse_pg_up", 1)
        out.add("dbpulse_pg_info", 1, server_version=self.server_version)
        for feature, enabled in sorted(self.features.items()):
            out.add("dbpulse_pg_feature_enabled", 1 if enabled else 0, feature=feature)
        for query, count in sorted(self.query_errors.items()):
            out.add("dbpulse_pg_query_errors_total", count, query=query)
        out.add("dbpulse_pg_max_connections", self.max_connections)
        for datname, state, app, count in self.connections:
            out.add("dbpulse_pg_connections", count, datname=datname, state=state, application_name=app)
        out.add("dbpulse_pg_oldest_transaction_seconds", self.oldest_transaction_seconds)
        out.add("dbpulse_pg_idle_in_transaction_oldest_seconds", self.idle_in_transaction_oldest_seconds)
        out.add("dbpulse_pg_lock_waiting_sessions", self.lock_waiting_sessions)
        self._database_samples(out)
        self._table_samples(out)
        self._statement_samples(out)
        for app, connections, capacity in self.app_pools:
            out.add("dbpulse_pg_app_connections", connections, application_name=app)
            out.add("dbpulse_pg_app_pool_capacity", capacity, application_name=app)
            out.add("dbpulse_pg_app_pool_usage_ratio", connections / capacity, application_name=app)
        return out.samples

    def _database_samples(self, out: SampleList) -> None:
        for d in self.databases:
            labels = {"datname": d.datname}
            out.add("dbpulse_pg_database_xact_commit_total", d.xact_commit, **labels)
            out.add("dbpulse_pg_database_xact_rollback_total", d.xact_rollback, **labels)
            out.add("dbpulse_pg_database_blocks_hit_total", d.blks_hit, **labels)
            out.add("dbpulse_pg_database_blocks_read_total", d.blks_read, **labels)
            out.add("dbpulse_pg_database_cache_hit_ratio", d.cache_hit_ratio, **labels)
            out.add("dbpulse_pg_database_deadlocks_total", d.deadlocks, **labels)
            out.add("dbpulse_pg_database_temp_bytes_total", d.temp_bytes, **labels)
            out.add("dbpulse_pg_database_size_bytes", d.size_bytes, **labels)
            out.add("dbpulse_pg_database_stats_reset_timestamp_seconds", d.stats_reset, **labels)

    def _table_samples(self, out: SampleList) -> None:
        db = {"datname": self.datname}
        out.add("dbpulse_pg_tables", self.table_count, **db)
        out.add("dbpulse_pg_indexes", self.index_count, **db)
        for t in self.tables:
            labels = {**db, "schema": t.schema, "table": t.table}
            out.add("dbpulse_pg_table_seq_scans_total", t.seq_scans, **labels)
            out.add("dbpulse_pg_table_index_scans_total", t.index_scans, **labels)
            out.add("dbpulse_pg_table_live_rows", t.live_rows, **labels)
            out.add("dbpulse_pg_table_dead_rows", t.dead_rows, **labels)
            out.add("dbpulse_pg_table_size_bytes", t.size_bytes, **labels)
            vacuum, analyze = "dbpulse_pg_table_last_vacuum_timestamp_seconds", \
                "dbpulse_pg_table_last_analyze_timestamp_seconds"
            out.add(vacuum, t.last_vacuum, **labels, mode="manual")
            out.add(vacuum, t.last_autovacuum, **labels, mode="auto")
            out.add(analyze, t.last_analyze, **labels, mode="manual")
            out.add(analyze, t.last_autoanalyze, **labels, mode="auto")
        for i in self.indexes:
            labels = {**db, "schema": i.schema, "table": i.table, "index": i.index}
            out.add("dbpulse_pg_index_scans_total", i.scans, **labels)
            out.add("dbpulse_pg_index_size_bytes", i.size_bytes, **labels)

    def _statement_samples(self, out: SampleList) -> None:
        db = {"datname": self.datname}
        out.add("dbpulse_pg_statements", self.statement_count, **db)
        out.add("dbpulse_pg_statements_reset_timestamp_seconds", self.statements_reset)
        for s in self.statements:
            labels = {**db, "queryid": s.queryid}
            out.add("dbpulse_pg_statement_calls_total", s.calls, **labels)
            out.add("dbpulse_pg_statement_exec_seconds_total", s.exec_seconds, **labels)
            out.add("dbpulse_pg_statement_rows_total", s.rows, **labels)
            out.add("dbpulse_pg_statement_shared_blocks_hit_total", s.blks_hit, **labels)
            out.add("dbpulse_pg_statement_shared_blocks_read_total", s.blks_read, **labels)
            if self.statement_text_info and s.queryid != OTHER:
                out.add("dbpulse_pg_statement_info", 1, **labels, query=" ".join(s.query.split()))
