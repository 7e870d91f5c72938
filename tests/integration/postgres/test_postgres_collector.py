"""PostgreSQL collector against the harness's real server, with real load."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from collectors.base.samples import OTHER, Sample
from collectors.postgres.poller import PostgresPoller
from collectors.postgres.snapshot import PostgresSnapshot
from harness.servers import LocalPostgres
from tests.support import pg_poller


def flush_stats(conn: psycopg.Connection) -> None:
    """Make the backend publish its pending statistics now (PostgreSQL 15+), instead of within 1-10 s."""
    conn.execute("SELECT pg_stat_force_next_flush()")


async def poll_once(dsn: str, polls: int = 1, **settings: object) -> PostgresSnapshot:
    """Poll a new poller ``polls`` times, close it, and return the last snapshot."""
    p = pg_poller(dsn, **settings)
    try:
        for _ in range(polls):
            snap = await p.poll()
    finally:
        await p.close()
    return snap


def values(samples: list[Sample], name: str) -> dict[tuple[str, ...], float]:
    return {s.labels: s.value for s in samples if s.name == name}


def one(samples: list[Sample], name: str) -> float:
    found = values(samples, name)
    assert len(found) == 1, (name, found)
    return next(iter(found.values()))


@pytest.fixture
async def poller(fresh_db: str) -> AsyncIterator[PostgresPoller]:
    p = pg_poller(fresh_db, top_statements=5, top_tables=3, top_indexes=4)
    yield p
    await p.close()


@pytest.fixture
def db(fresh_db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        yield conn


async def test_sequential_scans_and_unused_index(poller: PostgresPoller, db: psycopg.Connection) -> None:
    db.execute("CREATE TABLE orders (id int PRIMARY KEY, customer int, note text)")
    db.execute("CREATE INDEX orders_note_idx ON orders (note)")
    db.execute("INSERT INTO orders SELECT g, g % 10, 'n' || g FROM generate_series(1, 500) g")
    db.execute("SET enable_indexscan = off; SET enable_bitmapscan = off")
    for _ in range(7):
        db.execute("SELECT count(*) FROM orders WHERE customer = 3").fetchone()
    flush_stats(db)
    snap = await poller.poll()
    samples = snap.samples()
    seq = values(samples, "dbpulse_pg_table_seq_scans_total")
    assert seq[("shop", snap.datname, "public", "orders")] >= 7
    idx = values(samples, "dbpulse_pg_index_scans_total")
    assert idx[("shop", snap.datname, "public", "orders", "orders_note_idx")] == 0
    assert values(samples, "dbpulse_pg_table_live_rows")[("shop", snap.datname, "public", "orders")] == 500
    assert one(samples, "dbpulse_pg_up") == 1


async def test_idle_in_transaction_sessions(poller: PostgresPoller, fresh_db: str) -> None:
    sessions = [psycopg.connect(fresh_db, application_name="billing-worker") for _ in range(3)]
    try:
        for s in sessions:
            s.execute("SELECT 1")  # opens a transaction and leaves it idle
        await asyncio.sleep(1.1)
        snap = await poller.poll()
        samples = snap.samples()
        conns = values(samples, "dbpulse_pg_connections")
        assert conns[("shop", snap.datname, "idle in transaction", "billing-worker")] == 3
        assert one(samples, "dbpulse_pg_idle_in_transaction_oldest_seconds") >= 1.0
        assert one(samples, "dbpulse_pg_oldest_transaction_seconds") >= 1.0
    finally:
        for s in sessions:
            s.close()


async def test_lock_waiters_are_counted(poller: PostgresPoller, fresh_db: str, db: psycopg.Connection) -> None:
    db.execute("CREATE TABLE t (id int)")
    holder = psycopg.connect(fresh_db)
    holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
    waiter = await psycopg.AsyncConnection.connect(fresh_db, autocommit=True)
    blocked = asyncio.create_task(waiter.execute("SELECT * FROM t"))
    try:
        await asyncio.sleep(0.5)
        snap = await poller.poll()
        assert one(snap.samples(), "dbpulse_pg_lock_waiting_sessions") == 1
    finally:
        holder.rollback()
        await blocked
        await waiter.close()
        holder.close()


async def test_statements_are_bounded_to_top_k_plus_other(poller: PostgresPoller, db: psycopg.Connection) -> None:
    db.execute("CREATE TABLE kv (k int, v int)")
    for i in range(12):
        db.execute(f"SELECT count(*) FROM kv WHERE k = {i} AND v > " + " + ".join(["1"] * (i + 1)))
    snap = await poller.poll()
    calls = values(snap.samples(), "dbpulse_pg_statement_calls_total")
    assert len(calls) == 5 + 1
    assert ("shop", snap.datname, OTHER) in calls
    assert one(snap.samples(), "dbpulse_pg_statements") >= 12
    features = values(snap.samples(), "dbpulse_pg_feature_enabled")
    assert features[("shop", "pg_stat_statements")] == 1
    # The query text is never a label unless asked for.
    assert not values(snap.samples(), "dbpulse_pg_statement_info")


async def test_statement_text_info_is_opt_in(fresh_db: str, db: psycopg.Connection) -> None:
    db.execute("SELECT 42 AS answer")
    snap = await poll_once(fresh_db, statement_text_info=True, statement_text_length=20)
    texts = [s.labels[3] for s in snap.samples() if s.name == "dbpulse_pg_statement_info"]
    assert "SELECT $1 AS answer" in texts
    assert all(len(t) <= 20 for t in texts)


async def test_tables_and_indexes_bounded(poller: PostgresPoller, db: psycopg.Connection) -> None:
    for i in range(6):
        db.execute(f"CREATE TABLE t{i} (id int PRIMARY KEY, v int)")
        db.execute(f"CREATE INDEX t{i}_v ON t{i} (v)")
        db.execute(f"INSERT INTO t{i} SELECT g, g FROM generate_series(1, {100 * (i + 1)}) g")
    snap = await poller.poll()
    samples = snap.samples()
    tables = values(samples, "dbpulse_pg_table_size_bytes")
    assert len(tables) == 3 + 1
    total = sum(tables.values())
    assert one(samples, "dbpulse_pg_tables") == 6
    assert one(samples, "dbpulse_pg_indexes") == 12
    assert len(values(samples, "dbpulse_pg_index_size_bytes")) == 4 + 1
    # Nothing is lost: the aggregate holds the rest.
    exact = db.execute("SELECT sum(pg_total_relation_size(relid)) FROM pg_stat_user_tables").fetchone()
    assert exact is not None and total == float(exact[0])


async def test_cache_hit_ratio_comes_from_deltas(poller: PostgresPoller, db: psycopg.Connection) -> None:
    first = await poller.poll()
    assert not values(first.samples(), "dbpulse_pg_database_cache_hit_ratio")  # no delta yet
    db.execute("CREATE TABLE h AS SELECT g AS id FROM generate_series(1, 20000) g")
    for _ in range(20):
        db.execute("SELECT sum(id) FROM h").fetchone()
    flush_stats(db)
    second = await poller.poll()
    ratio = values(second.samples(), "dbpulse_pg_database_cache_hit_ratio")[("shop", second.datname)]
    assert 0.9 < ratio <= 1.0  # the table is hot in shared buffers; lifetime totals would say less
    assert isinstance(second, PostgresSnapshot)


async def test_without_pg_stat_statements_the_rest_works(
    pg_server: LocalPostgres, fresh_db: str, db: psycopg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    db.execute("DROP EXTENSION pg_stat_statements")
    snap = await poll_once(fresh_db, polls=2)
    samples = snap.samples()
    assert values(samples, "dbpulse_pg_feature_enabled")[("shop", "pg_stat_statements")] == 0
    assert not values(samples, "dbpulse_pg_statement_calls_total")
    assert one(samples, "dbpulse_pg_up") == 1
    assert one(samples, "dbpulse_pg_max_connections") == 100
    hints = [r.getMessage() for r in caplog.records if "pg_stat_statements" in r.getMessage()]
    assert hints == ["shop: pg_stat_statements statistics limited (not installed): "
                     "run CREATE EXTENSION pg_stat_statements in the database"]


async def test_a_role_denied_pg_stat_statements_is_told_what_to_grant_not_counted_as_failing(
    pg_server: LocalPostgres, fresh_db: str, db: psycopg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    """A permission error on pg_stat_statements is a state of the role (one hint), not a failing query."""
    db.execute("REVOKE SELECT ON pg_stat_statements FROM PUBLIC")
    db.execute("DROP ROLE IF EXISTS denied; CREATE ROLE denied LOGIN PASSWORD 'denied-pw'")
    snap = await poll_once(pg_server.dsn(db.info.dbname, "denied", "denied-pw"), polls=2, name="denied")
    assert snap.features["pg_stat_statements"] is False and snap.statement_count is None
    assert snap.query_errors["statements"] == 0
    hints = [r.getMessage() for r in caplog.records if "pg_stat_statements" in r.getMessage()]
    assert hints == ["denied: pg_stat_statements statistics limited (no privilege): "
                     "GRANT pg_read_all_stats (or pg_monitor) to the dbpulse role"]


async def test_low_privilege_role(fresh_db: str, db: psycopg.Connection, pg_server: LocalPostgres) -> None:
    db.execute("DROP ROLE IF EXISTS plain; CREATE ROLE plain LOGIN PASSWORD 'plain-pw'")
    dbname = db.info.dbname
    snap = await poll_once(pg_server.dsn(dbname, "plain", "plain-pw"), name="low")
    features = values(snap.samples(), "dbpulse_pg_feature_enabled")
    assert features[("low", "read_all_stats")] == 0
    assert features[("low", "pg_stat_statements")] == 0
    assert one(snap.samples(), "dbpulse_pg_up") == 1
    db.execute("GRANT pg_monitor TO plain")
    snap = await poll_once(pg_server.dsn(dbname, "plain", "plain-pw"), name="mon")
    features = values(snap.samples(), "dbpulse_pg_feature_enabled")
    assert features[("mon", "read_all_stats")] == 1
    assert features[("mon", "pg_stat_statements")] == 1


async def test_session_is_read_only_and_named(poller: PostgresPoller, db: psycopg.Connection) -> None:
    await poller.poll()
    conn = await poller._checkout()  # the connection the poll kept
    cur = await conn.execute("SHOW default_transaction_read_only")
    assert (await cur.fetchone()) == {"default_transaction_read_only": "on"}
    cur = await conn.execute("SHOW statement_timeout")
    assert (await cur.fetchone()) == {"statement_timeout": "3600ms"}
    row = db.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbpulse'").fetchone()
    assert row == (1,)
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        await conn.execute("CREATE TABLE nope (id int)")
    await poller._kept.give_back(conn)


async def test_reconnects_after_the_connection_is_killed(poller: PostgresPoller, db: psycopg.Connection) -> None:
    await poller.poll()
    db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'dbpulse'")
    with pytest.raises(psycopg.OperationalError):
        await poller.poll()
    snap = await poller.poll()
    assert one(snap.samples(), "dbpulse_pg_up") == 1


async def test_sizes_are_read_on_their_own_slower_cadence(fresh_db: str, db: psycopg.Connection) -> None:
    db.execute("CREATE TABLE grow (id int)")
    slow = pg_poller(fresh_db, size_interval=3600)
    every = pg_poller(fresh_db, size_interval=0)
    try:
        first = values((await slow.poll()).samples(), "dbpulse_pg_table_size_bytes")
        db.execute("INSERT INTO grow SELECT g FROM generate_series(1, 20000) g")
        cached = values((await slow.poll()).samples(), "dbpulse_pg_table_size_bytes")
        fresh = values((await every.poll()).samples(), "dbpulse_pg_table_size_bytes")
    finally:
        await slow.close()
        await every.close()
    key = ("shop", db.info.dbname, "public", "grow")
    assert cached[key] == first[key] == 0
    assert fresh[key] > 500_000


async def test_nested_statements_do_not_add_calls(fresh_db: str, db: psycopg.Connection) -> None:
    """With track = all, a statement planned inside EXPLAIN EXECUTE (the advisor's what-if) is
    recorded as nested; the exported calls stay the application's own."""
    db.execute("CREATE TABLE pay (id int PRIMARY KEY, ext text)")
    for i in range(3):
        db.execute("SELECT * FROM pay WHERE ext = %s", (f"x{i}",)).fetchall()
    for _ in range(4):
        db.execute("PREPARE w AS SELECT * FROM pay WHERE ext = $1")
        db.execute("EXPLAIN (FORMAT JSON) EXECUTE w(NULL)")
        db.execute("DEALLOCATE w")
    snap = await poll_once(fresh_db, statement_text_info=True, statement_text_length=200)
    (stmt,) = [s for s in snap.statements if "FROM pay WHERE ext" in s.query]
    assert stmt.calls == 3
    assert stmt.query == "SELECT * FROM pay WHERE ext = $1"
