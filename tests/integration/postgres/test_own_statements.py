"""dbpulse's own statements never count as the application's.

The collector's statistics and health reads, the advisor's catalog reads, what-if plans, PREPAREs and
HypoPG calls all land in ``pg_stat_statements``. dbpulse recognises them by the tag each one carries and
keeps them out of the top statements (metrics and UI) and out of the advisor's workload, counting them in
``dbpulse_pg_own_statement*`` instead.

The ground truth does not come from the tag: the application and dbpulse log in as two roles, and
``pg_stat_statements`` records which role ran each statement (``userid``). The statements only dbpulse's
role ran are dbpulse's own, and every one of them must carry a tag. On PostgreSQL 15 (HypoPG) the real
service runs (polls and advisor runs); on 13 (no ``toplevel``: the advisor's nested PREPAREs are visible)
and 18 (no leading comments kept) the poller and the advisor run in process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from collectors.postgres.access import own_component
from collectors.postgres.snapshot import PostgresSnapshot
from collectors.postgres.statements import read_statements
from harness.servers import LocalPostgres
from monitor.advisor.advisor import Advisor
from monitor.advisor.findings import AdviceReport
from monitor.advisor.settings import Thresholds
from tests.support import DbpulseProcess, pg_poller

APP, WATCHER = "shop_app", "dbpulse_watch"
PASSWORD = "own-statements-pw"
SETTINGS = Thresholds(min_table_rows=100, unused_min_stats_age_seconds=0, statement_timeout_seconds=20)

SCHEMA = """
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id),
                     status text NOT NULL, total numeric(10, 2) NOT NULL);
INSERT INTO customers SELECT g, 'c' || g, 'c' || g || '@example.com' FROM generate_series(1, 5000) g;
INSERT INTO orders SELECT g, 1 + g % 5000, (ARRAY['new', 'paid', 'void'])[1 + g % 3], g % 500
FROM generate_series(1, 20000) g;
ANALYZE;
"""


def prepare(admin: psycopg.Connection[Any], dbname: str) -> None:
    """The schema, the application's role and dbpulse's own (pg_monitor, SELECT for the what-if plans)."""
    for role, extra in ((APP, ""), (WATCHER, " IN ROLE pg_monitor")):
        with contextlib.suppress(psycopg.errors.DuplicateObject):
            admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'{extra}")  # type: ignore[arg-type]
    admin.execute(SCHEMA)  # type: ignore[arg-type]
    for role in (APP, WATCHER):
        admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")  # type: ignore[arg-type]
    admin.execute(f"GRANT UPDATE ON orders TO {APP}")  # type: ignore[arg-type]
    admin.execute(f"GRANT CONNECT ON DATABASE {dbname} TO {APP}, {WATCHER}")  # type: ignore[arg-type]
    admin.execute("SELECT pg_stat_statements_reset()")


def workload(dsn: str) -> None:
    """What the application does: parameters and literals, IN lists of several lengths, a join, an update."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(1, 41):
            conn.execute("SELECT name, email FROM customers WHERE id = %s", (i,)).fetchall()
            conn.execute("SELECT id, total FROM orders WHERE customer_id = %s", (i,)).fetchall()
            ids = list(range(i, i + 1 + i % 4))
            conn.execute(f"SELECT id FROM orders WHERE id IN ({', '.join(['%s'] * len(ids))})", ids).fetchall()
        for status in ("new", "paid", "void"):
            conn.execute(f"SELECT count(*) FROM orders WHERE status = '{status}'").fetchall()  # type: ignore[arg-type]
        conn.execute("SELECT c.name, sum(o.total) FROM orders o JOIN customers c ON c.id = o.customer_id "
                     "WHERE c.email = %s GROUP BY c.name", ("c7@example.com",)).fetchall()
        conn.execute("UPDATE orders SET total = total + 1 WHERE id = %s", (3,))


@dataclass
class Truth:
    """pg_stat_statements of the database, by role: who ran what (top-level statements where known)."""

    app_calls: dict[int, int]  # queryid -> calls, the application's role
    others: set[int]  # queryids any role but dbpulse's ran (the application, the test's superuser)
    own: set[int]  # queryids only dbpulse's role ran
    own_texts: list[str]  # the texts of dbpulse's role's entries

    @property
    def app(self) -> set[int]:
        return set(self.app_calls)


def truth(admin_dsn: str) -> Truth:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        toplevel = "AND s.toplevel" if conn.info.server_version >= 140000 else ""
        sql = f"""
SELECT s.queryid, r.rolname, s.calls, s.query FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) {toplevel}"""
        conn.execute(sql).fetchall()  # type: ignore[arg-type]  # so that this very query is among the rows
        rows = conn.execute(sql).fetchall()  # type: ignore[arg-type]
    app: dict[int, int] = {}
    others: set[int] = set()
    watcher: set[int] = set()
    texts = []
    for queryid, role, calls, query in rows:
        if role == WATCHER:
            watcher.add(queryid)
            texts.append(query)
            continue
        others.add(queryid)
        if role == APP:
            app[queryid] = app.get(queryid, 0) + calls
    return Truth(app, others, watcher - others, texts)


def check_tagged(t: Truth) -> None:
    """dbpulse sent statements, and every one of them carries a tag: that is how they are recognised."""
    assert t.own and t.app
    untagged = [text for text in t.own_texts if own_component(text) is None]
    assert untagged == []
    assert {own_component(text) for text in t.own_texts} == {"collector", "advisor"}


def check_snapshot(snap: PostgresSnapshot, t: Truth) -> None:
    exported = {s.queryid: s for s in snap.statements}
    assert snap.statements_other is None  # the test's top-K holds every statement
    assert not exported.keys() & t.own
    assert t.app <= exported.keys()
    assert {q: exported[q].calls for q in t.app} == t.app_calls  # no calls of dbpulse's added to the app's
    assert not [s.query for s in snap.statements if own_component(s.query) or "dbpulse_" in s.query]
    own = {o.component: o for o in snap.own_statements}
    assert own["collector"].statements > 0 and own["advisor"].statements > 0
    assert own["collector"].calls > 0 and own["collector"].exec_seconds > 0


def check_report(report: AdviceReport, t: Truth) -> None:
    mentioned = set(report.statement_plans) | {q for f in report.findings for q in f.queryids or []} | {
        s.queryid for a in report.plan.actions for n in a.creates for s in n.statements} | {
        sk.queryid for sk in report.skipped if sk.queryid is not None}
    assert report.statement_plans  # the workload was planned: the check below is not vacuous
    assert mentioned <= t.others and not mentioned & t.own


def check_workload(watcher_dsn: str, t: Truth) -> None:
    """The advisor's reader returns every statement but dbpulse's own."""
    with psycopg.connect(watcher_dsn, autocommit=True) as conn:
        stats = read_statements(conn, conn.info.server_version, None)
    assert {s.queryid for s in stats} == t.others


# --- PostgreSQL 15 (HypoPG): the real service ---------------------------------------------------------------
def test_the_service_keeps_its_own_statements_out(pg_server: LocalPostgres, fresh_db: str, tmp_path: Path) -> None:
    dbname = fresh_db.rsplit("/", 1)[1]
    with psycopg.connect(fresh_db, autocommit=True) as admin:
        prepare(admin, dbname)
    app_dsn = pg_server.dsn(dbname, user=APP, password=PASSWORD)
    watcher_dsn = pg_server.dsn(dbname, user=WATCHER, password=PASSWORD)
    workload(app_dsn)
    config = tmp_path / "dbpulse.yaml"
    config.write_text(json.dumps({
        "postgres": {"interval": 1, "maintenance_interval": 0, "size_interval": 0, "top_statements": 1000,
                     "targets": [{"name": "shop", "dsn": watcher_dsn}]},
        "advisor": {"interval": 2, "timeout": 1.9,
                    "thresholds": {"min_table_rows": 100, "unused_min_stats_age_seconds": 0}},
    }))
    with DbpulseProcess("--config", str(config), log_dir=tmp_path) as svc:
        runs = _wait_for_advisor_runs(svc, 2)
        workload(app_dsn)  # a second window for the advisor
        _wait_for_advisor_runs(svc, runs + 1)
        metrics = _settled(svc)
        _, sections = svc.get("/ui/sections")
        _, advice = svc.get("/advice?target=shop")
    t = truth(fresh_db)
    check_tagged(t)
    assert "hypopg_create_index" in " ".join(t.own_texts)  # the what-if plans ran, and were recognised

    series = metrics["dbpulse_pg_statement_calls_total"]
    exported = {int(dict(k)["queryid"]): v for k, v in series.items() if dict(k)["queryid"] != "__other__"}
    assert not exported.keys() & t.own
    assert {q: exported[q] for q in t.app} == t.app_calls
    own_entries = {dict(k)["component"]: v for k, v in metrics["dbpulse_pg_own_statements"].items()}
    assert sum(own_entries.values()) == len(t.own) and own_entries["advisor"] > 0 and own_entries["collector"] > 0
    calls = {dict(k)["component"]: v for k, v in metrics["dbpulse_pg_own_statement_calls_total"].items()}
    assert calls["collector"] > 0 and calls["advisor"] > 0

    page = sections.decode()
    linked = {int(q) for q in re.findall(r'href="statements/[^"/]+/(-?\d+)"', page)}
    assert linked and not linked & t.own and t.app <= linked
    assert "dbpulse&#39;s own statements" in page or "dbpulse's own statements" in page

    report = json.loads(advice)
    mentioned = {q for f in report["findings"] for q in f.get("queryids", [])} | {
        s["queryid"] for a in report["plan"]["actions"] for n in a.get("creates", []) for s in n["statements"]}
    assert mentioned and mentioned <= t.others and not mentioned & t.own
    check_workload(watcher_dsn, t)


def _advisor_runs(svc: DbpulseProcess) -> float:
    return svc.value("dbpulse_source_polls_total", source="advisor", target="shop") or 0.0


def _wait_for_advisor_runs(svc: DbpulseProcess, runs: float, timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = _advisor_runs(svc) - (svc.value("dbpulse_source_poll_errors_total", source="advisor",
                                               target="shop") or 0.0)
        if done >= runs and svc.value("dbpulse_advice_last_run_timestamp_seconds", target="shop"):
            return done
        time.sleep(0.3)
    raise AssertionError(f"fewer than {runs} advisor runs in {timeout} s\n{svc.log}")


def _settled(svc: DbpulseProcess, timeout: float = 30) -> dict[str, Any]:
    """The metrics once the count of dbpulse's own entries is the same over two polls (none is new)."""
    deadline = time.monotonic() + timeout
    previous: tuple[float, float] | None = None
    while time.monotonic() < deadline:
        metrics = svc.metrics()
        polls = sum(metrics["dbpulse_source_polls_total"][k] for k in metrics["dbpulse_source_polls_total"]
                    if dict(k)["source"] == "postgres")
        entries = sum(metrics.get("dbpulse_pg_own_statements", {}).values())
        if previous is not None and polls > previous[0] and entries == previous[1]:
            return metrics
        if previous is None or polls > previous[0]:
            previous = (polls, entries)
        time.sleep(0.5)
    raise AssertionError(f"dbpulse's own statements did not settle in {timeout} s\n{svc.log}")


# --- PostgreSQL 13 and 18: the poller and the advisor in process ---------------------------------------------
@pytest.fixture(scope="module", params=["13", "18"])
def server(request: pytest.FixtureRequest) -> Iterator[LocalPostgres]:
    with LocalPostgres(version=str(request.param)) as pg:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE shop")
        with psycopg.connect(pg.dsn("shop"), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            prepare(conn, "shop")
        yield pg


def test_own_statements_stay_out_on_13_and_18(server: LocalPostgres) -> None:
    app_dsn = server.dsn("shop", user=APP, password=PASSWORD)
    watcher_dsn = server.dsn("shop", user=WATCHER, password=PASSWORD)
    workload(app_dsn)
    advisor = Advisor(watcher_dsn, "shop", SETTINGS)
    poller = pg_poller(watcher_dsn, maintenance_interval=0, size_interval=0, top_statements=1000)

    async def polls(n: int) -> PostgresSnapshot:
        try:
            for _ in range(n):
                snap = await poller.poll()
            return snap
        finally:
            await poller.close()

    asyncio.run(polls(2))
    advisor.run()
    workload(app_dsn)
    report = advisor.run()
    snap = asyncio.run(polls(2))  # the second poll sees every entry the first one made
    t = truth(server.dsn("shop"))
    check_tagged(t)
    check_snapshot(snap, t)
    check_report(report, t)
    check_workload(watcher_dsn, t)
