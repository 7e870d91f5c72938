"""dbpulse's load on a real PgBouncer: the admin commands it sends, counted on the wire (bench's counting proxy),
at the default cadences over two minutes of polls (a stepped clock): SHOW POOLS and STATS every poll, CLIENTS
and SERVERS every 30 s, DATABASES, LISTS and CONFIG every 60 s. A new database and a new connection are read
at once, and the new database's clients, not a cadence later."""

from __future__ import annotations

import asyncio

import psycopg

from bench.pgbouncer_poll import CountingProxy, dsn_via
from collectors.pgbouncer.poller import PgBouncerPoller
from collectors.pgbouncer.settings import PgBouncerSettings, PgBouncerTarget
from collectors.pgbouncer.snapshot import PgBouncerSnapshot
from harness.pgbouncer import LocalPgBouncer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_commands_per_minute_at_the_defaults(pgbouncer: LocalPgBouncer, fresh_db: str) -> None:
    dbname = fresh_db.rsplit("/", 1)[1]
    with CountingProxy(pgbouncer.port) as proxy:
        settings = PgBouncerSettings()  # interval 15 s, config_interval 60 s, detail_interval 30 s
        poller = PgBouncerPoller(PgBouncerTarget(name="edge", dsn=dsn_via(proxy)), settings)
        clock = poller.clock = Clock()

        counts: dict[str, int] = {}
        snaps: list[PgBouncerSnapshot] = []

        async def counted(name: str) -> None:
            before = proxy.queries
            snaps.append(await poller.poll())
            counts[name] = counts.get(name, 0) + proxy.queries - before

        async def run() -> None:
            await counted("first")  # connects: every command once, SHOW VERSION too
            for _ in range(8):  # two minutes at 15 s
                clock.now += settings.interval
                await counted("two minutes")
            with psycopg.connect(pgbouncer.dsn(dbname, "app"), autocommit=True) as client:
                client.execute("SELECT 1")  # a new database (PgBouncer's "*" entry): a new pool
                clock.now += settings.interval
                await counted("new database")
            await poller.close()
            await counted("reconnected")  # a new connection (PgBouncer may have restarted): read in full

        asyncio.run(run())
    # 8 polls x (POOLS, STATS) + 4 x (CLIENTS, SERVERS) + 2 x (DATABASES, LISTS, CONFIG) = 30: 15 a minute
    # a new database: POOLS, STATS, and DATABASES, CLIENTS, SERVERS at once
    assert counts == {"first": 8, "two minutes": 30, "new database": 5, "reconnected": 8}
    assert all(s.max_client_conn == 100 and s.lists.get("used_clients") for s in snaps)  # kept between reads
    assert any(d.name == dbname for d in snaps[-2].databases)  # read at once for the new pool
    assert any(c.database == dbname for c in snaps[-2].clients)
