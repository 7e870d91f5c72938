"""The statement page and the table page in a real headless Chromium, against ``dbpulse run`` on a real PostgreSQL.

The watched table is named like markup (an ``<img onerror>`` in a schema called ``<script>``) and a statement on
it carries markup in a column alias: every page must show them as text, never as elements. The target is the
address-derived default (``127.0.0.1:<port>/<db>``: a ``:`` and a ``/`` in the path). Screenshots of both pages
are saved under artifacts/ (as test_ui.py does).
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from typing import Any

import psycopg
import pytest

from monitor.web.detail import statement_path, table_path
from tests.support import DbpulseProcess
from tests.web.chromium import Browser, CdpPage, dump_dom, screenshot

SCHEMA = "<script>"
TABLE = "<img src=x onerror=document.body.dataset.xss=1>"
ALIAS = "<b onmouseover=document.body.dataset.xss=2>n</b>"
QUALIFIED = f"{SCHEMA}.{TABLE}"
ESCAPED_TABLE = "&lt;img src=x onerror=document.body.dataset.xss=1&gt;"


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


REL = f"{quoted(SCHEMA)}.{quoted(TABLE)}"


def _workload(conn: psycopg.Connection[Any], lookups: int = 30) -> None:
    for i in range(lookups):
        conn.execute(f"SELECT note AS {quoted(ALIAS)} FROM {REL} WHERE code = %s", (f"c{i}",)).fetchall()
        conn.execute(f"SELECT note FROM {REL} WHERE id = %s", (i,)).fetchall()


@pytest.fixture
def hostile_db(fresh_db: str) -> str:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {quoted(SCHEMA)}")
        conn.execute(f"CREATE TABLE {REL} (id int PRIMARY KEY, code text NOT NULL, note text, grp int)")
        conn.execute(f"INSERT INTO {REL} SELECT g, 'c' || g, 'n' || g, g % 7 FROM generate_series(1, 20000) g")
        conn.execute(f"CREATE INDEX {quoted('grp <i>idx</i>')} ON {REL} (grp)")
        conn.execute("ANALYZE")
        conn.execute("SELECT pg_stat_statements_reset()")
        _workload(conn)
    return fresh_db


def _queryid(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT queryid FROM pg_stat_statements WHERE query LIKE '%onmouseover%' "
                           "AND query NOT LIKE '%pg_stat_statements%'").fetchone()
    assert row is not None
    return int(row[0])


def _wait(svc: DbpulseProcess, path: str, needle: str, timeout: float = 60) -> str:
    return svc.wait_for_page(path, needle, timeout)


def _get(svc: DbpulseProcess, path: str) -> tuple[int, Any, str]:
    """Status, headers and body (also of an error response)."""
    try:
        with urllib.request.urlopen(svc.base + path, timeout=5) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode()


def _assert_inert(dom: str) -> None:
    """No hostile element exists after scripts ran, nothing of them executed, and only our own script loaded."""
    assert "<img" not in dom and "<b " not in dom and "<i>" not in dom
    assert dom.count("<script") == 1, "only the UI's own script element may exist"
    body_tag = dom.split("<body", 1)[1].split(">", 1)[0]
    assert "data-xss" not in body_tag


def _target(dsn: str) -> str:
    address = re.search(r"@([^/]+)/(\w+)$", dsn)
    assert address is not None, dsn
    return f"{address.group(1)}/{address.group(2)}"


def test_statement_and_table_pages_escape_hostile_names_link_and_sort(hostile_db: str) -> None:
    target = _target(hostile_db)
    assert ":" in target and "/" in target
    queryid = _queryid(hostile_db)
    with DbpulseProcess("--postgres", hostile_db, "--interval", "1", "--advice-interval", "3") as svc:
        # The main page links to both pages, with the same encoding the routes read.
        sections = _wait(svc, "/ui/sections", f'href="{statement_path(target, queryid)}"')
        assert f'href="{table_path(target, SCHEMA, TABLE)}"' in sections
        spath = "/" + statement_path(target, queryid)
        tpath = "/" + table_path(target, SCHEMA, TABLE)
        with psycopg.connect(hostile_db, autocommit=True) as conn:
            for _ in range(3):  # calls between polls: the charts and the figures over the buffer have points
                _workload(conn, 10)
                time.sleep(1.2)

        # The statement page: the text, the generic plan from the advisor, its finding and the plan action.
        page = _wait(svc, spath, 'id="generic-plan"')
        assert "Missing index" in page and "CREATE INDEX CONCURRENTLY ON" in page, page[:5000]
        assert "&lt;b onmouseover=document.body.dataset.xss=2&gt;n&lt;/b&gt;" in page
        assert ALIAS not in page and TABLE not in page
        assert re.search(r'<svg class="chart"[^>]*data-chart="calls"[^>]*data-points="[1-9]', page), page[:5000]
        # the advice on it links back to its table page, relative to this page's depth
        assert f'href="../../{table_path(target, SCHEMA, TABLE)}"' in page
        status, headers, _ = _get(svc, spath)
        assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"]

        # The table page: size, scans, indexes (with sizes), maintenance times, the advice on it.
        table = _wait(svc, tpath, "Advice on this table")
        assert ESCAPED_TABLE in table and "grp &lt;i&gt;idx&lt;/i&gt;" in table
        assert "Missing index" in table and "last autovacuum" in table
        assert f'href="../../{statement_path(target, queryid)}"' in table  # the finding's statement
        # sizes are read every postgres.size_interval (300 s): the page says when, and shows no growth from one read
        reads = r"Sizes read [^<]* ago; next read in about [^<]*\(every 5\.0 min"
        assert 'id="no-growth"' in table and re.search(reads, table), table[:3000]

        for path, shot in ((spath, "ui-statement.png"), (tpath, "ui-table.png")):
            dom = dump_dom(svc.base + path)
            _assert_inert(dom)
            assert ESCAPED_TABLE in dom  # shown literally
            assert screenshot(svc.base + path, shot, size="1400,2400").stat().st_size > 10_000
        statement_dom = dump_dom(svc.base + spath)
        assert "onmouseover=document.body.dataset.xss=2&gt;n&lt;/b&gt;" in statement_dom

        # Unknown target, statement and table: a 404 page with the security headers, the path text escaped.
        for path in ("/statements/nowhere/1", f"/statements/{statement_path(target, 12345)[11:]}",
                     "/tables/" + table_path(target, "<x>", "<y>")[7:], "/tables/x", "/statements/t/notanumber"):
            status, raw = svc.get(path)
            assert status == 404, path
            assert b"<x>" not in raw and b"Not found" in raw
        status, headers, body = _get(svc, "/" + table_path(target, "<x>", "<y>"))
        assert status == 404 and "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "no table &lt;x&gt;.&lt;y&gt; on PostgreSQL target" in body

        # Sorting by keyboard: focus a header's button and press Enter (then Space) in a real Chromium.
        async def sort_by_keyboard(page: CdpPage) -> list[Any]:
            rows = "Array.from(document.querySelectorAll('#table-indexes tbody tr td:first-child'))" \
                   ".map(td => td.textContent)"
            header = "document.querySelectorAll('#table-indexes th')[2]"
            seen = [await page.evaluate(rows)]
            await page.evaluate(f"{header}.querySelector('button').focus()")
            await page.press("Enter")
            seen += [await page.evaluate(rows), await page.evaluate(f"{header}.getAttribute('aria-sort')")]
            await page.press(" ")
            seen += [await page.evaluate(rows), await page.evaluate(f"{header}.getAttribute('aria-sort')")]
            sizes = "Array.from(document.querySelectorAll('#table-indexes tbody tr td:nth-child(3)'))" \
                    ".map(td => Number(td.getAttribute('data-value')))"
            seen.append(await page.evaluate(sizes))
            return seen

        before, after_enter, sort_enter, after_space, sort_space, sizes_desc = Browser().run(
            svc.base + tpath, sort_by_keyboard)
        assert len(before) == 2
        assert sort_enter == "ascending" and sort_space == "descending"
        assert after_space == list(reversed(after_enter))
        assert sizes_desc == sorted(sizes_desc, reverse=True) and sizes_desc[0] > sizes_desc[1]


def test_a_page_of_a_source_that_went_down_shows_the_error_and_the_gap(fresh_db: str, pg_server: Any) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO orders SELECT g, 'n' FROM generate_series(1, 100) g")
        for i in range(5):
            conn.execute("SELECT note FROM orders WHERE id = %s", (i,)).fetchall()
    target = _target(fresh_db)
    queryid = _queryid_of(fresh_db, "FROM orders WHERE id")
    with DbpulseProcess("--postgres", fresh_db, "--interval", "1", "--advice-interval", "3600") as svc:
        tpath = "/" + table_path(target, "public", "orders")
        spath = "/" + statement_path(target, queryid)
        _wait(svc, tpath, 'data-chart="size"')
        time.sleep(2.5)  # a few polls in the history
        name = fresh_db.rsplit("/", 1)[1]
        with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
        _wait(svc, tpath, 'id="source-down"')
        table = _wait(svc, tpath, "does not exist")  # the first failure is the forced disconnect, then this
        down = r'id="source-down">source down: [^<]*database &#34;t\d+&#34; does not exist'
        assert re.search(down, table), table[:3000]
        assert 'data-gaps="1"' in table  # the failed polls drawn as a gap, not a stale line
        assert "Rows and maintenance" not in table  # no last values shown as current
        statement = _wait(svc, spath, 'id="source-down"')
        assert 'data-gaps="1"' in statement and "FROM orders WHERE id" in statement
        dom = dump_dom(svc.base + tpath)
        assert "source down: " in dom
        screenshot(svc.base + tpath, "ui-table-down.png")


def _queryid_of(dsn: str, fragment: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT queryid FROM pg_stat_statements WHERE query LIKE %s "
                           "AND query NOT LIKE '%%pg_stat_statements%%'", (f"%{fragment}%",)).fetchone()
    assert row is not None
    return int(row[0])
