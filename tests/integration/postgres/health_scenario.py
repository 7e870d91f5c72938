"""A primary and a streaming standby of any supported major in which every health area has something
to read: dead rows past autovacuum's threshold, a bloated table, sequences near their end, an
abandoned slot, an archiver that failed once, paused replay, a blocking chain, a slow VACUUM.

Used by the version tests (every major) and the catalogue test (which must see every metric).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

from harness.servers import LocalPostgres
from tests.support import eventually

HEALTH_SETTINGS = {
    "wal_level": "logical",
    "archive_mode": "on",
    "pg_stat_statements.track_planning": "on",
    "autovacuum_naptime": "3600",  # tables stay past their threshold while the test looks
    "max_wal_senders": "10",
    "max_slot_wal_keep_size": "'1GB'",  # so that slots report safe_wal_size
}
BLOATED_ROWS = 60_000


def wait_for(what: str, check: Callable[[], object], timeout: float = 60.0) -> Any:
    """``tests.support.eventually``, polled every 0.1 s (the scenario's waits are short)."""
    return eventually(check, timeout, what, every=0.1)


def one(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(sql.encode(), params).fetchone()
    return row[0] if row else None


def primary_server(version: str | None) -> LocalPostgres:
    server = LocalPostgres(version=version, settings=dict(HEALTH_SETTINGS))
    # Fails once, then archives: the archiver's failure and success counters and times are all set.
    flag = server.workdir / "archive-failed-once"
    server.settings["archive_command"] = f"'test -e {flag} || {{ touch {flag}; exit 1; }}'"
    return server


def build(conn: psycopg.Connection[Any], version_num: int) -> None:
    """The static part, in database postgres."""
    cap = ", autovacuum_vacuum_max_threshold = 15" if version_num >= 180000 else ""
    conn.execute(f"""
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE bloated (id int PRIMARY KEY, n int, payload text, note text) WITH (autovacuum_enabled = off);
INSERT INTO bloated SELECT g, g, md5(g::text), CASE WHEN g % 2 = 0 THEN md5((g * 7)::text) END
FROM generate_series(1, {BLOATED_ROWS}) g;
CREATE INDEX bloated_n ON bloated (n);
CREATE TABLE clean (id int PRIMARY KEY, n int, payload text, note text) WITH (autovacuum_enabled = off);
INSERT INTO clean SELECT * FROM bloated;
CREATE INDEX clean_n ON clean (n);
UPDATE bloated SET n = n + 1;
UPDATE bloated SET n = n + 1;
ANALYZE bloated;
ANALYZE clean;
CREATE TABLE due (id int PRIMARY KEY)
    WITH (autovacuum_vacuum_threshold = 10, autovacuum_vacuum_scale_factor = 0.01{cap});
INSERT INTO due SELECT generate_series(1, 1000);
ANALYZE due;
DELETE FROM due WHERE id <= 100;
CREATE SEQUENCE wide_seq AS bigint;
CREATE TABLE narrow (id int NOT NULL DEFAULT nextval('wide_seq'));
ALTER SEQUENCE wide_seq OWNED BY narrow.id;
SELECT setval('wide_seq', 2000000000);
CREATE TABLE tiny (id smallint GENERATED ALWAYS AS IDENTITY, v int);
INSERT INTO tiny (v) SELECT generate_series(1, 100);
CREATE TABLE slow AS SELECT g FROM generate_series(1, 100000) g;
CREATE TABLE locked (id int PRIMARY KEY, v int);
INSERT INTO locked VALUES (1, 0);
CREATE TABLE orders (id int PRIMARY KEY, customer int, note text);
INSERT INTO orders SELECT g, g % 500, 'n' || g FROM generate_series(1, 20000) g;
ANALYZE orders;
""".encode())
    # Each on its own: a slot cannot be created in a transaction that has written.
    conn.execute("SELECT pg_create_logical_replication_slot('idle_logical', 'test_decoding')")
    conn.execute("SELECT pg_create_physical_replication_slot('abandoned', true)")
    if one(conn, "SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg'"):
        conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
    conn.execute("SELECT pg_stat_statements_reset()")
    for i in range(300):  # the advisor's workload: a filter no index serves, often enough to be worth one
        conn.execute("SELECT id, note FROM orders WHERE customer = %s", (i,)).fetchall()
    conn.execute("SET work_mem = '64kB'")
    conn.execute("SELECT * FROM bloated ORDER BY payload").fetchall()  # spills to temporary files
    conn.execute("RESET work_mem")
    conn.execute("INSERT INTO narrow DEFAULT VALUES")  # writes WAL
    # Dead rows are counted by the statistics system: published at once from 15, within 0.5 s before.
    if version_num >= 150000:
        conn.execute("SELECT pg_stat_force_next_flush()")
    wait_for("due's dead rows in the statistics",
             lambda: one(conn, "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'due'") == 100)
    conn.execute("SELECT pg_switch_wal()")
    wait_for("a failed and a successful archiving", lambda: one(
        conn, "SELECT failed_count >= 1 AND archived_count >= 1 FROM pg_stat_archiver"))


def real_bloat(conn: psycopg.Connection[Any]) -> dict[str, float]:
    """The truth the estimates are held to: 1 - size of the clean copy / size of the bloated one."""
    def ratio(bloated: str, clean: str) -> float:
        return 1 - float(one(conn, f"SELECT pg_relation_size('{clean}')::float8 / pg_relation_size('{bloated}')"))

    return {"bloated": ratio("bloated", "clean"), "bloated_n": ratio("bloated_n", "clean_n"),
            "bloated_pkey": ratio("bloated_pkey", "clean_pkey")}


@dataclass
class Pair:
    primary: LocalPostgres
    standby: LocalPostgres
    version_num: int
    truth: dict[str, float] = field(default_factory=dict)

    def connect(self, server: LocalPostgres, application_name: str = "scenario",
                autocommit: bool = True) -> psycopg.Connection[Any]:
        return psycopg.connect(server.dsn(), autocommit=autocommit, application_name=application_name)


@contextlib.contextmanager
def pair(version: str | None) -> Iterator[Pair]:
    """A started primary with the static scenario, and its streaming standby."""
    primary = primary_server(version)
    primary.start()
    standby: LocalPostgres | None = None
    try:
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            version_num = int(one(conn, "SHOW server_version_num"))
            build(conn, version_num)
            truth = real_bloat(conn)
        standby = primary.standby(settings={"archive_mode": "off", "hot_standby_feedback": "off"})
        standby.start()
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            # A transaction for the standby to replay: its replay lag is dated by the last one replayed.
            # Waiting for the insert position: with synchronous_commit off the commit may be unwritten.
            conn.execute("INSERT INTO narrow DEFAULT VALUES")
            target = one(conn, "SELECT pg_current_wal_insert_lsn()")
            wait_for("the standby to stream and replay", lambda: one(
                conn, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND replay_lsn >= %s",
                (target,)))
        yield Pair(primary, standby, version_num, truth)
    finally:
        if standby is not None:
            standby.cleanup()
        primary.cleanup()


@contextlib.contextmanager
def live_trouble(p: Pair) -> Iterator[None]:
    """While inside: replay paused on the standby with WAL waiting, a blocking chain (holder idle in
    transaction, two waiters queued behind it), a manual VACUUM crawling under a cost delay."""
    threads: list[threading.Thread] = []
    with p.connect(p.standby) as standby:
        standby.execute("SELECT pg_wal_replay_pause()")
        with p.connect(p.primary) as conn:
            conn.execute("INSERT INTO orders SELECT g, g % 500, 'late' FROM generate_series(20001, 25000) g")
            wait_for("replay to fall behind", lambda: one(
                conn, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) > 0 AND flush_lsn > replay_lsn"
                      " FROM pg_stat_replication"))
        holder = p.connect(p.primary, "holder", autocommit=False)
        holder.execute("UPDATE locked SET v = 1 WHERE id = 1")  # stays idle in transaction
        vacuumer = p.connect(p.primary, "vacuumer")
        vacuumer_pid = one(vacuumer, "SELECT pg_backend_pid()")

        def run(conn: psycopg.Connection[Any], *statements: str) -> None:
            with contextlib.suppress(psycopg.Error):  # cancelled or released at the end
                for sql in statements:
                    conn.execute(sql.encode())

        waiters = [p.connect(p.primary, f"waiter{i}") for i in (1, 2)]
        for i, conn in enumerate(waiters):
            threads.append(threading.Thread(target=run, args=(conn, "UPDATE locked SET v = 2 WHERE id = 1")))
            threads[-1].start()
            wait_for(f"waiter{i + 1} to wait", lambda n=i + 1: one(
                holder, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") == n)
        threads.append(threading.Thread(target=run, args=(
            vacuumer, "SET vacuum_cost_delay = 100", "SET vacuum_cost_limit = 1", "VACUUM slow")))
        threads[-1].start()
        with p.connect(p.primary) as conn:
            wait_for("the VACUUM to start", lambda: one(
                conn, "SELECT count(*) FROM pg_stat_progress_vacuum WHERE relid = 'slow'::regclass"))
            time.sleep(1.1)  # the vacuum's statement has been running for a second
        try:
            yield
        finally:
            holder.rollback()
            holder.close()
            with p.connect(p.primary) as conn:
                conn.execute("SELECT pg_cancel_backend(%s)", (vacuumer_pid,))
            for thread in threads:
                thread.join(30)
            for conn in (*waiters, vacuumer):
                conn.close()
            standby.execute("SELECT pg_wal_replay_resume()")
