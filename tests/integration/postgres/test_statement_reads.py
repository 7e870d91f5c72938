"""The collector's pg_stat_statements reads (statements.CollectorStatements): counters every poll, texts and
whose statement each entry is only when needed, and the same statements as one grouped read of every text."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from collectors.postgres.access import COLLECTOR_TAG
from tests.support import pg_poller


@pytest.fixture
def db(fresh_db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, v int)")
        conn.execute("INSERT INTO items SELECT g, g FROM generate_series(1, 100) g")
        yield conn


def run(conn: psycopg.Connection, sql: str, times: int) -> None:
    for _ in range(times):
        conn.execute(sql.encode()).fetchall()


async def test_a_statement_entering_the_top_k_is_exported_with_its_text(fresh_db: str,
                                                                        db: psycopg.Connection) -> None:
    poller = pg_poller(fresh_db, top_statements=1, size_interval=3600)
    try:
        run(db, "SELECT pg_sleep(0.2), 'first' AS heavy", 1)
        run(db, "SELECT v FROM items WHERE id = 1", 1)
        run(db, "SELECT v FROM items WHERE id = 1 AND pg_sleep(0.1) IS NOT NULL", 1)  # seen, not in the top-K
        first = await poller.poll()
        run(db, "SELECT v FROM items WHERE id = 1", 1)
        unchanged = await poller.poll()
        run(db, "SELECT v FROM items WHERE id = 1 AND pg_sleep(0.1) IS NOT NULL", 3)  # now the heaviest
        second = await poller.poll()
        third = await poller.poll()
    finally:
        await poller.close()
    assert [s.query for s in first.statements] == ["SELECT pg_sleep($1), $2 AS heavy"]
    assert unchanged.statements == first.statements
    assert [s.query for s in second.statements] == [
        "SELECT v FROM items WHERE id = $1 AND pg_sleep($2) IS NOT NULL"]
    assert second.statements[0].calls == 4  # its text read when it entered the top-K
    assert third.statements == second.statements
    # the rest is summed without texts: the items read ran twice, the pg_sleep(0.2) once
    assert second.statements_other is not None and second.statements_other.calls >= 3
    assert second.statements_other.exec_seconds >= 0.2


async def test_counters_read_every_poll_match_the_grouped_read_of_every_text(fresh_db: str,
                                                                             db: psycopg.Connection) -> None:
    """The application's statements summed per queryid in dbpulse are the ones the server groups; dbpulse's own
    entries (the poller's, tagged) never among them."""
    poller = pg_poller(fresh_db, top_statements=100, size_interval=0, statement_text_length=1000)
    try:
        for i in range(20):
            run(db, f"SELECT {', '.join(['v'] * (i + 1))} FROM items WHERE id = 2", i % 3 + 1)  # 20 queryids
        await poller.poll()
        run(db, "SELECT count(*) FROM items", 2)
        snap = await poller.poll()
    finally:
        await poller.close()
    truth = db.execute(f"""
        SELECT queryid, sum(calls)::bigint FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND toplevel
          AND strpos(query, '{COLLECTOR_TAG}') = 0
        GROUP BY queryid""").fetchall()
    exported = {s.queryid: s.calls for s in snap.statements}
    expected = {int(q): int(c) for q, c in truth}
    # the poll's own statements and those run after it (this one) are not in the snapshot
    assert exported.items() <= expected.items()
    assert all(not s.query.startswith(f"/* {COLLECTOR_TAG}") and COLLECTOR_TAG not in s.query
               for s in snap.statements)
    assert sum(1 for s in snap.statements if s.query.endswith("v FROM items WHERE id = $1")) == 20
    assert next(s.calls for s in snap.statements if s.query == "SELECT count(*) FROM items") == 2
    own = {o.component: o for o in snap.own_statements}
    assert own["collector"].statements > 5 and own["collector"].calls > 5
