"""The chain's configuration checks on cases a single harness PgBouncer does not make (its one "*" entry has a
forced user): pools per user, max_db_connections, two targets watching one server, the default pool_mode. The
real-server cases are in tests/integration/pgbouncer/test_pgbouncer_chain_imbalance.py."""

from __future__ import annotations

from collectors.base.chain import AppPool, Endpoint
from collectors.pgbouncer.chain import capacities, imbalances
from collectors.pgbouncer.snapshot import Database, PgBouncerSnapshot, Pool


def db(name: str, pool_size: int, reserve: int = 0, force_user: str = "", max_db_connections: int = 0,
       pool_mode: str = "") -> Database:
    return Database(name, "localhost", 5432, name, force_user, pool_size, reserve, pool_mode, max_db_connections, 0,
                    False, False)


def snapshot(databases: list[Database], pools: list[Pool], default_pool_mode: str = "transaction",
             applications: dict[str, str] | None = None) -> PgBouncerSnapshot:
    return PgBouncerSnapshot(target="edge", version="1.18.0", pools=pools, pools_other=None, stats={},
                             databases=databases, lists={}, max_client_conn=100, default_pool_size=20, clients=[],
                             servers=[], applications=applications or {}, default_pool_mode=default_pool_mode)


SERVER = Endpoint("primary", "127.0.0.1", 5432, "shop", 10, 100, 3)
SAME_SERVER = Endpoint("primary-reports", "localhost", 5432, "reports", 10, 100, 3)


def test_pools_per_user_are_counted_and_max_db_connections_caps_them() -> None:
    shop = db("shop", 20, reserve=5)  # no forced user: one pool per user seen
    reports = db("reports", 30, max_db_connections=10)
    pools = [Pool("shop", "api"), Pool("shop", "worker"), Pool("reports", "bi")]
    checks = imbalances(snapshot([shop, reports], pools), [SERVER, SAME_SERVER])
    assert [(c.check, c.subject, c.demand, c.capacity) for c in checks] == [
        ("pgbouncer_pools_over_max_connections", "primary", (20 + 5) * 2 + 10, 97)]  # one server, one check
    assert "shop: (pool_size 20 + reserve_pool 5) x 2 pool(s); reports: (pool_size 30 + reserve_pool 0) x 1 " \
        "pool(s), max_db_connections 10" in checks[0].text
    assert not checks[0].imbalanced  # 60 of 97
    assert capacities(snapshot([shop, reports], pools), [SERVER])["shop"] == {
        "pgbouncer_clients": 100, "pgbouncer_pool": 50, "server": 97}


def test_session_mode_from_the_default_pool_mode() -> None:
    """A database whose entry sets no pool_mode and that has no pool yet takes SHOW CONFIG's pool_mode."""
    shop = db("shop", 4, force_user="app")
    app = AppPool("api", "db.pool", 0, 10)
    session = imbalances(snapshot([shop], [], "session", {"api": "shop"}), [app])
    assert [(c.check, c.demand, c.capacity, c.imbalanced) for c in session] == [
        ("app_pools_over_max_client_conn", 10, 100, False), ("session_app_pools_over_pool_size", 10, 4, True)]
    transaction = imbalances(snapshot([shop], [], "transaction", {"api": "shop"}), [app])
    assert [c.check for c in transaction] == ["app_pools_over_max_client_conn"]  # no queue by design there


def test_session_mode_counts_a_pool_per_user_and_max_db_connections() -> None:
    """Two users, each with its own pool of 4: 8 app connections fit; max_db_connections 6 caps them again."""
    shop = db("shop", 4, pool_mode="session")  # no forced user: one pool per user seen
    pools = [Pool("shop", "api"), Pool("shop", "worker")]
    apps = [AppPool("api", "db.pool", 0, 4), AppPool("worker", "db.pool", 0, 4)]
    fits = imbalances(snapshot([shop], pools, applications={"api": "shop", "worker": "shop"}), apps)
    session = [c for c in fits if c.check == "session_app_pools_over_pool_size"]
    assert [(c.demand, c.capacity, c.imbalanced) for c in session] == [(8, 8, False)]

    capped = db("shop", 4, pool_mode="session", max_db_connections=6)
    over = imbalances(snapshot([capped], pools, applications={"api": "shop", "worker": "shop"}), apps)
    session = [c for c in over if c.check == "session_app_pools_over_pool_size"]
    assert [(c.demand, c.capacity, c.imbalanced) for c in session] == [(8, 6, True)]
    assert "Raise max_db_connections of shop in pgbouncer.ini to at least 8 (" in session[0].text
    assert "Raise pool_size" not in session[0].text  # 4 per pool already holds 8: the cap is what to change
