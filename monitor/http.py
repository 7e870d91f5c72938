"""The HTTP face of dbpulse: /metrics, /healthz, /readyz.

Handlers only read the scheduler's state; they never talk to a database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from monitor import __version__
from monitor.scheduler import Scheduler

SCHEDULER: web.AppKey[Scheduler] = web.AppKey("scheduler", Scheduler)
REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("registry", CollectorRegistry)

INDEX = """<!doctype html><html><head><meta charset="utf-8"><title>dbpulse</title></head>
<body><h1>dbpulse {version}</h1><ul>
<li><a href="metrics">/metrics</a> Prometheus metrics</li>
<li><a href="healthz">/healthz</a> liveness</li>
<li><a href="readyz">/readyz</a> readiness</li>
</ul></body></html>"""


async def metrics(request: web.Request) -> web.Response:
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": content_type})


async def healthz(request: web.Request) -> web.Response:
    """Liveness: every poll loop started a poll recently. A down database does not fail it."""
    stalled = request.app[SCHEDULER].stalled()
    if stalled:
        names = [f"{s.poller.source}/{s.poller.target}" for s in stalled]
        return web.json_response({"status": "stalled", "stalled": names}, status=503)
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


async def index(request: web.Request) -> web.Response:
    return web.Response(text=INDEX.format(version=__version__), content_type="text/html")


def make_app(scheduler: Scheduler, registry: CollectorRegistry,
             middlewares: Iterable[Middleware] = ()) -> web.Application:
    app = web.Application(middlewares=list(middlewares))
    app[SCHEDULER] = scheduler
    app[REGISTRY] = registry
    from monitor.web.ui import add_ui_routes  # the built-in web UI at / (monitor/web/)
    add_ui_routes(app)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
