"""The built-in web UI in a real headless Chromium, against a running ``dbpulse run``.

The watched database holds tables whose names are markup (``<script>alert(1)</script>``
and an ``<img onerror=...>``) with statements on them: they must render as text,
both in the server-rendered page and after the page's script replaced the live
sections with a re-fetched copy (asserted on the DOM after scripts ran).
A screenshot is saved under artifacts/.
"""

from __future__ import annotations

import re

import psycopg
import pytest

from tests.support import DbpulseProcess
from tests.web.chromium import dump_dom, screenshot

SCRIPT_TABLE = "<script>alert(1)</script>"
IMG_TABLE = "<img src=x onerror=document.body.dataset.xss=1>"


@pytest.fixture
def hostile_db(fresh_db: str) -> str:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        for name in (SCRIPT_TABLE, IMG_TABLE):
            quoted = '"' + name.replace('"', '""') + '"'
            conn.execute(f"CREATE TABLE {quoted} (id int PRIMARY KEY, note text)")
            conn.execute(f"INSERT INTO {quoted} SELECT i, 'row ' || i FROM generate_series(1, 200) i")
            for i in range(30):
                conn.execute(f"SELECT note FROM {quoted} WHERE id = %s", (i,))
        conn.execute("ANALYZE")
    return fresh_db


def _wait_for(svc: DbpulseProcess, path: str, needle: str, timeout: float = 15) -> str:
    return svc.wait_for_page(path, needle, timeout)


def test_ui_renders_sources_statements_and_escapes_hostile_names(hostile_db: str) -> None:
    with DbpulseProcess("--postgres", f"shop={hostile_db}", "--interval", "1") as svc:
        escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
        page = _wait_for(svc, "/", escaped)

        # Server side: the response itself carries only our own script, and a CSP that forbids inline ones.
        status, _ = svc.get("/ui/static/ui.js")
        assert status == 200
        assert SCRIPT_TABLE not in page and "<img" not in page
        assert page.count("<script") == 1

        # On a loaded machine a 1 s poll can miss its deadline, and the badge then rightly says so: the
        # overview is read again (a few times at most) until it shows the target up.
        up = re.compile(r"<td>postgres</td><td><a [^>]*>shop</a></td><td><span class=\"badge ok\">up</span>")
        for _ in range(4):
            dom = dump_dom(svc.base + "/")
            if up.search(dom):
                break

        # The page's script ran and replaced the live sections with a re-fetched copy at least once.
        html_tag = re.search(r"<html[^>]*>", dom)
        assert html_tag is not None
        assert 'data-ui="ready"' in html_tag.group(0), html_tag.group(0)
        refreshes = re.search(r'data-refreshes="(\d+)"', html_tag.group(0))
        assert refreshes is not None and int(refreshes.group(1)) >= 1, html_tag.group(0)

        # Overview: the source, its target, up; top statements with their columns.
        assert up.search(dom), dom[:3000]
        assert "Top statements by total time" in dom
        for column in ("calls", "total time", "mean", "rows", "cache hit"):
            assert f">{column}</button></th>" in dom  # sortable headers

        # Hostile names are text: escaped in the serialized DOM, never elements, never executed.
        assert escaped in dom
        assert "&lt;img src=x onerror=document.body.dataset.xss=1&gt;" in dom
        assert dom.count("<script") == 1, "only the UI's own script element may exist"
        assert "<img" not in dom
        assert "data-xss" not in dom.split("<body", 1)[1].split(">", 1)[0]

        shot = screenshot(svc.base + "/", "ui.png")
        assert shot.stat().st_size > 10_000


def test_ui_sections_and_static_assets_are_self_contained(hostile_db: str) -> None:
    with DbpulseProcess("--postgres", f"shop={hostile_db}", "--interval", "1") as svc:
        status, body = svc.get("/")
        html = body.decode()
        assert status == 200
        # no external assets: every src/href is relative to dbpulse or an in-page anchor
        for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert not re.match(r"^(?:[a-z]+:)?//", ref), ref
        status, css = svc.get("/ui/static/ui.css")
        assert status == 200 and b"@import" not in css and b"url(" not in css
        status, _ = svc.get("/ui/static/../../config.py")
        assert status == 404
        request_headers = {"Accept": "text/html"}
        status, fragment = svc.get("/ui/sections", headers=request_headers)
        assert status == 200 and b'id="overview"' in fragment and b"<html" not in fragment
