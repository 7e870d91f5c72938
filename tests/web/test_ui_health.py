"""The UI's PostgreSQL Health section against a running ``dbpulse run``: only what needs attention,
worst first, with names from the database escaped."""

from __future__ import annotations

import re
import threading
import time

import psycopg

from tests.support import DbpulseProcess

HOSTILE = "<img src=x onerror=alert(1)>"


def test_health_lists_what_needs_attention_worst_first(fresh_db: str) -> None:
    quoted = '"' + HOSTILE.replace('"', '""') + '"'
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(f"CREATE SEQUENCE {quoted} AS integer")
        conn.execute(f"SELECT setval('{quoted}', 2100000000)")  # 98 % of int4
        conn.execute("CREATE SEQUENCE calm_seq")
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v int)")
        conn.execute("INSERT INTO t VALUES (1, 0)")
    holder = psycopg.connect(fresh_db, application_name="forgetful-worker")
    holder.execute("UPDATE t SET v = 1 WHERE id = 1")  # idle in transaction, holding the row
    waiter = psycopg.connect(fresh_db, autocommit=True)
    try:
        blocked = threading.Thread(target=lambda: waiter.execute("UPDATE t SET v = 2 WHERE id = 1"))
        blocked.start()
        with DbpulseProcess("--postgres", f"shop={fresh_db}", "--interval", "1") as svc:
            deadline = time.monotonic() + 20
            page = ""
            while time.monotonic() < deadline:
                page = svc.get("/")[1].decode()
                if "forgetful-worker" in page and "sequence public." in page:
                    break
                time.sleep(0.3)
            health = page.split('<div class="health" id="postgres-health-', 1)[1].split("</div>", 1)[0]
            rows = re.findall(r'<tr class="(\w+)">(.*?)</tr>', health, re.S)
            assert [severity for severity, _ in rows] == sorted((s for s, _ in rows),
                                                                 key=["critical", "warning", "info"].index)
            text = " ".join(r for _, r in rows)
            assert "sequence public.&lt;img src=x onerror=alert(1)&gt;" in text and HOSTILE not in page
            assert "calm_seq" not in text  # nothing to do about it: not listed
            assert "forgetful-worker" in text and "idle in transaction session blocks 1" in text
            assert "UPDATE t SET v = 1 WHERE id = 1" in text  # the root's statement, to find it in the code
            assert "(primary)" in health
            # The summary at the top lists the same problems, worst first, each linked to its Health section.
            summary = page.split('id="summary-health"', 1)[1].split("</div>", 1)[0]
            listed = re.findall(r'<li class="problem (\w+)">', summary)
            assert listed and listed == sorted(listed, key=["critical", "warning", "info"].index)
            assert "sequence public.&lt;img src=x onerror=alert(1)&gt;" in summary and "forgetful-worker" in summary
            assert 'href="#postgres-health-shop"' in summary
    finally:
        holder.rollback()
        holder.close()
        blocked.join(10)
        waiter.close()
