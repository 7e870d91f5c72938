"""The admin console's columns by PgBouncer version, as each release's src/admin.c and src/stats.c declare
them: every version parses through one code path, by column presence, and a series exists only where its
column does."""

from __future__ import annotations

from typing import Any

import pytest

from collectors.base.catalogue import catalogue
from collectors.base.samples import OTHER
from collectors.pgbouncer.snapshot import (
    VERSION_DEPENDENT,
    ConnectionCount,
    Database,
    PgBouncerSnapshot,
    Pool,
    count_connections,
    fold_pools,
    prepared_statements,
    stats_counters,
)

POOLS_118 = ("database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req", "cl_waiting_cancel_req",
             "sv_active", "sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used", "sv_tested", "sv_login",
             "maxwait", "maxwait_us", "pool_mode")
STATS_118 = ("database", "total_xact_count", "total_query_count", "total_received", "total_sent",
             "total_xact_time", "total_query_time", "total_wait_time", "avg_xact_count", "avg_query_count",
             "avg_recv", "avg_sent", "avg_xact_time", "avg_query_time", "avg_wait_time")
STATS_123 = ("database", "total_server_assignment_count", *STATS_118[1:8], "avg_server_assignment_count",
             *STATS_118[8:])
STATS_124 = ("database", "total_server_assignment_count", *STATS_118[1:8], "total_client_parse_count",
             "total_server_parse_count", "total_bind_count", "avg_server_assignment_count", *STATS_118[8:],
             "avg_client_parse_count", "avg_server_parse_count", "avg_bind_count")
DATABASES_118 = ("name", "host", "port", "database", "force_user", "pool_size", "min_pool_size", "reserve_pool",
                 "pool_mode", "max_connections", "current_connections", "paused", "disabled")
DATABASES_123 = ("name", "host", "port", "database", "force_user", "pool_size", "min_pool_size", "reserve_pool",
                 "server_lifetime", "pool_mode", "max_connections", "current_connections", "paused", "disabled")
DATABASES_124 = ("name", "host", "port", "database", "force_user", "pool_size", "min_pool_size", "reserve_pool_size",
                 "server_lifetime", "pool_mode", "load_balance_hosts", "max_connections", "current_connections",
                 "max_client_connections", "current_client_connections", "paused", "disabled")
SOCKETS_118 = ("type", "user", "database", "state", "addr", "port", "local_addr", "local_port", "connect_time",
               "request_time", "wait", "wait_us", "close_needed", "ptr", "link", "remote_pid", "tls",
               "application_name")
SOCKETS_121 = (*SOCKETS_118, "prepared_statements")
SOCKETS_123 = ("type", "user", "database", "replication", *SOCKETS_118[3:], "prepared_statements")
SOCKETS_124 = (*SOCKETS_123, "id")

VERSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "1.18": {"pools": POOLS_118, "stats": STATS_118, "databases": DATABASES_118, "sockets": SOCKETS_118},
    "1.21": {"pools": POOLS_118, "stats": STATS_118, "databases": DATABASES_118, "sockets": SOCKETS_121},
    "1.23": {"pools": POOLS_118, "stats": STATS_123, "databases": DATABASES_123, "sockets": SOCKETS_123},
    "1.24": {"pools": (*POOLS_118, "load_balance_hosts"), "stats": STATS_124, "databases": DATABASES_124,
             "sockets": SOCKETS_124},
}

VALUES: dict[str, Any] = {
    "database": "shop", "user": "app", "name": "shop", "host": "10.0.0.5", "port": 5432, "force_user": None,
    "pool_mode": "transaction", "cl_active": 4, "cl_waiting": 3, "sv_active": 20, "sv_idle": 0, "maxwait": 2,
    "maxwait_us": 500000, "pool_size": 20, "reserve_pool": 5, "reserve_pool_size": 5, "max_connections": 0,
    "current_connections": 20, "paused": 0, "disabled": 1, "max_client_connections": 500,
    "current_client_connections": 7, "total_xact_time": 3_000_000, "total_wait_time": 1_500_000, "state": "active",
    "application_name": "quotes-api", "prepared_statements": 6, "load_balance_hosts": None,
}


def row(columns: tuple[str, ...]) -> dict[str, Any]:
    """A row with these columns: known values, other counts at 10."""
    return {c: VALUES.get(c, 10) for c in columns}


def snapshot_of(version: str) -> PgBouncerSnapshot:
    cols = VERSIONS[version]
    servers = [row(cols["sockets"])]
    return PgBouncerSnapshot(
        target="edge", version=version, pools=[Pool.from_row(row(cols["pools"]))], pools_other=None,
        stats={"shop": stats_counters(row(cols["stats"]))}, databases=[Database.from_row(row(cols["databases"]))],
        lists={"used_clients": 8}, max_client_conn=100, default_pool_size=20,
        clients=count_connections([row(cols["sockets"])], 20), servers=count_connections(servers, 20),
        server_prepared_statements=prepared_statements(servers))


@pytest.mark.parametrize("version", VERSIONS)
def test_every_version_parses_by_column_presence(version: str) -> None:
    snap = snapshot_of(version)
    pool = snap.pools[0]
    assert pool.clients["waiting"] == 3 and pool.servers["active"] == 20
    assert pool.maxwait_seconds == 2.5
    db = snap.databases[0]
    assert (db.host, db.port, db.backend_database, db.pool_size, db.reserve_pool_size) == ("10.0.0.5", 5432,
                                                                                            "shop", 20, 5)
    assert db.disabled and not db.paused
    counters = snap.stats["shop"]
    assert counters["dbpulse_pgbouncer_transaction_seconds_total"] == 3.0  # microseconds read as seconds
    assert counters["dbpulse_pgbouncer_client_wait_seconds_total"] == 1.5
    names = {s.name for s in snap.samples()}  # SampleList checks every name and label against the catalogue
    present = {
        "dbpulse_pgbouncer_server_assignments_total": version >= "1.23",
        "dbpulse_pgbouncer_binds_total": version >= "1.24",
        "dbpulse_pgbouncer_client_parses_total": version >= "1.24",
        "dbpulse_pgbouncer_server_parses_total": version >= "1.24",
        "dbpulse_pgbouncer_database_max_client_connections": version >= "1.24",
        "dbpulse_pgbouncer_database_client_connections": version >= "1.24",
        "dbpulse_pgbouncer_server_prepared_statements": version >= "1.21",
    }
    assert present.keys() == VERSION_DEPENDENT
    # The catalogue says from which version each exists (``requires``): the catalogue test relies on it.
    needs = {n: tuple(map(int, catalogue()[n].requires.split("."))) for n in present}
    assert {n: tuple(map(int, version.split("."))) >= v for n, v in needs.items()} == present
    assert {n: n in names for n in present} == present


def test_1_24_client_limits_and_prepared_statements() -> None:
    snap = snapshot_of("1.24")
    assert (snap.databases[0].max_client_connections, snap.databases[0].client_connections) == (500, 7)
    assert snap.server_prepared_statements == {"shop": 6}
    assert snapshot_of("1.18").server_prepared_statements is None


def test_connection_counts_keep_the_top_applications_and_sum_the_rest() -> None:
    rows = ([{"database": "shop", "state": "active", "application_name": "api"}] * 5
            + [{"database": "shop", "state": "waiting", "application_name": "worker"}] * 3
            + [{"database": "shop", "state": "active", "application_name": f"job-{i}"} for i in range(4)]
            + [{"database": "pgbouncer", "state": "active", "application_name": "dbpulse"}])
    counts = count_connections(rows, top_applications=2)
    assert counts == [ConnectionCount("shop", "active", OTHER, 4), ConnectionCount("shop", "active", "api", 5),
                      ConnectionCount("shop", "waiting", "worker", 3)]
    assert sum(c.count for c in counts) == 12  # the admin console's own client is left out, nothing else


def test_pools_beyond_the_top_keep_the_longest_wait() -> None:
    pools = [Pool("a", "u", {"waiting": 2}, {"active": 1}, 4.0), Pool("b", "u", {"waiting": 1}, {"active": 3}, 9.0)]
    other = fold_pools(pools)
    assert other is not None
    assert (other.database, other.clients, other.servers, other.maxwait_seconds) == (
        OTHER, {"waiting": 3}, {"active": 4}, 9.0)
    assert fold_pools([]) is None
