"""The pool chain on the main page against a running ``dbpulse run`` with a real PostgreSQL, a real PgBouncer
in front of it and an application's health endpoint: while PgBouncer's pool is saturated, Chromium finds that
link, and only it, marked as where the queue is, behind the application's pool and before the PostgreSQL
target PgBouncer leads to. A screenshot is kept (artifacts/pool-chain.png)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from harness.pgbouncer import LocalPgBouncer
from harness.servers import LocalPostgres
from tests.integration.pgbouncer.test_pgbouncer_collector import holding, waiting
from tests.support import DbpulseProcess, StandInApp
from tests.web.chromium import dump_dom, element_screenshot

CONFIG = """
pgbouncer:
  targets:
    - name: bouncer
      dsn: {dsn}
      applications: {{api: {database}}}
"""


def chain_rows(page: str, target: str) -> list[tuple[str, str]]:
    """(class, data-link) of each row of the target's pool chain."""
    block = page.split(f'id="pool-chain-{target}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr class="([\w -]+)" data-pool="[^"]*" data-link="(\w+)"', block)


def test_chromium_finds_the_saturated_link_of_the_chain(pg_server: LocalPostgres, fresh_db: str,
                                                        stand_in_app: StandInApp, tmp_path: Path) -> None:
    database = fresh_db.rsplit("/", 1)[1]
    with LocalPgBouncer(pg_server, pool_size=2) as bouncer:
        config = tmp_path / "dbpulse.yaml"
        config.write_text(CONFIG.format(dsn=bouncer.dsn(), database=database))
        with DbpulseProcess("--config", str(config), "--postgres", f"shop={fresh_db}",
                            "--health-url", f"api={stand_in_app.url}", "--interval", "1") as svc, \
                holding(bouncer, database, 2) as held, waiting(bouncer, database, 2):
            deadline = time.monotonic() + 30
            page = ""
            while time.monotonic() < deadline:
                page = svc.get("/")[1].decode()
                if 'id="pool-chain-bouncer"' in page and "the queue is here" in page and "shop (" in page \
                        and "api pool" in page:
                    break
                time.sleep(0.3)
            dom = dump_dom(svc.base + "/")  # after the page's script ran (it re-fetches the sections)
            rows = chain_rows(dom, "bouncer")
            assert [link for _, link in rows] == ["app_pool", "pgbouncer_clients", "pgbouncer_pool", "server"]
            assert [link for css, link in rows if "saturated" in css] == ["pgbouncer_pool"]
            block = dom.split('id="pool-chain-bouncer"', 1)[1].split("</table>", 1)[0]
            assert f"127.0.0.1:{pg_server.port}/{database}" in block and "shop (" in block  # the PostgreSQL target
            assert "api pool" in block and ">configured<" in block  # the application's pool: 3 of 30 checked out
            assert "+2 waiting" in block
            shot = element_screenshot(svc.base + "/", "pool-chain-bouncer", "pool-chain.png", height=500)
            assert shot.stat().st_size > 1000
            for conn in held:  # the waiting clients get their server and finish
                conn.close()
