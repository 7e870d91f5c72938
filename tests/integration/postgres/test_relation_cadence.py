"""Per-table statistics at a bounded cost (relations.py): every relation on the size cadence, the top-K every poll."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from collectors.base.samples import OTHER, Sample
from tests.support import pg_poller


def values(samples: list[Sample], name: str) -> dict[tuple[str, ...], float]:
    return {s.labels: s.value for s in samples if s.name == name}


def flush_stats(conn: psycopg.Connection) -> None:
    conn.execute("SELECT pg_stat_force_next_flush()")


@pytest.fixture
def db(fresh_db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("SET enable_indexscan = off; SET enable_bitmapscan = off")
        for i in range(5):  # t4 the largest
            conn.execute(f"CREATE TABLE t{i} (id int PRIMARY KEY, v int)")
            conn.execute(f"CREATE INDEX t{i}_v ON t{i} (v)")
            conn.execute(f"INSERT INTO t{i} SELECT g, g FROM generate_series(1, {2000 * (i + 1)}) g")
        seq_scans(conn, "t2", 20)  # the most scanned: the top-2 are t4 (by size) and t2 (by scans)
        yield conn


def seq_scans(conn: psycopg.Connection, table: str, times: int) -> None:
    for _ in range(times):
        conn.execute(f"SELECT count(*) FROM {table} WHERE v = 3").fetchone()
    flush_stats(conn)


async def test_between_full_reads_the_top_k_stay_fresh_and_the_rest_as_last_read(
        fresh_db: str, db: psycopg.Connection) -> None:
    poller = pg_poller(fresh_db, size_interval=3600, top_tables=2, top_indexes=2)
    try:
        first = (await poller.poll()).samples()
        seq_scans(db, "t4", 5)  # a top-K table
        seq_scans(db, "t0", 7)  # one of the rest
        db.execute("CREATE TABLE t5 (id int PRIMARY KEY); CREATE TABLE t6 (id int PRIMARY KEY)")
        db.execute("DROP TABLE t2")  # a top-K table gone
        second = await poller.poll()
    finally:
        await poller.close()
    dbname = db.info.dbname
    seq0, seq1 = (values(s, "dbpulse_pg_table_seq_scans_total") for s in (first, second.samples()))
    other = ("shop", dbname, OTHER, OTHER)
    assert set(seq0) == {("shop", dbname, "public", "t4"), ("shop", dbname, "public", "t2"), other}
    # the top-K's counters are read every poll
    t4 = ("shop", dbname, "public", "t4")
    assert seq1[t4] == seq0[t4] + 5
    # the rest, the counts and the membership are as of the full read: t0's scans, t5 and t6 wait for it; t2 is gone
    assert seq1[other] == seq0[other]
    assert set(seq1) == {t4, other}
    assert values(second.samples(), "dbpulse_pg_tables")[("shop", dbname)] == 5
    assert [t.table for t in second.tables] == ["t4"]
    assert len(second.indexes) == 2  # the index read is restricted to its top-K too
    assert second.query_errors["tables_top"] == second.query_errors["indexes_top"] == 0


async def test_the_full_read_on_the_size_cadence_sees_new_tables_and_picks_the_top_k_again(
        fresh_db: str, db: psycopg.Connection) -> None:
    poller = pg_poller(fresh_db, size_interval=0, top_tables=2)
    try:
        await poller.poll()
        db.execute("CREATE TABLE big (id int PRIMARY KEY)")
        db.execute("INSERT INTO big SELECT generate_series(1, 100000)")
        seq_scans(db, "t0", 3)
        snap = await poller.poll()
    finally:
        await poller.close()
    assert snap.table_count == 6
    assert [t.table for t in snap.tables][:1] == ["big"]  # the largest now
    assert snap.tables_other is not None and snap.tables_other.seq_scans >= 3
