"""IN-list variants are one statement: in the advisor's plan and on the main page, each variant still reachable.

On PostgreSQL 15 (as on every release up to 17) each length of an ``IN ($1, ..., $n)`` list is its own
``pg_stat_statements`` entry; a selectin load makes one per batch size. The real service runs against a
real server, and the plan's action and the top-statements table must show them as one entry, with their
calls added up and every variant's queryid linked.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import psycopg

from monitor.web.detail import statement_path
from tests.support import DbpulseProcess

LENGTHS = range(1, 13)
CALLS_EACH = 4
SCHEMA = """
CREATE TABLE quotes (id int PRIMARY KEY, number text NOT NULL);
CREATE TABLE quote_items (id int PRIMARY KEY, quote_id int NOT NULL REFERENCES quotes(id), product text NOT NULL);
INSERT INTO quotes SELECT g, 'Q' || g FROM generate_series(1, 10000) g;
INSERT INTO quote_items SELECT g, 1 + g % 10000, 'p' || g % 97 FROM generate_series(1, 40000) g;
ANALYZE;
"""


def selectin_loads(conn: psycopg.Connection[Any]) -> None:
    """What SQLAlchemy's selectinload sends: one IN list per batch, of as many keys as the batch has."""
    for n in LENGTHS:
        for call in range(CALLS_EACH):
            keys = [1 + (call * 100 + k * 7) % 10000 for k in range(n)]
            conn.execute(f"SELECT id, quote_id, product FROM quote_items WHERE quote_id IN "  # type: ignore[arg-type]
                         f"({', '.join(['%s'] * n)})", keys).fetchall()


def in_list_entries(conn: psycopg.Connection[Any]) -> dict[int, int]:
    """queryid -> calls of the IN-list variants, as pg_stat_statements keeps them."""
    rows = conn.execute("SELECT queryid, sum(calls) FROM pg_stat_statements WHERE toplevel "
                        "AND query LIKE 'SELECT id, quote_id, product FROM quote_items WHERE quote_id IN%' "
                        "GROUP BY queryid").fetchall()
    return {int(q): int(c) for q, c in rows}


def test_in_list_variants_are_one_entry_in_the_plan_and_on_the_main_page(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(SCHEMA)  # type: ignore[arg-type]
        conn.execute("SELECT pg_stat_statements_reset()")
        selectin_loads(conn)
        variants = in_list_entries(conn)
    assert len(variants) == len(LENGTHS)  # PostgreSQL 15 keeps every length apart

    with DbpulseProcess("--postgres", f"shop={fresh_db}", "--interval", "1", "--advice-interval", "2") as svc:
        svc.wait_for("dbpulse_advice_plan_actions", 1, timeout=60, target="shop", action="create")
        report = json.loads(svc.get("/advice?target=shop")[1])
        page = svc.get("/ui/sections")[1].decode()
        other = sorted(variants)[0]
        status, statement = svc.get("/" + statement_path("shop", other))

    served = [s for a in report["plan"]["actions"] for n in a.get("creates", []) for s in n["statements"]]
    of_in_lists = [s for s in served if s["queryid"] in variants]
    assert len(of_in_lists) == 1, served  # one entry, not twelve
    (entry,) = of_in_lists
    assert sorted([entry["queryid"], *entry["variants"]]) == sorted(variants)
    assert entry["calls"] == sum(variants.values())
    (create,) = [n for a in report["plan"]["actions"] for n in a.get("creates", []) if entry in n["statements"]]
    assert (create["table"], create["columns"]) == ("public.quote_items", ["quote_id"])
    finding = next(f for f in report["findings"] if f["kind"] == "missing_index" and f["columns"] == ["quote_id"])
    assert set(variants) <= set(finding["queryids"])

    assert f"{len(LENGTHS)} variants, added up" in page
    linked = {int(q) for q in re.findall(r'href="statements/shop/(-?\d+)"', page)}
    assert set(variants) <= linked
    rows = re.findall(r"<tr><td><span class=\"mono\"><a class=\"statement-link\" href=\"statements/shop/(-?\d+)\"",
                      page)
    assert len([q for q in rows if int(q) in variants]) <= 3  # top, slowest, most called: once in each table

    assert status == 200
    text = statement.decode()
    assert f"One of {len(LENGTHS)} variants" in text
    assert 'id="generic-plan"' in text  # the group's plan, on a variant's page too


def test_a_single_variant_stays_as_it_was(fresh_db: str) -> None:
    """A statement with no variant gets no ``variants`` key and no 'variants' line."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(SCHEMA)  # type: ignore[arg-type]
        # The seed's 40,000 inserts happened before pg_stat_statements' window; the table statistics, never
        # reset, still count them. Writes are counted over the statements' window, so they weigh nothing against
        # the 20 lookups (they used to reject the index).
        conn.execute("SELECT pg_stat_statements_reset()")
        for k in range(20):
            conn.execute("SELECT id, product FROM quote_items WHERE quote_id = %s", (k + 1,)).fetchall()
    with DbpulseProcess("--postgres", f"shop={fresh_db}", "--interval", "1", "--advice-interval", "2") as svc:
        svc.wait_for("dbpulse_advice_plan_actions", 1, timeout=60, target="shop", action="create")
        report = json.loads(svc.get("/advice?target=shop")[1])
        deadline = time.monotonic() + 10
        page = ""
        while "quote_items WHERE quote_id" not in page and time.monotonic() < deadline:
            page = svc.get("/ui/sections")[1].decode()
    served = [s for a in report["plan"]["actions"] for n in a.get("creates", []) for s in n["statements"]]
    assert served and all("variants" not in s for s in served)
    assert "variants, added up" not in page
