"""The PgBouncer source against a real PgBouncer (Debian's 1.18) in front of the harness's PostgreSQL:
pools, waiting clients, counters, PAUSE/DISABLE, the pool chain's link to PostgreSQL, several targets."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from collectors.base.samples import OTHER, Sample
from collectors.pgbouncer.snapshot import PgBouncerSnapshot, Pool
from harness.pgbouncer import LocalPgBouncer
from harness.servers import LocalPostgres
from tests.integration.pgbouncer.conftest import bouncer_poller


def value(samples: list[Sample], name: str, **labels: str) -> float | None:
    """The one sample of ``name`` whose labels include ``labels`` (by the catalogue's label order)."""
    from collectors.base.catalogue import spec

    order = spec(name).labels
    found = [s.value for s in samples if s.name == name
             and all(s.labels[order.index(k)] == v for k, v in labels.items())]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def pool(snapshot: PgBouncerSnapshot, database: str) -> Pool:
    return next(p for p in snapshot.pools if p.database == database)


def poll(dsn: str, **kwargs: object) -> PgBouncerSnapshot:
    return asyncio.run(bouncer_poller(dsn, **kwargs).poll())  # type: ignore[arg-type]


@contextlib.contextmanager
def holding(bouncer: LocalPgBouncer, dbname: str, n: int, app: str = "holder") -> Iterator[list[psycopg.Connection]]:
    """``n`` clients each inside an open transaction: each holds a server connection in any pool mode."""
    conns = [psycopg.connect(bouncer.dsn(dbname, "app"), application_name=app) for _ in range(n)]
    try:
        for c in conns:
            c.execute("SELECT 1")  # psycopg opened a transaction: it stays open
        yield conns
    finally:
        for c in conns:
            c.close()


@contextlib.contextmanager
def waiting(bouncer: LocalPgBouncer, dbname: str, n: int) -> Iterator[list[threading.Thread]]:
    """``n`` clients that send a query (in threads) and wait for a server connection."""
    conns = [psycopg.connect(bouncer.dsn(dbname, "app"), application_name="waiter", autocommit=True)
             for _ in range(n)]
    def query(conn: psycopg.Connection) -> None:
        with conn:  # closed once served: in session mode, that frees the server for the next one
            conn.execute("SELECT 1")

    threads = [threading.Thread(target=query, args=(c,), daemon=True) for c in conns]
    for t in threads:
        t.start()
    try:
        yield threads
    finally:
        for t in threads:
            t.join(10)
        for c in conns:
            c.close()


@pytest.fixture
def dbname(fresh_db: str) -> str:
    return fresh_db.rsplit("/", 1)[1]


def test_pools_databases_and_the_chain_link(pgbouncer: LocalPgBouncer, pg_server: LocalPostgres,
                                            dbname: str) -> None:
    with holding(pgbouncer, dbname, 1, app="quotes-api"):
        snapshot = poll(pgbouncer.dsn())
    assert snapshot.version == "1.18.0"
    p = pool(snapshot, dbname)
    assert (p.user, p.pool_mode) == ("postgres", "transaction")
    assert p.clients["active"] == 1 and p.servers["active"] == 1 and p.clients["waiting"] == 0
    assert all(x.database != "pgbouncer" for x in snapshot.pools)  # the admin console, dbpulse's own
    [link] = [d for d in snapshot.chain() if d.name == dbname]
    assert (link.host, link.port, link.backend_database) == ("127.0.0.1", pg_server.port, dbname)
    assert link.pool_size == 2 and link.current_connections == 1 and not link.paused and not link.disabled
    samples = snapshot.samples()
    assert value(samples, "dbpulse_pgbouncer_database_info", database=dbname, host="127.0.0.1",
                 port=str(pg_server.port), backend_database=dbname) == 1
    assert value(samples, "dbpulse_pgbouncer_clients", database=dbname, state="active",
                 application_name="quotes-api") == 1
    assert value(samples, "dbpulse_pgbouncer_servers", database=dbname, state="active",
                 application_name="quotes-api") == 1
    assert value(samples, "dbpulse_pgbouncer_max_client_conn") == 100
    assert value(samples, "dbpulse_pgbouncer_default_pool_size") == 2
    assert value(samples, "dbpulse_pgbouncer_list_items", list="used_clients") == 2  # the holder and dbpulse
    assert value(samples, "dbpulse_pgbouncer_client_connections") == 1  # the holder: dbpulse's own left out
    assert value(samples, "dbpulse_pgbouncer_command_errors_total", command="pools") == 0


@pytest.mark.parametrize("pool_mode", ["transaction", "session"])
def test_clients_beyond_pool_size_wait_and_maxwait_grows(pg_server: LocalPostgres, fresh_db: str,
                                                         pool_mode: str) -> None:
    dbname = fresh_db.rsplit("/", 1)[1]
    with LocalPgBouncer(pg_server, pool_mode=pool_mode, pool_size=2) as bouncer:
        poller = bouncer_poller(bouncer.dsn())

        async def two_polls() -> tuple[PgBouncerSnapshot, PgBouncerSnapshot]:
            first = await poller.poll()
            await asyncio.sleep(1.5)
            return first, await poller.poll()

        with holding(bouncer, dbname, 2) as held, waiting(bouncer, dbname, 3) as threads:
            deadline = time.monotonic() + 10
            while pool(asyncio.run(bouncer_poller(bouncer.dsn()).poll()), dbname).clients["waiting"] < 3:
                assert time.monotonic() < deadline, "the clients never queued"
                time.sleep(0.1)
            first, second = asyncio.run(two_polls())
            assert all(t.is_alive() for t in threads)
            for conn in held:
                conn.close()  # the waiting clients get their servers
            for t in threads:
                t.join(10)
        after = poll(bouncer.dsn())
    p1, p2 = pool(first, dbname), pool(second, dbname)
    assert p1.clients["waiting"] == p2.clients["waiting"] == 3
    assert p2.servers["active"] == 2  # every server of the pool is taken: it is saturated
    assert p2.maxwait_seconds >= p1.maxwait_seconds + 1.0
    assert value(second.samples(), "dbpulse_pgbouncer_pool_maxwait_seconds", database=dbname) == p2.maxwait_seconds
    assert value(second.samples(), "dbpulse_pgbouncer_clients", database=dbname, state="waiting",
                 application_name="waiter") == 3
    # released: the waiting clients were served, and their wait was counted
    assert pool(after, dbname).clients["waiting"] == 0 and pool(after, dbname).maxwait_seconds == 0
    assert after.stats[dbname]["dbpulse_pgbouncer_client_wait_seconds_total"] >= 1.5


def test_stats_counters_increase(pgbouncer: LocalPgBouncer, dbname: str) -> None:
    poller = bouncer_poller(pgbouncer.dsn())

    def work(n: int) -> None:
        with psycopg.connect(pgbouncer.dsn(dbname, "app"), autocommit=True) as conn:
            for i in range(n):
                conn.execute("SELECT repeat('x', %s)", (100 + i,)).fetchone()

    async def run() -> tuple[PgBouncerSnapshot, PgBouncerSnapshot]:
        await asyncio.to_thread(work, 5)
        first = await poller.poll()
        await asyncio.to_thread(work, 20)
        return first, await poller.poll()

    first, second = asyncio.run(run())
    before, after = first.stats[dbname], second.stats[dbname]
    assert after["dbpulse_pgbouncer_queries_total"] >= before["dbpulse_pgbouncer_queries_total"] + 20
    assert after["dbpulse_pgbouncer_transactions_total"] >= before["dbpulse_pgbouncer_transactions_total"] + 20
    for name in ("dbpulse_pgbouncer_sent_bytes_total", "dbpulse_pgbouncer_received_bytes_total",
                 "dbpulse_pgbouncer_query_seconds_total"):
        assert after[name] > before[name], name


def test_pause_resume_and_disable_are_seen(pgbouncer: LocalPgBouncer, dbname: str) -> None:
    # A client stays connected (idle between transactions: it holds no server, so PAUSE completes).
    with psycopg.connect(pgbouncer.dsn(dbname, "app"), autocommit=True) as client, \
            psycopg.connect(pgbouncer.dsn(user="admin"), autocommit=True) as admin:
        client.execute("SELECT 1")
        admin.execute(f"PAUSE {dbname}")
        paused = poll(pgbouncer.dsn())
        admin.execute(f"RESUME {dbname}")
        resumed = poll(pgbouncer.dsn())
        admin.execute(f"DISABLE {dbname}")
        disabled = poll(pgbouncer.dsn())
        admin.execute(f"ENABLE {dbname}")
    flags = {name: [(d.paused, d.disabled) for d in s.databases if d.name == dbname]
             for name, s in (("paused", paused), ("resumed", resumed), ("disabled", disabled))}
    assert flags == {"paused": [(True, False)], "resumed": [(False, False)], "disabled": [(False, True)]}, \
        [(s.command_errors, [d.name for d in s.databases]) for s in (paused, resumed, disabled)]
    assert value(paused.samples(), "dbpulse_pgbouncer_database_paused", database=dbname) == 1
    assert value(disabled.samples(), "dbpulse_pgbouncer_database_disabled", database=dbname) == 1


def test_bad_password_is_a_clear_error_without_the_password(pgbouncer: LocalPgBouncer) -> None:
    dsn = pgbouncer.dsn(password="wrong-guess-123")
    with pytest.raises(ConnectionError) as caught:
        poll(dsn)
    message = str(caught.value)
    assert "password authentication failed" in message and "stats_users" in message, message
    assert "wrong-guess-123" not in message


def test_a_role_outside_stats_users_is_told_so(pgbouncer: LocalPgBouncer) -> None:
    with pytest.raises(ConnectionError) as caught:
        poll(pgbouncer.dsn(user="app"))
    assert "stats_users" in str(caught.value) and "app-secret" not in str(caught.value)


def test_several_pgbouncers_each_a_target(pg_server: LocalPostgres, dbname: str) -> None:
    with LocalPgBouncer(pg_server, pool_size=3) as one, LocalPgBouncer(pg_server, pool_size=5) as two, \
            holding(one, dbname, 1), holding(two, dbname, 2):
        async def both() -> list[PgBouncerSnapshot]:
            return list(await asyncio.gather(bouncer_poller(one.dsn(), name="edge-1").poll(),
                                             bouncer_poller(two.dsn(), name="edge-2").poll()))
        first, second = asyncio.run(both())
    assert (first.target, second.target) == ("edge-1", "edge-2")
    assert pool(first, dbname).clients["active"] == 1 and pool(second, dbname).clients["active"] == 2
    sizes = {s.labels[0]: s.value for s in first.samples() + second.samples()
             if s.name == "dbpulse_pgbouncer_database_pool_size" and s.labels[1] == dbname}
    assert sizes == {"edge-1": 3, "edge-2": 5}


def test_pools_beyond_top_pools_are_summed(pgbouncer: LocalPgBouncer, pg_server: LocalPostgres) -> None:
    names = [f"tp{i}" for i in range(3)]
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        for name in names:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
    try:
        with holding(pgbouncer, "tp0", 2), holding(pgbouncer, "tp1", 1), holding(pgbouncer, "tp2", 1):
            snapshot = poll(pgbouncer.dsn(), top_pools=1)
    finally:
        with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
            for name in names:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    assert [p.database for p in snapshot.pools] == ["tp0"]
    assert snapshot.pools_other is not None and snapshot.pools_other.database == OTHER
    assert snapshot.pools_other.clients["active"] == 2
