"""The advice section in a real headless Chromium: the plan with its evidence, a full plan opened by a
link that stays open when the page's script re-fetches the live sections."""

from __future__ import annotations

import re
import time

import psycopg

from tests.support import DbpulseProcess
from tests.web.chromium import dump_dom, screenshot


def test_a_full_plan_opened_by_link_stays_open_across_refreshes(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id int PRIMARY KEY, number text NOT NULL, note text)")
        conn.execute("INSERT INTO invoices SELECT g, 'INV-' || g, 'n' FROM generate_series(1, 30000) g")
        conn.execute("ANALYZE invoices")
        for i in range(40):
            conn.execute("SELECT * FROM invoices WHERE number = %s", (f"INV-{i}",)).fetchall()
    with DbpulseProcess("--postgres", f"shop={fresh_db}", "--interval", "1", "--advice-interval", "2") as svc:
        deadline = time.monotonic() + 30
        section = ""
        while time.monotonic() < deadline:
            section = svc.get("/ui/sections")[1].decode()
            if "<details id=" in section:
                break
            time.sleep(0.3)
        found = re.search(r'<details id="([^"]+)">', section)
        assert found, section[:3000]
        ident = found.group(1)
        dom = dump_dom(f"{svc.base}/#{ident}", budget_ms=8000)  # the page refreshes every 2 s
        refreshes = re.search(r'data-refreshes="(\d+)"', dom)
        assert refreshes is not None and int(refreshes.group(1)) >= 1
        assert re.search(rf'<details id="{re.escape(ident)}" open="">', dom), dom[:3000]
        assert "Plan, in this order" in dom and "CREATE INDEX CONCURRENTLY ON public.invoices (number);" in dom
        screenshot(f"{svc.base}/#{ident}", "ui-advice-plan.png")
