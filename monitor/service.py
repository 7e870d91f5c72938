"""Wires configuration -> pollers -> scheduler -> HTTP server, and runs until a signal."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from collectors.postgres.poller import PostgresOptions, PostgresPoller
from monitor.config import Config, parse_listen, resolve_password
from monitor.exporter import make_registry
from monitor.http import make_app
from monitor.poller import Poller
from monitor.redact import register_secret
from monitor.scheduler import Scheduler

log = logging.getLogger("dbpulse")

SHUTDOWN_SECONDS = 4.0


def build_pollers(config: Config) -> list[Poller]:
    pg = config.postgres
    options = PostgresOptions(
        top_statements=pg.top_statements, top_tables=pg.top_tables, top_indexes=pg.top_indexes,
        top_applications=pg.top_applications, statement_text_info=pg.statement_text_info,
        statement_text_length=pg.statement_text_length,
        app_pools=tuple((p.application_name, p.capacity) for p in pg.app_pools),
    )
    pollers: list[Poller] = []
    for t in pg.targets:
        interval = t.interval or pg.interval
        timeout = t.timeout or (pg.timeout if pg.timeout and pg.timeout < interval else interval * 0.8)
        password = resolve_password(t)
        register_secret(password)
        pollers.append(PostgresPoller(t.target, t.dsn, interval, timeout, options, password))
    return pollers


async def serve(config: Config, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set; then stop polling and close every connection."""
    scheduler = Scheduler(build_pollers(config))
    app = make_app(scheduler, make_registry(scheduler))
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    host, port = parse_listen(config.listen)
    site = web.TCPSite(runner, host, port)
    await site.start()
    scheduler.start()
    log.info("dbpulse listening on http://%s:%d, watching %d source(s)", host, port, len(scheduler.states))
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await asyncio.wait_for(
            asyncio.gather(scheduler.stop(), runner.cleanup(), return_exceptions=True), SHUTDOWN_SECONDS
        )


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
