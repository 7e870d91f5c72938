"""Wires configuration -> pollers -> scheduler -> HTTP server, and runs until a signal."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket

from aiohttp import web

from collectors.base.poller import Poller
from collectors.registry import sources
from monitor.advisor import poller as advisor
from monitor.config import Config, parse_listen
from monitor.core.memory import limit_malloc_arenas
from monitor.core.scheduler import Scheduler
from monitor.web.app import make_app
from monitor.web.detail import DETAIL_METRICS
from monitor.web.exposition import Exposition
from monitor.web.history import HistoryCollector, HistoryReader, PrometheusClient
from monitor.web.trends import RECORDED
from monitor.web.webconfig import WebConfig, ssl_context
from monitor.web.webconfig import middlewares as web_middlewares

log = logging.getLogger("dbpulse")

SHUTDOWN_SECONDS = 4.0


class CannotListen(Exception):
    """The HTTP server cannot bind the listen address (the message names it)."""


def _why(exc: OSError) -> str:
    """Why a bind failed, in plain words (the OS's own text in parentheses)."""
    text = exc.strerror or str(exc)
    if isinstance(exc, socket.gaierror):
        return f"the host name does not resolve ({text})"
    reasons = {errno.EADDRINUSE: "the port is already in use", errno.EADDRNOTAVAIL: "the address is not one of "
               "this machine's", errno.EACCES: "permission denied (ports below 1024 need privileges)"}
    return f"{reasons[exc.errno]} ({text})" if exc.errno in reasons else text


def build_pollers(config: Config) -> list[Poller]:
    """Every registered source's pollers, each built by its own folder from its own section; then the advisor's
    (one per PostgreSQL target: it picks its source's section itself)."""
    return [*(p for spec in sources() for p in spec.pollers(config.section(spec.name))),
            *advisor.pollers(config.advisor, config.sections())]


async def serve(config: Config, web_config: WebConfig, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set; then stop polling and close every connection."""
    scheduler = Scheduler(build_pollers(config), history_seconds=config.ui.history_seconds,
                          recorded=(*RECORDED, *DETAIL_METRICS))
    client = PrometheusClient(config.prometheus) if config.prometheus.url else None
    reader = HistoryReader(client, config.ui.history_seconds)
    counted = HistoryCollector(reader, (s.poller.target for s in scheduler.states))
    app = make_app(scheduler, Exposition(scheduler, [counted]), web_middlewares(web_config), reader)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    host, port = parse_listen(config.listen)
    tls = ssl_context(web_config)
    site = web.TCPSite(runner, host, port, ssl_context=tls)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise CannotListen(f"cannot listen on {config.listen}: {_why(exc)}") from None
    scheduler.start()
    log.info("dbpulse listening on %s://%s:%d%s, watching %d source(s)", "https" if tls else "http", host, port,
             " with basic auth" if web_config.basic_auth_users else "", len(scheduler.states))
    if client is not None:
        log.info("the UI's charts read ranges beyond %s from Prometheus at %s", reader.kept, client.shown)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        try:
            async with asyncio.timeout(SHUTDOWN_SECONDS):  # not wait_for: it can drop a cancellation on 3.11
                await asyncio.gather(scheduler.stop(), runner.cleanup(), return_exceptions=True)
        except TimeoutError:  # an OSError subclass: must not read as "cannot start"
            log.warning("shutdown took over %g s; exiting anyway", SHUTDOWN_SECONDS)


def run(config: Config, web_config: WebConfig) -> int:
    limit_malloc_arenas()  # before the first thread (memory.py)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, web_config, stop)

    try:
        asyncio.run(main())
    except CannotListen as exc:
        log.error("%s", exc)
        return 1
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0
