"""A finding names its table by oid and (schema, name), so a schema whose name holds a dot is found as itself:
``"sales.eu".orders`` is not ``sales."eu.orders"``, though both read ``sales.eu.orders``; and the advice, the plan
actions and the index history follow a renamed table by its oid (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import psycopg

from collectors.base.poller import Poller, Snapshot
from collectors.postgres.snapshot import PostgresSnapshot
from monitor.advisor.advisor import Advisor
from monitor.advisor.findings import AdviceReport
from monitor.advisor.poller import ADVISOR, AdviceSnapshot
from monitor.advisor.settings import Thresholds
from monitor.advisor.store import StateStore
from monitor.core.history import History
from monitor.core.scheduler import SourceState
from monitor.web.detail import TablePage, find_table, table_findings, table_page
from tests.support import pg_poller


def test_a_table_in_a_schema_whose_name_holds_a_dot(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute('CREATE SCHEMA "sales.eu"')
        conn.execute('CREATE TABLE "sales.eu".orders (id int PRIMARY KEY, customer int)')
        conn.execute('INSERT INTO "sales.eu".orders SELECT g, g % 100 FROM generate_series(1, 5000) g')
        conn.execute('CREATE INDEX orders_customer_a ON "sales.eu".orders (customer)')
        conn.execute('CREATE INDEX orders_customer_b ON "sales.eu".orders (customer)')  # a duplicate: a finding
        conn.execute("ANALYZE")
        relid = conn.execute("""SELECT '"sales.eu".orders'::regclass::oid::int""").fetchone()[0]  # type: ignore[index]
    report = Advisor(fresh_db, "dots", Thresholds(min_table_rows=100, unused_min_stats_age_seconds=0)).run()
    (dup,) = [f for f in report.findings if f.kind == "duplicate_index"]
    assert dup.table == "sales.eu.orders"  # the display text, as before
    assert dup.table_id is not None and (dup.table_id.relid, dup.table_id.schema, dup.table_id.name) == (
        relid, "sales.eu", "orders")
    as_json = json.loads(json.dumps(dup.to_json_dict()))
    assert {k: as_json[k] for k in ("table", "relid", "schema", "relname")} == {
        "table": "sales.eu.orders", "relid": relid, "schema": "sales.eu", "relname": "orders"}

    # The table page's lookup and its findings: by the pair the finding holds, never by splitting at a dot.
    assert find_table("sales.eu.orders", None, History(2, []), report) == ("sales.eu", "orders")
    assert dup in table_findings(report, relid)
    assert table_findings(report, relid + 1) == []


class _Named(Poller):
    """Only a source and a target: the table page finds its PostgreSQL and advisor states by them."""

    def __init__(self, source: str) -> None:
        self.source, self.target, self.interval, self.timeout = source, "shop", 10.0, 5.0

    async def poll(self) -> Snapshot:  # pragma: no cover - never polled here
        raise NotImplementedError


def _page(snap: PostgresSnapshot, report: AdviceReport, name: str) -> TablePage:
    states = [SourceState(_Named("postgres"), History(2, []), snapshot=snap, polls=1, up=True, last_success=1.0),
              SourceState(_Named(ADVISOR), History(2, []), snapshot=AdviceSnapshot(report), polls=1, up=True,
                          last_success=1.0)]
    page = table_page(states, "shop", name, 2.0)
    assert page is not None, name
    return page


def test_a_renamed_table_keeps_its_advice_and_index_history_and_a_new_table_of_its_old_name_gets_none(
        fresh_db: str, tmp_path: Path) -> None:
    """The advice and the index history name a table by the name it had then; matched by its oid, they follow
    ``ALTER TABLE ... RENAME``, and the new table that takes the old name inherits none of them (matched by the
    text, the new table got them all and the renamed one none)."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA shop")
        conn.execute("CREATE TABLE shop.orders (id int PRIMARY KEY, customer int)")
        conn.execute("INSERT INTO shop.orders SELECT g, g % 100 FROM generate_series(1, 5000) g")
        conn.execute("CREATE INDEX orders_customer_a ON shop.orders (customer)")
        conn.execute("ANALYZE")
        relid = conn.execute("SELECT 'shop.orders'::regclass::oid::int").fetchone()[0]  # type: ignore[index]
    advisor = Advisor(fresh_db, "shop", Thresholds(min_table_rows=100, unused_min_stats_age_seconds=0),
                      store=StateStore(tmp_path))
    advisor.run()  # the indexes as they are: what the next run compares with
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE INDEX orders_customer_b ON shop.orders (customer)")  # seen created; a duplicate
    before = advisor.run()
    (event,) = before.index_history
    assert (event.table, event.index, event.table_oid) == ("shop.orders", "shop.orders_customer_b", relid)
    assert [f.table_id.relid for f in before.findings if f.kind == "duplicate_index" and f.table_id] == [relid]

    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE shop.orders RENAME TO orders_2025")
        conn.execute("CREATE TABLE shop.orders (id int PRIMARY KEY, customer int)")
        new_relid = conn.execute("SELECT 'shop.orders'::regclass::oid::int").fetchone()[0]  # type: ignore[index]
    snap = asyncio.run(_poll(fresh_db))
    after = advisor.run()
    assert [e.table for e in after.index_history] == ["shop.orders"]  # the name it was seen with, for display

    # The report of before the rename (the page's until the next run), and the one after it.
    for report in (before, after):
        renamed, new = _page(snap, report, "shop.orders_2025"), _page(snap, report, "shop.orders")
        assert (renamed.relid, new.relid) == (relid, new_relid)
        assert [e.index for e, _ in renamed.index_history] == ["shop.orders_customer_b"]
        assert "duplicate_index" in {f.kind for f in renamed.advice.findings}
        assert new.index_history == [] and new.advice.findings == [] and new.advice.actions == []
        assert renamed.advice.actions  # the duplicate's drop
        assert all(a.table_id is not None and a.table_id.relid == relid for a in renamed.advice.actions)


async def _poll(dsn: str) -> PostgresSnapshot:
    poller = pg_poller(dsn)
    try:
        snap = await poller.poll()
    finally:
        await poller.close()
    assert isinstance(snap, PostgresSnapshot)
    return snap
