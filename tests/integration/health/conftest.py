"""A real aiohttp application shaped like the seeds' health endpoints, plus misbehaving ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from harness.servers import free_port

READY = {
    "status": "ready", "timestamp": "2025-11-14T10:00:00", "is_ready": True,
    "components": {"database": {"status": "healthy", "database": "connected"},
                   "redis": {"status": "healthy", "redis": "connected", "memory_used": "50M"}},
    "pool": {"size": 20, "max_overflow": 10, "checked_out": 24, "checked_in": 0, "overflow": 4},
}
NOT_READY = {
    "status": "not_ready", "is_ready": False,
    "components": {"database": {"status": "healthy"}, "redis": {"status": "unhealthy", "error": "refused"}},
}


def json_route(body: Any, status: int = 200, delay: float = 0.0) -> Any:
    async def handler(request: web.Request) -> web.Response:
        if delay:
            await asyncio.sleep(delay)
        return web.json_response(body, status=status)
    return handler


async def hang(request: web.Request) -> web.Response:
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


async def text(request: web.Request) -> web.Response:
    return web.Response(text="OK")


async def huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    await response.write(b'{"status": "healthy", "padding": "')
    for _ in range(64):  # 4 MiB, far above the limit
        await response.write(b"x" * 65536)
    await response.write(b'"}')
    return response


# What nginx serves before the application is routed: a 200 that is not a health response.
NGINX_WELCOME = """<!DOCTYPE html>
<html><head><title>Welcome to nginx!</title></head>
<body><h1>Welcome to nginx!</h1><p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p></body></html>
"""


async def nginx_welcome(request: web.Request) -> web.Response:
    return web.Response(text=NGINX_WELCOME, content_type="text/html")


async def server_error(request: web.Request) -> web.Response:
    return web.Response(text="<html><body><h1>500 Internal Server Error</h1></body></html>", status=500,
                        content_type="text/html")


async def to_login(request: web.Request) -> web.Response:
    """An SSO proxy in front of the application: its query carries state that must never be shown."""
    raise web.HTTPFound("/login?next=/health&state=s3cret-state")


def together() -> Any:
    """Two requests that only answer once both have arrived: probed one after the other, the first
    would wait for the second until its timeout."""
    arrived: list[web.Request] = []
    both = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        arrived.append(request)
        if len(arrived) >= 2:
            both.set()
        await both.wait()
        return web.json_response({"status": "ok"})
    return handler


def build_app() -> web.Application:
    app = web.Application()
    meet = together()
    app.router.add_get("/together/a", meet)
    app.router.add_get("/together/b", meet)
    app.router.add_get("/health", json_route({"status": "healthy", "service": "api", "version": "1.0.0"}))
    app.router.add_get("/health/live", json_route({"status": "alive", "service": "api"}))
    app.router.add_get("/health/ready", json_route(READY))
    app.router.add_get("/down/health/ready", json_route(NOT_READY, status=503))
    app.router.add_get("/slow", json_route({"status": "ok"}, delay=0.3))
    app.router.add_get("/hang", hang)
    app.router.add_get("/text", text)
    app.router.add_get("/huge", huge)
    app.router.add_get("/nginx", nginx_welcome)
    app.router.add_get("/error", server_error)
    app.router.add_get("/moved", to_login)
    for path in ("/broken/health", "/broken/health/live", "/broken/health/ready"):
        app.router.add_get(path, server_error)
    return app


@pytest.fixture
async def app_url() -> AsyncIterator[str]:
    runner = web.AppRunner(build_app(), shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()
