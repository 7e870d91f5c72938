"""The HTTP face of dbpulse: /metrics, /healthz, /readyz, the web UI at /, and the advice.

Handlers only read the scheduler's state; they never talk to a database.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import replace

from aiohttp import web
from aiohttp.typedefs import Middleware

from monitor.advisor.findings import AdviceReport
from monitor.advisor.poller import reports_of
from monitor.core.scheduler import Scheduler
from monitor.web import detail, history, history_query, pages
from monitor.web.exposition import Exposition

SCHEDULER: web.AppKey[Scheduler] = web.AppKey("scheduler", Scheduler)
EXPOSITION: web.AppKey[Exposition] = web.AppKey("exposition", Exposition)
HISTORY: web.AppKey[history.HistoryReader] = web.AppKey("history", history.HistoryReader)
# Every page dbpulse serves: nothing but its own stylesheet and script, no inline code, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STATIC_TYPES = {"ui.css": "text/css", "ui.js": "text/javascript"}


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", headers=SECURITY_HEADERS)


async def metrics(request: web.Request) -> web.Response:
    """The body built beforehand for this Accept and Accept-Encoding (gzipped when the scraper takes gzip)."""
    headers = request.headers
    body = await request.app[EXPOSITION].serve(headers.get("Accept", ""), headers.get("Accept-Encoding", ""))
    return web.Response(body=body.data, headers=body.headers)


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
    """The last report of every target, or of ``target``; a target's other databases' each its own
    (``<target>/<database>``)."""
    return [report for state in scheduler.states for report in reports_of(state.snapshot)
            if target in (None, report.target)]


def _advised_targets(scheduler: Scheduler) -> list[str]:
    """The advisor's targets, and the databases it advises of those that watch several."""
    out = []
    for s in scheduler.states:
        if s.poller.source == "advisor":
            out.append(s.poller.target)
            out.extend(r.target for r in reports_of(s.snapshot) if r.target != s.poller.target)
    return out


def _no_report(scheduler: Scheduler, target: str) -> str:
    """Why ``target`` has no report: it is not one the advisor runs on, or its first run has not ended."""
    known = _advised_targets(scheduler)
    if target not in known:
        return f"unknown target {target!r}; the advisor runs on: {', '.join(known) or 'no target'}"
    return f"no advice for {target} yet: the advisor's first run has not finished"


async def advice_json(request: web.Request) -> web.Response:
    """The last advice report of every target (a list), or of one with ``?target=NAME`` (an object)."""
    scheduler = request.app[SCHEDULER]
    target = request.query.get("target")
    reports = _reports(scheduler, target)
    if target is None:
        return web.json_response([r.to_json_dict() for r in reports])
    if not reports:
        return web.json_response({"error": _no_report(scheduler, target)}, status=404)
    return web.json_response(reports[0].to_json_dict())


async def advice_html(request: web.Request) -> web.Response:
    """The report page of one target (``?target=NAME``, or the only one), else links to each."""
    scheduler = request.app[SCHEDULER]
    target = request.query.get("target")
    reports = _reports(scheduler, target)
    if len(reports) == 1:
        return _html(pages.render_advice_report(reports[0]))
    if target is not None:
        return web.Response(text=_no_report(scheduler, target) + "\n", status=404)
    return _html(pages.render_advice_index(_advised_targets(scheduler)))


async def index(request: web.Request) -> web.Response:
    scheduler = request.app[SCHEDULER]
    frames, shown = await request.app[HISTORY].frames(scheduler.states, request.query.get("range"), time.time())
    return _html(pages.render_index(scheduler, frames, shown))


async def sections(request: web.Request) -> web.Response:
    """The live part of the page, which ui.js re-fetches (with the page's ``?range=``)."""
    scheduler = request.app[SCHEDULER]
    frames, shown = await request.app[HISTORY].frames(scheduler.states, request.query.get("range"), time.time())
    return _html(pages.render_sections(scheduler, frames=frames, shown=shown))


def _not_found(request: web.Request, what: str) -> web.Response:
    return _html(pages.render_not_found(what, detail.root_of(request.raw_path)), status=404)


async def statement_page(request: web.Request) -> web.Response:
    """``/statements/<target>/<queryid>`` (parts percent-encoded: ``detail.statement_path``)."""
    parsed = detail.parse_statement_path(request.raw_path)
    if parsed is None:
        return _not_found(request, "not a statement page: /statements/<target>/<queryid>")
    target, queryid = parsed
    now = time.time()
    page = detail.statement_page(request.app[SCHEDULER].states, target, queryid, now)
    if page is None:
        return _not_found(request, f"no statement {queryid} on PostgreSQL target {target}")
    pg_target = page.source.state.poller.target  # <target>/<database>: its series are the target's
    queries = history_query.statement_queries(pg_target, queryid, page.datname)
    charts, shown = await request.app[HISTORY].charts(page.charts, queries, request.query.get("range"), now, pg_target)
    return _html(pages.render_statement_page(replace(page, charts=charts), detail.root_of(request.raw_path),
                                             shown=shown))


async def table_page(request: web.Request) -> web.Response:
    """``/tables/<target>/<schema>.<table>`` (parts percent-encoded: ``detail.table_path``)."""
    parsed = detail.parse_table_path(request.raw_path)
    if parsed is None:
        return _not_found(request, "not a table page: /tables/<target>/<schema>.<table>")
    target, name = parsed
    now = time.time()
    page = detail.table_page(request.app[SCHEDULER].states, target, name, now)
    if page is None:
        return _not_found(request, f"no table {name} on PostgreSQL target {target}")
    pg_target = page.source.state.poller.target  # <target>/<database>: its series are the target's
    queries = history_query.table_queries(pg_target, page.schema, page.table, page.datname)
    charts, shown = await request.app[HISTORY].charts(page.charts, queries, request.query.get("range"), now, pg_target)
    return _html(pages.render_table_page(replace(page, charts=charts), detail.root_of(request.raw_path),
                                         shown=shown))


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC_TYPES:
        raise web.HTTPNotFound()
    return web.Response(text=(pages.STATIC / name).read_text(encoding="utf-8"), content_type=STATIC_TYPES[name],
                        charset="utf-8", headers={**SECURITY_HEADERS, "Cache-Control": "max-age=300"})


async def _close(app: web.Application) -> None:
    await app[EXPOSITION].close()
    await app[HISTORY].close()


def make_app(scheduler: Scheduler, exposition: Exposition, middlewares: Iterable[Middleware] = (),
             reader: history.HistoryReader | None = None) -> web.Application:
    """The service's routes; ``reader`` draws ranges from Prometheus (``prometheus.url``), else the ring only."""
    app = web.Application(middlewares=list(middlewares))
    app[SCHEDULER] = scheduler
    app[EXPOSITION] = exposition
    app[HISTORY] = reader or history.HistoryReader(None)
    app.on_cleanup.append(_close)
    app.router.add_get("/", index)
    app.router.add_get("/ui/sections", sections)
    app.router.add_get("/ui/static/{name}", static)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/advice", advice_json)
    app.router.add_get("/advice.html", advice_html)
    app.router.add_get("/statements/{rest:.+}", statement_page)
    app.router.add_get("/tables/{rest:.+}", table_page)
    return app
