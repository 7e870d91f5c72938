"""N+1 needs evidence: a parent statement whose rows the lookups follow, read from pg_stat_statements alone.

- Real pgbench (with its primary keys) on a primary, and select-only on a streaming standby: its
  ``SELECT abalance FROM pgbench_accounts WHERE aid = $1`` is a hot key lookup (the rule that only counted
  calls flagged it on both), but no statement's rows drive it: 0 findings, in one window and across two.
- The demo application's real lazy-loading loop (``quote.client`` for each quote of a list), under the demo's
  load mix: found in every window, naming the list of quotes as its parent.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator

import psycopg
import pytest

from collectors.postgres.statements import read_statements
from demo import app as demo_app
from demo.load import LoadStats, run_load
from demo.stack import ADVISOR_THRESHOLDS
from harness.servers import LocalPostgres, LocalRedis, free_port
from monitor.advisor.advisor import Advisor
from monitor.advisor.catalog import read_catalog
from monitor.advisor.findings import AdviceReport, Finding
from monitor.advisor.patterns import key_lookups
from monitor.advisor.query_analysis import analyze
from monitor.advisor.settings import Thresholds
from tests.integration.postgres.health_scenario import one, wait_for

ABALANCE = "SELECT abalance FROM pgbench_accounts WHERE aid = $1"


def pgbench(server: LocalPostgres, *args: str) -> None:
    subprocess.run([str(server.bin / "pgbench"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres",
                    *args, "postgres"], check=True, capture_output=True, timeout=300)


def n_plus_one(report: AdviceReport) -> list[Finding]:
    return [f for f in report.findings if f.kind == "n_plus_one"]


def hot_lookups(dsn: str, settings: Thresholds) -> list[str]:
    """The texts of the key lookups the rule that only counted calls would have flagged (since the reset)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cat = read_catalog(conn)
        stats = read_statements(conn, cat.server_version_num, None)
    items = [(s, a) for s in stats if (a := analyze(s.query, cat.columns_of)).ok]
    return [k.stat.query for k in key_lookups(items, cat, settings, sum(s.calls for s, _ in items))]


# --- pgbench, primary and standby ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pgbench_pair() -> Iterator[tuple[LocalPostgres, LocalPostgres]]:
    primary = LocalPostgres()
    primary.start()
    standby = None
    try:
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
        pgbench(primary, "-i", "-s", "10", "-q")  # as the issue asks; with its primary keys (default steps dtgvp)
        standby = primary.standby(slot="standby", name="standby")
        standby.start()
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            target = one(conn, "SELECT pg_current_wal_insert_lsn()")
            wait_for("the standby to replay pgbench's tables", lambda: one(
                conn, "SELECT count(*) FROM pg_stat_replication WHERE replay_lsn >= %s", (target,)))
        for server in (primary, standby):
            with psycopg.connect(server.dsn(), autocommit=True) as conn:
                conn.execute("SELECT pg_stat_statements_reset()")
        yield primary, standby
    finally:
        if standby is not None:
            standby.cleanup()
        primary.cleanup()


@pytest.mark.parametrize("side", ["primary", "standby"])
def test_pgbench_has_no_n_plus_one(pgbench_pair: tuple[LocalPostgres, LocalPostgres], side: str) -> None:
    primary, standby = pgbench_pair
    server = primary if side == "primary" else standby
    workload = ["-n", "-c", "2", "-t", "800"] + (["-S"] if side == "standby" else [])  # tpcb-like; select-only
    settings = Thresholds(use_hypopg=False)  # the defaults otherwise: 1000 calls, 5% of them
    advisor = Advisor(server.dsn(), side, settings)  # as the service keeps it: windows between runs
    pgbench(server, *workload)
    first = advisor.run()  # since the reset
    pgbench(server, *workload)
    second = advisor.run()  # the window since the first run: the same pairs, at the same rates
    assert ABALANCE in hot_lookups(server.dsn(), settings)  # calls alone would flag it
    assert n_plus_one(first) == [] and n_plus_one(second) == []
    assert n_plus_one(Advisor(server.dsn(), side, settings).run()) == []  # dbpulse advise: lifetime counters
    # with its keys, pgbench needs no index: the defaults (HypoPG what-if plans) create nothing
    verified = Advisor(server.dsn(), side, Thresholds()).run()
    assert [a.creates for a in verified.plan.actions if a.creates] == []
    assert n_plus_one(verified) == []


# --- the demo's lazy-loading loop ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_server() -> Iterator[LocalPostgres]:
    server = LocalPostgres()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


async def _load(base: str, sizes: dict[str, int], list_requests: int) -> LoadStats:
    """The demo's load mix until it made ``list_requests`` requests of the quotes list."""
    stop, stats = asyncio.Event(), LoadStats()
    task = asyncio.create_task(run_load(base, stop, clients=3, pause=0.0, sizes=sizes, stats=stats))
    try:
        while stats.requests["list_quotes"] < list_requests and not task.done():
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
    assert not stats.errors, stats.errors
    return stats


def test_the_demo_lazy_loading_loop_is_found_with_its_parent(demo_server: LocalPostgres,
                                                             redis_server: LocalRedis) -> None:
    dsn = demo_server.dsn()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
    sizes = demo_app.create_schema(dsn, scale=0.2)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
    settings = Thresholds(use_hypopg=False, **ADVISOR_THRESHOLDS)  # the demo's: 200 calls
    advisor = Advisor(dsn, "demo", settings)
    reports: list[AdviceReport] = []

    async def scenario() -> None:
        port = free_port()
        runner = await demo_app.serve(dsn, redis_server.url(), "127.0.0.1", port)
        try:
            for _ in range(2):  # two windows of the service's advisor
                await _load(f"http://127.0.0.1:{port}", sizes, 40)
                reports.append(await asyncio.to_thread(advisor.run))
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
    for report in reports:
        (found,) = n_plus_one(report)
        assert (found.table, found.columns) == ("public.clients", ["id"])
        assert found.query and found.query.startswith("SELECT clients.id")
        assert found.parent_query is not None and found.parent_queryid is not None
        parent = " ".join(found.parent_query.split())
        assert parent.startswith("SELECT quotes.id") and "WHERE quotes.tenant_id = $1" in parent
        assert "ORDER BY quotes.created_at DESC" in parent  # the list, not the detailed list or a lookup by id
        assert f"of statement {found.parent_queryid} (" in found.evidence
