"""The pool chain on the main page against a running ``dbpulse run`` with a real PostgreSQL, a real PgBouncer
in front of it and an application's health endpoint: while the demo's load generator saturates PgBouncer's pool
(``demo/saturate.py``, what ``python -m demo --saturate`` runs), Chromium finds that link, and only it, marked
as where the queue is, behind the application's pool and before the PostgreSQL target PgBouncer leads to, and
the block's trend chart draws one line per link. A screenshot is kept (artifacts/pool-chain.png, copied to
docs/pool-chain.png)."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from demo.saturate import EXTRA_CLIENTS, saturate
from harness.pgbouncer import LocalPgBouncer
from harness.servers import LocalPostgres
from tests.support import DbpulseProcess, StandInApp
from tests.web.chromium import dump_dom, element_screenshot

CONFIG = """
pgbouncer:
  targets:
    - name: bouncer
      dsn: {dsn}
      applications: {{api: {database}}}
"""


def chain_block(page: str, target: str = "bouncer") -> str:
    """The target's whole pool-chain block: its table and its trend charts ("" before it is shown)."""
    marker = f'id="pool-chain-{target}"'
    return page.split(marker, 1)[1].split("<h3>Pools</h3>", 1)[0] if marker in page else ""


def chain_rows(page: str, target: str) -> list[tuple[str, str]]:
    """(class, data-link) of each row of the target's pool chain."""
    block = page.split(f'id="pool-chain-{target}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr class="([\w -]+)" data-pool="[^"]*" data-link="(\w+)"', block)


@contextmanager
def saturated(bouncer: LocalPgBouncer, database: str, pool_size: int) -> Iterator[None]:
    """The demo's saturating clients, on their own event loop in a thread, until the block ends."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def run() -> None:
        await saturate(bouncer.dsn(database, "app"), pool_size, stop, hold=1.0)

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(20)
        loop.close()


def test_chromium_finds_the_saturated_link_of_the_chain(pg_server: LocalPostgres, fresh_db: str,
                                                        stand_in_app: StandInApp, tmp_path: Path) -> None:
    database = fresh_db.rsplit("/", 1)[1]
    with LocalPgBouncer(pg_server, pool_size=2) as bouncer:
        config = tmp_path / "dbpulse.yaml"
        config.write_text(CONFIG.format(dsn=bouncer.dsn(), database=database))
        with DbpulseProcess("--config", str(config), "--postgres", f"shop={fresh_db}",
                            "--health-url", f"api={stand_in_app.url}", "--interval", "1") as svc, \
                psycopg.connect(bouncer.dsn(database, "app"), autocommit=True) as early:
            early.execute("SELECT 1")  # the pool exists, holding no server: the chain is drawn unsaturated first
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and \
                    len(re.findall(r"<polyline", chain_block(svc.get("/")[1].decode()))) < 3:
                time.sleep(0.3)  # the chain's chart has its first lines (the server's may come later)
            time.sleep(5)  # a few unsaturated polls on the trend
            assert "the queue is here" not in chain_block(svc.get("/")[1].decode())
            with saturated(bouncer, database, pool_size=2):
                check_the_saturated_chain(svc, pg_server, database)


def check_the_saturated_chain(svc: DbpulseProcess, pg_server: LocalPostgres, database: str) -> None:
    """While the pool is saturated: the chain marks PgBouncer's pool, and its trend draws every link."""
    deadline = time.monotonic() + 30
    page = ""
    while time.monotonic() < deadline:
        page = svc.get("/")[1].decode()
        if 'id="pool-chain-bouncer"' in page and "the queue is here" in page and "shop (" in page \
                and "api pool" in page \
                and len(re.findall(r"<polyline", chain_block(page))) >= 4:
            break
        time.sleep(0.3)
    dom = dump_dom(svc.base + "/")  # after the page's script ran (it re-fetches the sections)
    rows = chain_rows(dom, "bouncer")
    assert [link for _, link in rows] == ["app_pool", "pgbouncer_clients", "pgbouncer_pool", "server"]
    assert [link for css, link in rows if "saturated" in css] == ["pgbouncer_pool"]
    block = dom.split('id="pool-chain-bouncer"', 1)[1].split("</table>", 1)[0]
    assert f"127.0.0.1:{pg_server.port}/{database}" in block and "shop (" in block  # the PostgreSQL target
    assert "api pool" in block and ">configured<" in block  # the application's pool: 3 of 30 checked out
    waiting = re.search(r"\+(\d+) waiting", block)
    assert waiting and 1 <= int(waiting.group(1)) <= EXTRA_CLIENTS  # the clients beyond pool_size queue
    # the block's trend: one chart for the database, a line per link, against the limit (1)
    trend = chain_block(dom)
    assert f'id="chart-pgbouncer-bouncer-chain-{database}"' in trend, trend[-3000:]
    legend = re.findall(r'<span class="key s\d">(\w+)</span>', trend)
    assert sorted(legend) == ["app_pool", "pgbouncer_clients", "pgbouncer_pool", "server"], legend
    shot = element_screenshot(svc.base + "/", "pool-chain-bouncer", "pool-chain.png", height=700)
    assert shot.stat().st_size > 1000
