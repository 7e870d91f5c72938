"""The advisor inside the service: its own interval, /advice, /advice.html and metrics."""

from __future__ import annotations

import json
import time

import psycopg

from tests.support import DbpulseProcess

EVIL = "<script>alert(1)</script>"


def test_advice_is_served_and_summarized(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{EVIL}" (id int PRIMARY KEY, external_id text, note text)')
        conn.execute(f'INSERT INTO "{EVIL}" SELECT g, \'ext-\' || g, \'n\' FROM generate_series(1, 30000) g')
        conn.execute(f'ANALYZE "{EVIL}"')
        for i in range(50):
            conn.execute(f'SELECT * FROM "{EVIL}" WHERE external_id = %s', (f"ext-{i}",)).fetchall()
    with DbpulseProcess("--postgres", f"shop={fresh_db}", "--interval", "1", "--advice-interval", "1") as svc:
        svc.wait_for("dbpulse_advice_findings", 1, timeout=20, target="shop", kind="missing_index")
        assert (svc.value("dbpulse_advice_last_run_timestamp_seconds", target="shop") or 0) > time.time() - 60
        assert svc.value("dbpulse_advice_missing_index_benefit_ratio", target="shop") > 0.5  # type: ignore[operator]
        status, body = svc.get("/advice")
        assert status == 200
        reports = json.loads(body)
        assert [r["target"] for r in reports] == ["shop"]
        missing = [f for f in reports[0]["findings"] if f["kind"] == "missing_index"]
        assert [(f["table"], f["columns"]) for f in missing] == [(f"public.{EVIL}", ["external_id"])]
        assert missing[0]["ddl"].startswith("CREATE INDEX CONCURRENTLY")
        status, body = svc.get("/advice?target=shop")
        assert status == 200 and json.loads(body)["target"] == "shop"
        assert svc.get("/advice?target=nope")[0] == 404
        plan = reports[0]["plan"]
        assert [(a["order"], a["action"], a["steps"]) for a in plan["actions"]] == [
            (1, "create", [missing[0]["ddl"]])]
        assert missing[0]["action"] == 1
        status, page = svc.get("/advice.html")
        assert status == 200
        assert EVIL.encode() not in page
        assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert b"<h2>Plan</h2>" in page and b"full plans" in page
        # the UI's advice section carries the same plan, with its evidence, escaped
        status, section = svc.get("/ui/sections")
        assert status == 200 and b"Plan, in this order" in section and b"1. create" in section
        assert b"Column order: external_id first" in section and EVIL.encode() not in section
        assert svc.value("dbpulse_advice_plan_actions", target="shop", action="create") == 1
        assert svc.value("dbpulse_advice_outcome_statements", target="shop", verdict="regression") == 0


def test_advisor_can_be_disabled(fresh_db: str) -> None:
    with DbpulseProcess("--postgres", f"shop={fresh_db}", "--interval", "1", "--advice-interval", "0") as svc:
        assert svc.value("dbpulse_advice_findings", target="shop") is None
        assert json.loads(svc.get("/advice")[1]) == []
