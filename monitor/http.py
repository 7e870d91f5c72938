"""The HTTP face of dbpulse: /metrics, /healthz, /readyz.

Handlers only read the scheduler's state; they never talk to a database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from html import escape
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Middleware

from monitor.advisor.findings import AdviceReport
from monitor.advisor.poller import AdviceSnapshot
from monitor.advisor.report import render_html
from monitor.exporter import Exposition
from monitor.scheduler import Scheduler

SCHEDULER: web.AppKey[Scheduler] = web.AppKey("scheduler", Scheduler)
EXPOSITION: web.AppKey[Exposition] = web.AppKey("exposition", Exposition)

async def metrics(request: web.Request) -> web.Response:
    body, content_type = await request.app[EXPOSITION].render(request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type})


async def healthz(request: web.Request) -> web.Response:
    """Liveness: every poll loop started a poll recently. A down database does not fail it."""
    # /healthz needs no credentials (kubelet probes), so it names no target; /readyz has the detail.
    stalled = request.app[SCHEDULER].stalled()
    if stalled:
        return web.json_response({"status": "stalled", "stalled_sources": len(stalled)}, status=503)
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: configuration loaded and every source polled at least once."""
    scheduler = request.app[SCHEDULER]
    sources = [
        {"source": s.poller.source, "target": s.poller.target, "polled": s.polls > 0, "up": s.up,
         "error": s.last_error}
        for s in scheduler.states
    ]
    ready = scheduler.ready()
    return web.Response(
        text=json.dumps({"status": "ready" if ready else "starting", "sources": sources}),
        status=200 if ready else 503, content_type="application/json",
    )


def _reports(scheduler: Scheduler, target: str | None) -> list[AdviceReport]:
    return [
        state.snapshot.report for state in scheduler.states
        if isinstance(state.snapshot, AdviceSnapshot) and target in (None, state.poller.target)
    ]


async def advice_json(request: web.Request) -> web.Response:
    """The last advice report of every target (a list), or of one with ``?target=NAME`` (an object)."""
    target = request.query.get("target")
    reports = _reports(request.app[SCHEDULER], target)
    if target is None:
        return web.json_response([r.to_json_dict() for r in reports])
    if not reports:
        return web.json_response({"error": "no advice for this target yet"}, status=404)
    return web.json_response(reports[0].to_json_dict())


async def advice_html(request: web.Request) -> web.Response:
    """The report page of one target (``?target=NAME``, or the only one), else links to each."""
    scheduler = request.app[SCHEDULER]
    target = request.query.get("target")
    reports = _reports(scheduler, target)
    if len(reports) == 1:
        return web.Response(text=render_html(reports[0]), content_type="text/html")
    if target is not None:
        return web.Response(text="no advice for this target yet\n", status=404)
    targets = [s.poller.target for s in scheduler.states if s.poller.source == "advisor"]
    items = "".join(
        f'<li><a href="advice.html?target={quote(t)}">{escape(t)}</a></li>' for t in targets
    ) or "<li>no advisor runs yet (the advisor runs every advisor.interval seconds)</li>"
    page = f'<!doctype html><meta charset="utf-8"><title>dbpulse advice</title><h1>Index advice</h1><ul>{items}</ul>'
    return web.Response(text=page, content_type="text/html")


def make_app(scheduler: Scheduler, exposition: Exposition,
             middlewares: Iterable[Middleware] = ()) -> web.Application:
    app = web.Application(middlewares=list(middlewares))
    app[SCHEDULER] = scheduler
    app[EXPOSITION] = exposition
    from monitor.web.ui import add_ui_routes  # the built-in web UI at / (monitor/web/)
    add_ui_routes(app)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/advice", advice_json)
    app.router.add_get("/advice.html", advice_html)
    return app
