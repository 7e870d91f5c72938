"""The service and ``dbpulse advise`` give the same plan on the same statistics: one time base.

The issue's case: a column that every transaction updates (pgbench's abalance) and a few reads filtering on
it. The service measured the table's writes since its own previous run (0 per hour on a second run right
after the first) but the reads since pg_stat_statements' reset, and advised the index; the command rejected
it for its writes. Both now count calls and rows written over pg_stat_statements' window (its write statements'
rows, or the table statistics' rate over it when higher), and the report names that window. Each of these
updates sets abalance, so the index would also end their HOT updates: the reason says so.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import psycopg

from tests.integration.advisor.conftest import reset_statistics
from tests.support import DbpulseProcess

SCHEMA = """
CREATE TABLE accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84));
INSERT INTO accounts SELECT g, g % 10, g % 5000, '' FROM generate_series(1, 50000) g;
CREATE INDEX accounts_bid_idx ON accounts (bid);
CREATE INDEX accounts_bid_idx1 ON accounts (bid);
ANALYZE accounts;
"""


def _plan(report: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """What an engineer runs and what is held back (figures change by the second, so not the reasons)."""
    plan = report["plan"]
    return ([(a["action"], a["table"], a["steps"]) for a in plan["actions"]],
            sorted((h["subject"], h["kind"]) for h in plan["held_back"]))


def test_the_service_and_the_command_give_the_same_plan(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(SCHEMA)
    reset_statistics(fresh_db)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        for i in range(300):  # every transaction updates abalance
            conn.execute("UPDATE accounts SET abalance = abalance + %s WHERE aid = %s", (1, 1 + i * 13 % 50000))
        for i in range(3):  # and a batch: 30,000 more row updates
            conn.execute("UPDATE accounts SET abalance = abalance + %s WHERE aid <= %s", (i, 10000))
        for i in range(2):
            conn.execute("SELECT aid FROM accounts WHERE abalance = %s", (i,)).fetchall()
        conn.execute("SELECT pg_stat_force_next_flush()")
    with DbpulseProcess("--postgres", f"shop={fresh_db}", "--interval", "1", "--advice-interval", "1") as svc:
        seen: list[str] = []
        deadline = time.monotonic() + 60
        service: dict[str, Any] = {}
        while len(set(seen)) < 3 and time.monotonic() < deadline:  # a run after runs: the old code's window
            status, body = svc.get("/advice?target=shop")
            if status == 200:
                service = json.loads(body)
                seen.append(service["generated_at"])
            time.sleep(0.3)
        assert len(set(seen)) >= 3, seen
    done = subprocess.run([sys.executable, "-m", "monitor.cli", "advise", "--postgres", fresh_db, "--format", "json"],
                          capture_output=True, text=True, timeout=120, check=True)
    command = json.loads(done.stdout)
    assert _plan(service) == _plan(command)
    # the abalance index costs more on writes than the reads save: rejected by both, with their figures
    assert ("public.accounts (abalance)", "missing_index") in _plan(command)[1]
    rejected = next(h for h in service["plan"]["held_back"] if h["subject"] == "public.accounts (abalance)")
    assert "per hour" in rejected["reason"] and "updates that set abalance (no longer HOT" in rejected["reason"]
    for report in (service, command):
        assert report["time_base"].startswith("per hour: calls and rows written since pg_stat_statements' "
                                              "counters began at"), report["time_base"]
        assert "or the table statistics' rate (reset at" in report["time_base"]
