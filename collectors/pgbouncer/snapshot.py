"""What one poll of a PgBouncer read, parsed from the admin console's SHOW rows, and its samples.

PgBouncer versions add and rename columns (1.21: ``prepared_statements`` on clients and servers; 1.23:
``server_assignment_count`` and ``server_lifetime``; 1.24: parse/bind counts, ``reserve_pool`` renamed
``reserve_pool_size``, per-database client limits). Every parser here reads a column only when the row
has it, so one code path serves every version and a series exists only where its column does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from collectors.base.samples import OTHER, Sample, SampleList

ADMIN_DATABASE = "pgbouncer"  # the admin console's own virtual database: dbpulse's connection, left out

# SHOW STATS column -> (counter, scale to the counter's unit). Times are microseconds.
STATS_COUNTERS: dict[str, tuple[str, float]] = {
    "total_xact_count": ("dbpulse_pgbouncer_transactions_total", 1.0),
    "total_query_count": ("dbpulse_pgbouncer_queries_total", 1.0),
    "total_received": ("dbpulse_pgbouncer_received_bytes_total", 1.0),
    "total_sent": ("dbpulse_pgbouncer_sent_bytes_total", 1.0),
    "total_xact_time": ("dbpulse_pgbouncer_transaction_seconds_total", 1e-6),
    "total_query_time": ("dbpulse_pgbouncer_query_seconds_total", 1e-6),
    "total_wait_time": ("dbpulse_pgbouncer_client_wait_seconds_total", 1e-6),
    "total_server_assignment_count": ("dbpulse_pgbouncer_server_assignments_total", 1.0),  # 1.23+
    "total_client_parse_count": ("dbpulse_pgbouncer_client_parses_total", 1.0),  # 1.24+
    "total_server_parse_count": ("dbpulse_pgbouncer_server_parses_total", 1.0),  # 1.24+
    "total_bind_count": ("dbpulse_pgbouncer_binds_total", 1.0),  # 1.24+
}

# SHOW POOLS client and server columns -> the ``state`` label of the pool's client and server counts.
POOL_CLIENT_STATES = {"cl_active": "active", "cl_waiting": "waiting",
                      "cl_active_cancel_req": "active_cancel_req", "cl_waiting_cancel_req": "waiting_cancel_req"}
POOL_SERVER_STATES = {"sv_active": "active", "sv_idle": "idle", "sv_used": "used", "sv_tested": "tested",
                      "sv_login": "login", "sv_active_cancel": "active_cancel", "sv_being_canceled": "being_canceled"}

# Metrics only some PgBouncer versions have the columns for (named in each column's comment above/below).
VERSION_DEPENDENT = frozenset({
    "dbpulse_pgbouncer_server_assignments_total", "dbpulse_pgbouncer_client_parses_total",
    "dbpulse_pgbouncer_server_parses_total", "dbpulse_pgbouncer_binds_total",
    "dbpulse_pgbouncer_database_max_client_connections", "dbpulse_pgbouncer_database_client_connections",
    "dbpulse_pgbouncer_server_prepared_statements",
})


def _int(value: Any) -> int:
    return int(value) if value is not None and value != "" else 0


def _opt_int(row: Mapping[str, Any], *columns: str) -> int | None:
    """The first of ``columns`` the row has, as an int; None when it has none of them."""
    for column in columns:
        if column in row:
            return _int(row[column])
    return None


@dataclass(frozen=True)
class Pool:
    """One SHOW POOLS row: a (database, user) pool. Counts of columns this version lacks are absent."""

    database: str
    user: str
    clients: dict[str, int] = field(default_factory=dict)  # state -> count
    servers: dict[str, int] = field(default_factory=dict)
    maxwait_seconds: float = 0.0
    pool_mode: str = ""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Pool:
        return cls(
            database=str(row["database"]), user=str(row["user"]),
            clients={s: _int(row[c]) for c, s in POOL_CLIENT_STATES.items() if c in row},
            servers={s: _int(row[c]) for c, s in POOL_SERVER_STATES.items() if c in row},
            maxwait_seconds=_int(row.get("maxwait")) + _int(row.get("maxwait_us")) / 1e6,
            pool_mode=str(row.get("pool_mode") or ""),
        )

    @property
    def busy(self) -> int:
        """What ranks a pool for the top-K: clients served or waiting, servers in use."""
        return self.clients.get("active", 0) + self.clients.get("waiting", 0) + self.servers.get("active", 0)


def fold_pools(pools: list[Pool]) -> Pool | None:
    """The pools beyond the top-K as one: counts added up, the longest wait kept."""
    if not pools:
        return None
    clients: dict[str, int] = {}
    servers: dict[str, int] = {}
    for p in pools:
        for state, n in p.clients.items():
            clients[state] = clients.get(state, 0) + n
        for state, n in p.servers.items():
            servers[state] = servers.get(state, 0) + n
    return Pool(OTHER, OTHER, clients, servers, max(p.maxwait_seconds for p in pools), OTHER)


@dataclass(frozen=True)
class Database:
    """One SHOW DATABASES row; with ``host``/``port``/``backend_database``, the link of the pool chain
    from this PgBouncer database to the PostgreSQL behind it."""

    name: str
    host: str  # "" when PgBouncer connects over a Unix socket
    port: int
    backend_database: str
    force_user: str
    pool_size: int
    reserve_pool_size: int
    pool_mode: str  # "" when the database inherits the default pool_mode
    max_connections: int  # 0: no limit
    current_connections: int
    paused: bool
    disabled: bool
    max_client_connections: int | None = None  # 1.24+
    client_connections: int | None = None  # 1.24+

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Database:
        return cls(
            name=str(row["name"]), host=str(row.get("host") or ""), port=_int(row.get("port")),
            backend_database=str(row.get("database") or ""), force_user=str(row.get("force_user") or ""),
            pool_size=_int(row.get("pool_size")),
            reserve_pool_size=_opt_int(row, "reserve_pool_size", "reserve_pool") or 0,
            pool_mode=str(row.get("pool_mode") or ""),
            max_connections=_int(row.get("max_connections")),
            current_connections=_int(row.get("current_connections")),
            paused=bool(_int(row.get("paused"))), disabled=bool(_int(row.get("disabled"))),
            max_client_connections=_opt_int(row, "max_client_connections"),
            client_connections=_opt_int(row, "current_client_connections"),
        )


@dataclass(frozen=True)
class ConnectionCount:
    """Clients or servers of one database in one state, of one application (or ``__other__``)."""

    database: str
    state: str
    application_name: str
    count: int


def count_connections(rows: Iterable[Mapping[str, Any]], top_applications: int) -> list[ConnectionCount]:
    """SHOW CLIENTS / SHOW SERVERS rows counted by (database, state, application); the applications
    beyond the ``top_applications`` with the most connections summed as ``__other__``."""
    per_app: dict[str, int] = {}
    keys: list[tuple[str, str, str]] = []
    for r in rows:
        if r.get("database") == ADMIN_DATABASE:
            continue
        app = str(r.get("application_name") or "")
        per_app[app] = per_app.get(app, 0) + 1
        keys.append((str(r.get("database") or ""), str(r.get("state") or ""), app))
    top = set(sorted(per_app, key=lambda a: (-per_app[a], a))[:top_applications])
    grouped: dict[tuple[str, str, str], int] = {}
    for database, state, app in keys:
        key = (database, state, app if app in top else OTHER)
        grouped[key] = grouped.get(key, 0) + 1
    return [ConnectionCount(d, s, a, n) for (d, s, a), n in sorted(grouped.items())]


def client_connections(pool_rows: Iterable[Mapping[str, Any]]) -> int:
    """Client connections in PgBouncer's pools (every SHOW POOLS row, the admin console's included, as
    max_client_conn counts them), less dbpulse's own: the one admin-console connection that sent SHOW POOLS."""
    total = sum(_int(r.get(column)) for r in pool_rows for column in POOL_CLIENT_STATES if column in r)
    return max(0, total - 1)


def prepared_statements(rows: Iterable[Mapping[str, Any]]) -> dict[str, int] | None:
    """Prepared statements on the server connections, per database (1.21+); None before 1.21."""
    out: dict[str, int] | None = None
    for r in rows:
        if "prepared_statements" not in r:
            return None
        out = out or {}
        database = str(r.get("database") or "")
        out[database] = out.get(database, 0) + _int(r["prepared_statements"])
    return out


@dataclass
class PgBouncerSnapshot:
    target: str
    version: str  # "1.18.0"
    pools: list[Pool]
    pools_other: Pool | None
    stats: dict[str, dict[str, float]]  # database -> counter name -> value (in the counter's unit)
    databases: list[Database]
    lists: dict[str, int]
    max_client_conn: int | None
    default_pool_size: int | None
    clients: list[ConnectionCount]
    servers: list[ConnectionCount]
    server_prepared_statements: dict[str, int] | None = None
    command_errors: dict[str, int] = field(default_factory=dict)
    client_connections: int | None = None  # every client in a pool, dbpulse's own connection left out
    applications: dict[str, str] = field(default_factory=dict)  # health target -> PgBouncer database (configured)
    default_pool_mode: str = ""  # SHOW CONFIG pool_mode: a database's mode when its entry sets none

    def chain(self) -> list[Database]:
        """The pool chain's PgBouncer-to-PostgreSQL links: each database's backend host, port and database,
        so the service can match a pool to a configured PostgreSQL target."""
        return [d for d in self.databases if d.name != ADMIN_DATABASE]

    def pool_size_of(self, pool: Pool) -> int | None:
        """The pool_size of the pool's database (None for ``__other__`` or a database not listed)."""
        return next((d.pool_size for d in self.databases if d.name == pool.database), None)

    def pool_mode_of(self, database: Database) -> str:
        """The database's effective pool mode: its own, else that of its pools (SHOW POOLS), else the default."""
        pools = {p.pool_mode for p in self.pools if p.database == database.name}
        return database.pool_mode or (pools.pop() if len(pools) == 1 else "") or self.default_pool_mode

    def pools_of(self, database: Database) -> int:
        """How many pools the database has or can have: one with a forced user (every client shares it), else
        one per user seen in SHOW POOLS (at least one: a pool appears with its first client)."""
        if database.force_user:
            return 1
        return max(1, len({p.user for p in self.pools if p.database == database.name}))

    def saturated(self, pool: Pool) -> bool:
        """Every server of the pool is in use while clients wait: the queue is in PgBouncer (the condition of
        PgBouncerPoolSaturated, without its 5 minutes)."""
        size = self.pool_size_of(pool)
        return size is not None and pool.servers.get("active", 0) >= size and pool.clients.get("waiting", 0) > 0

    def samples(self) -> list[Sample]:
        out = SampleList(target=self.target)
        out.add("dbpulse_pgbouncer_up", 1)
        out.add("dbpulse_pgbouncer_info", 1, version=self.version)
        for pool in [*self.pools, *([self.pools_other] if self.pools_other else [])]:
            keys = {"database": pool.database, "user": pool.user}
            for state, n in pool.clients.items():
                out.add("dbpulse_pgbouncer_pool_clients", n, state=state, **keys)
            for state, n in pool.servers.items():
                out.add("dbpulse_pgbouncer_pool_servers", n, state=state, **keys)
            out.add("dbpulse_pgbouncer_pool_maxwait_seconds", pool.maxwait_seconds, **keys)
            out.add("dbpulse_pgbouncer_pool_info", 1, pool_mode=pool.pool_mode, **keys)
        for database, counters in sorted(self.stats.items()):
            for name, value in counters.items():
                out.add(name, value, database=database)
        for d in self.chain():
            out.add("dbpulse_pgbouncer_database_info", 1, database=d.name, host=d.host, port=str(d.port),
                    backend_database=d.backend_database, pool_mode=d.pool_mode)
            out.add("dbpulse_pgbouncer_database_pool_size", d.pool_size, database=d.name)
            out.add("dbpulse_pgbouncer_database_reserve_pool_size", d.reserve_pool_size, database=d.name)
            out.add("dbpulse_pgbouncer_database_max_connections", d.max_connections, database=d.name)
            out.add("dbpulse_pgbouncer_database_current_connections", d.current_connections, database=d.name)
            out.add("dbpulse_pgbouncer_database_paused", int(d.paused), database=d.name)
            out.add("dbpulse_pgbouncer_database_disabled", int(d.disabled), database=d.name)
            out.add("dbpulse_pgbouncer_database_max_client_connections", d.max_client_connections, database=d.name)
            out.add("dbpulse_pgbouncer_database_client_connections", d.client_connections, database=d.name)
        for name, items in sorted(self.lists.items()):
            out.add("dbpulse_pgbouncer_list_items", items, list=name)
        out.add("dbpulse_pgbouncer_max_client_conn", self.max_client_conn)
        out.add("dbpulse_pgbouncer_client_connections", self.client_connections)
        out.add("dbpulse_pgbouncer_default_pool_size", self.default_pool_size)
        for kind, counts in (("dbpulse_pgbouncer_clients", self.clients), ("dbpulse_pgbouncer_servers", self.servers)):
            for c in counts:
                out.add(kind, c.count, database=c.database, state=c.state, application_name=c.application_name)
        for database, n in sorted((self.server_prepared_statements or {}).items()):
            out.add("dbpulse_pgbouncer_server_prepared_statements", n, database=database)
        for command, n in sorted(self.command_errors.items()):
            out.add("dbpulse_pgbouncer_command_errors_total", n, command=command)
        return out.samples


def stats_counters(row: Mapping[str, Any]) -> dict[str, float]:
    """One SHOW STATS row's counters present in this version, in seconds and bytes."""
    return {name: float(row[column]) * scale for column, (name, scale) in STATS_COUNTERS.items()
            if column in row and row[column] is not None}
