"""What one PostgreSQL poll read, and how it becomes samples.

The row types' field names are the column names of their SQL in
``queries.py``: a new column is a new field here plus one ``out.add`` line
(and its entry in ``collectors/postgres/metrics.yaml``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from collectors.base.attention import Attention
from collectors.base.chain import Endpoint
from collectors.base.samples import OTHER, Sample, SampleList
from collectors.base.topk import summed
from collectors.postgres.health import ServerHealth
from collectors.postgres.statements import OwnStatements, StatementStat
from collectors.postgres.waits import WaitProfile

T = TypeVar("T")


class OtherDatabases(Protocol):
    """What the target's other databases add to a poll (``databases.DatabasesPart``)."""

    def names(self) -> list[str]: ...

    def add_samples(self, out: SampleList) -> None: ...


@dataclass(frozen=True)
class DatabaseRow:
    datname: str
    xact_commit: float = 0.0
    xact_rollback: float = 0.0
    blks_hit: float = 0.0
    blks_read: float = 0.0
    deadlocks: float = 0.0
    temp_bytes: float = 0.0
    stats_reset: float | None = None
    size_bytes: float | None = None  # from the size cache (postgres.size_interval)
    cache_hit_ratio: float | None = None  # over the last interval, from deltas


@dataclass(frozen=True)
class TableRow:
    schema: str
    table: str
    relid: int = 0
    seq_scans: float = summed()
    index_scans: float = summed()
    live_rows: float = summed()
    dead_rows: float = summed()
    rows_inserted: float = summed()
    rows_updated: float = summed()
    rows_deleted: float = summed()
    rows_hot_updated: float = summed()  # updates that wrote no index entry (heap-only tuples)
    size_bytes: float | None = summed(None)  # None until the first size read (postgres.size_interval)
    last_vacuum: float | None = None
    last_autovacuum: float | None = None
    last_analyze: float | None = None
    last_autoanalyze: float | None = None
    vacuums: float = summed()
    autovacuums: float = summed()
    analyzes: float = summed()
    autoanalyzes: float = summed()
    inserted_since_vacuum: float = 0.0
    modified_since_analyze: float = 0.0
    # autovacuum's thresholds from the table's own settings (AUTOVACUUM_THRESHOLDS, a maintenance read)
    autovacuum_enabled: bool = True
    vacuum_threshold: float | None = None  # dead rows past which autovacuum vacuums it
    insert_threshold: float | None = None  # rows inserted since the last vacuum, likewise (None: off)
    analyze_threshold: float | None = None  # rows modified since the last analyze, likewise

    @property
    def vacuum_due(self) -> bool:
        """Past autovacuum's threshold: the next autovacuum round should vacuum it."""
        if not self.autovacuum_enabled or self.vacuum_threshold is None:
            return False
        return self.dead_rows > self.vacuum_threshold or (
            self.insert_threshold is not None and self.inserted_since_vacuum > self.insert_threshold)

    @property
    def analyze_due(self) -> bool:
        return (self.autovacuum_enabled and self.analyze_threshold is not None
                and self.modified_since_analyze > self.analyze_threshold)


@dataclass(frozen=True)
class IndexRow:
    schema: str
    table: str
    index: str
    indexrelid: int = 0
    scans: float = summed()
    size_bytes: float | None = summed(None)


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
    tables: list[TableRow]  # the top-K; the rest summed in tables_other
    table_count: int
    indexes: list[IndexRow]
    index_count: int
    statements: list[StatementStat]  # the application's top-K by total time; the rest summed in statements_other
    statement_count: int | None  # every entry of the database: the application's and dbpulse's own
    statements_reset: float | None
    query_errors: dict[str, int]  # cumulative per statistics query
    tables_other: TableRow | None = None
    indexes_other: IndexRow | None = None
    statements_other: StatementStat | None = None
    statement_text_info: bool = False
    app_pools: list[tuple[str, int, int]] = field(default_factory=list)  # app, connections, capacity
    longest_active: list[tuple[str, float]] = field(default_factory=list)  # application_name, seconds
    track_planning: bool = False  # pg_stat_statements.track_planning: planning time is measured
    sizes_read_at: float | None = None  # when the sizes were last read (epoch seconds): every size_interval
    size_interval: float = 0.0  # postgres.size_interval
    health: ServerHealth | None = None
    attention: list[Attention] = field(default_factory=list)  # what needs attention, worst first
    own_statements: list[OwnStatements] = field(default_factory=list)  # dbpulse's own, per component
    variant_keys: dict[int, int] = field(default_factory=dict)  # queryid -> statements.variant_key, top-K
    host: str = ""  # where the poller connected (libpq's host: a name, an address or a socket directory)
    port: int = 0
    waits: WaitProfile | None = None  # wait-event time (collectors/postgres/waits.py); None when sampling is off
    others: OtherDatabases | None = None  # the other databases watched (postgres.targets[].databases)
    reserved_connections: int = 0  # superuser_reserved_connections + reserved_connections (16+): not for PgBouncer

    def links(self) -> list[Endpoint]:
        """This server and database, for views that join sources (a PgBouncer database leading here)."""
        return [Endpoint(self.target, self.host, self.port, self.datname, sum(c[3] for c in self.connections),
                         self.max_connections, self.reserved_connections)]

    @property
    def database(self) -> DatabaseRow | None:
        """The row of the database this target connects to."""
        return next((d for d in self.databases if d.datname == self.datname), None)

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
        for app, seconds in self.longest_active:
            out.add("dbpulse_pg_active_query_longest_seconds", seconds, application_name=app)
        self._database_samples(out)
        self._table_samples(out)
        self._statement_samples(out)
        for app, connections, capacity in self.app_pools:
            out.add("dbpulse_pg_app_connections", connections, application_name=app)
            out.add("dbpulse_pg_app_pool_capacity", capacity, application_name=app)
            out.add("dbpulse_pg_app_pool_usage_ratio", connections / capacity, application_name=app)
        if self.health is not None:
            self.health.add_samples(out, self.datname)
        if self.waits is not None:
            self.waits.add_samples(out, self.datname)
        if self.others is not None:
            self.others.add_samples(out)
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
        add_table_series(out, self.datname, self.table_count, self.index_count, (self.tables, self.tables_other),
                         (self.indexes, self.indexes_other))

    def _statement_samples(self, out: SampleList) -> None:
        out.add("dbpulse_pg_statements_reset_timestamp_seconds", self.statements_reset)
        add_statement_series(out, self.datname, self.statement_count, (self.statements, self.statements_other),
                             self.own_statements, self.track_planning, self.statement_text_info)


def add_table_series(out: SampleList, datname: str, table_count: int | None, index_count: int | None,
                     tables: tuple[list[TableRow], TableRow | None],
                     indexes: tuple[list[IndexRow], IndexRow | None]) -> None:
    """One database's table and index series (the poller's own database, and each other one watched)."""
    db = {"datname": datname}
    out.add("dbpulse_pg_tables", table_count, **db)
    out.add("dbpulse_pg_indexes", index_count, **db)
    vacuum = "dbpulse_pg_table_last_vacuum_timestamp_seconds"
    analyze = "dbpulse_pg_table_last_analyze_timestamp_seconds"
    for t, labels in _labelled(*tables, lambda t: {"schema": t.schema, "table": t.table},
                               {"schema": OTHER, "table": OTHER}):
        labels.update(db)
        out.add("dbpulse_pg_table_seq_scans_total", t.seq_scans, **labels)
        out.add("dbpulse_pg_table_index_scans_total", t.index_scans, **labels)
        out.add("dbpulse_pg_table_live_rows", t.live_rows, **labels)
        out.add("dbpulse_pg_table_dead_rows", t.dead_rows, **labels)
        for operation, rows in (("insert", t.rows_inserted), ("update", t.rows_updated),
                                ("delete", t.rows_deleted), ("hot_update", t.rows_hot_updated)):
            out.add("dbpulse_pg_table_rows_written_total", rows, **labels, operation=operation)
        out.add("dbpulse_pg_table_size_bytes", t.size_bytes, **labels)
        out.add(vacuum, t.last_vacuum, **labels, mode="manual")
        out.add(vacuum, t.last_autovacuum, **labels, mode="auto")
        out.add(analyze, t.last_analyze, **labels, mode="manual")
        out.add(analyze, t.last_autoanalyze, **labels, mode="auto")
        out.add("dbpulse_pg_table_vacuums_total", t.vacuums, **labels, mode="manual")
        out.add("dbpulse_pg_table_vacuums_total", t.autovacuums, **labels, mode="auto")
        out.add("dbpulse_pg_table_analyzes_total", t.analyzes, **labels, mode="manual")
        out.add("dbpulse_pg_table_analyzes_total", t.autoanalyzes, **labels, mode="auto")
        out.add("dbpulse_pg_table_autovacuum_threshold_rows",
                t.vacuum_threshold if t.autovacuum_enabled else None, **labels)
    for i, labels in _labelled(*indexes, lambda i: {"schema": i.schema, "table": i.table, "index": i.index},
                               {"schema": OTHER, "table": OTHER, "index": OTHER}):
        labels.update(db)
        out.add("dbpulse_pg_index_scans_total", i.scans, **labels)
        out.add("dbpulse_pg_index_size_bytes", i.size_bytes, **labels)


def add_statement_series(out: SampleList, datname: str, count: int | None,
                         statements: tuple[list[StatementStat], StatementStat | None], own: list[OwnStatements],
                         track_planning: bool, text_info: bool) -> None:
    """One database's statement series (the poller's own database, and each other one watched)."""
    db = {"datname": datname}
    out.add("dbpulse_pg_statements", count, **db)
    for s, labels in _labelled(*statements, lambda s: {"queryid": str(s.queryid)}, {"queryid": OTHER}):
        labels.update(db)
        out.add("dbpulse_pg_statement_calls_total", s.calls, **labels)
        out.add("dbpulse_pg_statement_exec_seconds_total", s.exec_seconds, **labels)
        out.add("dbpulse_pg_statement_rows_total", s.rows, **labels)
        out.add("dbpulse_pg_statement_shared_blocks_hit_total", s.blks_hit, **labels)
        out.add("dbpulse_pg_statement_shared_blocks_read_total", s.blks_read, **labels)
        out.add("dbpulse_pg_statement_plan_seconds_total", s.plan_seconds if track_planning else None, **labels)
        out.add("dbpulse_pg_statement_temp_blocks_read_total", s.temp_blks_read, **labels)
        out.add("dbpulse_pg_statement_temp_blocks_written_total", s.temp_blks_written, **labels)
        out.add("dbpulse_pg_statement_wal_bytes_total", s.wal_bytes, **labels)
    for o in own:
        labels = {**db, "component": o.component}
        out.add("dbpulse_pg_own_statements", o.statements, **labels)
        out.add("dbpulse_pg_own_statement_calls_total", o.calls, **labels)
        out.add("dbpulse_pg_own_statement_exec_seconds_total", o.exec_seconds, **labels)
    if text_info:
        for s in statements[0]:
            out.add("dbpulse_pg_statement_info", 1, **db, queryid=str(s.queryid), query=" ".join(s.query.split()))


def _labelled(rows: list[T], other: T | None, labels_of: Callable[[T], dict[str, str]],
              other_labels: dict[str, str]) -> Iterator[tuple[T, dict[str, str]]]:
    """Each top-K row with its labels, then the ``__other__`` aggregate with its own."""
    for row in rows:
        yield row, labels_of(row)
    if other is not None:
        yield other, dict(other_labels)
