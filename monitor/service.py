"""Wires configuration -> pollers -> scheduler -> HTTP server, and runs until a signal."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from collectors.health import poller as health
from collectors.postgres import poller as postgres
from collectors.redis import poller as redis
from monitor.advisor import poller as advisor
from monitor.config import Config, parse_listen
from monitor.core.poller import Poller
from monitor.core.scheduler import Scheduler
from monitor.web.app import make_app
from monitor.web.detail import DETAIL_METRICS
from monitor.web.exposition import Exposition
from monitor.web.trends import RECORDED
from monitor.web.webconfig import WebConfig, load_web_config, ssl_context
from monitor.web.webconfig import middleware as web_middleware

log = logging.getLogger("dbpulse")

SHUTDOWN_SECONDS = 4.0


def build_pollers(config: Config) -> list[Poller]:
    """Every source's pollers, each built by its own folder from its own section."""
    return [
        *postgres.pollers(config.postgres),
        *advisor.pollers(config.advisor, config.postgres),
        *redis.pollers(config.redis),
        *health.pollers(config.health),
    ]


async def serve(config: Config, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set; then stop polling and close every connection."""
    web_config = load_web_config(config.web_config) if config.web_config else WebConfig()
    scheduler = Scheduler(build_pollers(config), history_seconds=config.ui.history_seconds,
                          recorded=(*RECORDED, *DETAIL_METRICS))
    app = make_app(scheduler, Exposition(scheduler), [web_middleware(web_config)])
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    host, port = parse_listen(config.listen)
    tls = ssl_context(web_config)
    site = web.TCPSite(runner, host, port, ssl_context=tls)
    await site.start()
    scheduler.start()
    log.info("dbpulse listening on %s://%s:%d%s, watching %d source(s)", "https" if tls else "http", host, port,
             " with basic auth" if web_config.basic_auth_users else "", len(scheduler.states))
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        try:
            await asyncio.wait_for(
                asyncio.gather(scheduler.stop(), runner.cleanup(), return_exceptions=True), SHUTDOWN_SECONDS
            )
        except TimeoutError:  # an OSError subclass: must not read as "cannot start"
            log.warning("shutdown took over %g s; exiting anyway", SHUTDOWN_SECONDS)


def run(config: Config) -> int:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, stop)

    try:
        asyncio.run(main())
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0
