"""An application's health endpoints as the UI shows them, in Chromium, served by a real ``dbpulse run``: a
target whose endpoints all answer 500 is failing (not a green "up") in the Sources table and its section's
header; one with nginx's welcome page and a redirect among its endpoints is partly failing, each endpoint
with its HTTP status and where the redirect points (never its query); the log says the same."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from aiohttp import web

from tests.support import DbpulseProcess, serve_in_thread
from tests.web.chromium import dump_dom, element_screenshot

NGINX_WELCOME = "<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body></body></html>"


async def server_error(request: web.Request) -> web.Response:
    return web.Response(text="<h1>500 Internal Server Error</h1>", status=500, content_type="text/html")


async def welcome(request: web.Request) -> web.Response:
    return web.Response(text=NGINX_WELCOME, content_type="text/html")


async def to_login(request: web.Request) -> web.Response:
    raise web.HTTPFound("/sso/login?state=s3cret-state")


async def ready(request: web.Request) -> web.Response:
    return web.json_response({"status": "ready", "is_ready": True})


@pytest.fixture
def apps() -> Iterator[str]:
    app = web.Application()
    for path in ("/broken/health", "/broken/health/live", "/broken/health/ready"):
        app.router.add_get(path, server_error)
    app.router.add_get("/mixed/health", welcome)
    app.router.add_get("/mixed/health/live", to_login)
    app.router.add_get("/mixed/health/ready", ready)
    yield from serve_in_thread(app)


def _row(dom: str, target: str) -> str:
    match = re.search(r"<tr><td>health</td><td><a [^>]*>" + target + r"</a></td>(.*?)</tr>", dom, re.S)
    assert match, dom[:3000]
    return match.group(1)


def _section(dom: str, target: str) -> str:
    start = dom.index(f'id="health-{target}"')
    return dom[start:dom.index("</section>", start)]


def test_failing_endpoints_show_as_failing_with_their_status(apps: str) -> None:
    port = apps.rsplit(":", 1)[1]
    with DbpulseProcess("--health-url", f"broken={apps}/broken", "--health-url", f"mixed={apps}/mixed",
                        "--interval", "2") as svc:
        dom = dump_dom(svc.base + "/")
        element_screenshot(svc.base + "/", "overview", "ui-health-failing.png", height=1500)
        log = svc.log

    broken = _row(dom, "broken")
    assert '<span class="badge bad"' in broken and ">failing</span>" in broken and ">up</span>" not in broken
    assert "/health: HTTP 500 Internal Server Error" in broken
    head = _section(dom, "broken").split("</h2>", 1)[0]
    assert ">failing</span>" in head and "badge bad" in head

    mixed = _row(dom, "mixed")
    assert '<span class="badge warning"' in mixed and ">2 of 3 failing</span>" in mixed
    section = _section(dom, "mixed")
    assert "2 of 3 failing" in section.split("</h2>", 1)[0]
    redirect = f"HTTP 302 Found, redirect to http://127.0.0.1:{port}/sso/login"
    not_health = "HTTP 200 OK, an HTML page (text/html): not a health response"
    assert redirect in section and not_health in section
    assert "s3cret-state" not in dom

    for line in ("broken /health: HTTP 500 Internal Server Error", f"mixed /health/live: {redirect}",
                 f"mixed /health: {not_health}"):
        assert line in log, log
    assert not [line for line in log.splitlines() if "broken" in line and "JSON" in line]  # a 500 is no JSON problem
    assert "s3cret-state" not in log
