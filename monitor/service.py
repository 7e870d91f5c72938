"""Wires configuration -> pollers -> scheduler -> HTTP server, and runs until a signal."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from collectors.health.poller import HealthOptions, HealthPoller
from collectors.health.probe import Endpoint
from collectors.postgres.poller import PostgresOptions, PostgresPoller
from collectors.redis.poller import RedisOptions, RedisPoller
from collectors.redis.prefixes import PrefixRules
from collectors.redis.sampling import SamplingOptions
from monitor.advisor.advisor import Advisor
from monitor.advisor.poller import AdvisorPoller
from monitor.config import Config, PollSettings, parse_listen, resolve_secret
from monitor.exporter import Exposition
from monitor.http import make_app
from monitor.poller import Poller
from monitor.redact import register_dsn_secrets, register_secret, register_url_secrets
from monitor.scheduler import Scheduler
from monitor.webconfig import WebConfig, load_web_config, ssl_context
from monitor.webconfig import middleware as web_middleware

log = logging.getLogger("dbpulse")

SHUTDOWN_SECONDS = 4.0


def build_pollers(config: Config) -> list[Poller]:
    return postgres_pollers(config) + redis_pollers(config) + health_pollers(config)


def postgres_pollers(config: Config) -> list[Poller]:
    """One statistics poller per PostgreSQL target, and one advisor poller unless disabled."""
    pg, adv = config.postgres, config.advisor
    options = PostgresOptions(
        top_statements=pg.top_statements, top_tables=pg.top_tables, top_indexes=pg.top_indexes,
        top_applications=pg.top_applications, statement_text_info=pg.statement_text_info,
        statement_text_length=pg.statement_text_length,
        app_pools=tuple((p.application_name, p.capacity) for p in pg.app_pools),
        size_interval=pg.size_interval,
    )
    settings = adv.settings()
    pollers: list[Poller] = []
    for t in pg.targets:
        interval, timeout = _interval_timeout(pg, t.interval, t.timeout)
        password = resolve_secret(f"postgres target {t.target}", t.password_env, t.password_file)
        register_secret(password)
        register_dsn_secrets(t.dsn)
        pollers.append(PostgresPoller(t.target, t.dsn, interval, timeout, options, password))
        if adv.enabled:
            advisor = Advisor(t.dsn, t.target, settings, password=password)
            pollers.append(AdvisorPoller(advisor, adv.interval, adv.effective_timeout))
    return pollers


def _interval_timeout(settings: PollSettings, interval: float | None, timeout: float | None) -> tuple[float, float]:
    interval = interval or settings.interval
    if timeout and timeout < interval:
        return interval, timeout
    if settings.timeout and settings.timeout < interval:
        return interval, settings.timeout
    return interval, round(interval * 0.8, 3)


def redis_pollers(config: Config) -> list[Poller]:
    rs = config.redis
    sampling = SamplingOptions(
        budget_seconds=rs.sample_budget_ms / 1000, max_keys=rs.sample_max_keys, scan_count=rs.scan_count,
        top_prefixes=rs.top_prefixes,
        rules=PrefixRules(tuple(rs.prefixes), rs.prefix_depth, rs.prefix_separator),
    ) if rs.sampling else None
    pollers: list[Poller] = []
    for t in rs.targets:
        interval, timeout = _interval_timeout(rs, t.interval, t.timeout)
        password = resolve_secret(f"redis target {t.target}", t.password_env, t.password_file)
        register_secret(password)
        register_url_secrets(t.url)
        queues = tuple(dict.fromkeys([*rs.queues, *t.queues]))
        pollers.append(RedisPoller(t.target, t.url, interval, timeout, RedisOptions(sampling, queues),
                                   username=t.username, password=password))
    return pollers


def health_pollers(config: Config) -> list[Poller]:
    hs = config.health
    options = HealthOptions(max_body_bytes=hs.max_body_bytes, max_components=hs.max_components,
                            pool_paths=tuple(hs.pool_paths), verify_tls=hs.verify_tls)
    pollers: list[Poller] = []
    for t in hs.targets:
        interval, timeout = _interval_timeout(hs, t.interval, t.timeout)
        headers = dict(t.headers)
        for header, env in t.headers_env.items():
            headers[header] = resolve_secret(f"health target {t.target}: header {header}", env, None) or ""
        for value in headers.values():
            register_secret(value)
        register_url_secrets(t.url)
        endpoints = [Endpoint(e.path, e.timeout or hs.endpoint_timeout, e.json_body)
                     for e in (t.endpoints if t.endpoints is not None else hs.endpoints)]
        pollers.append(HealthPoller(t.target, t.url, endpoints, interval, timeout, options, headers))
    return pollers


async def serve(config: Config, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set; then stop polling and close every connection."""
    web_config = load_web_config(config.web_config) if config.web_config else WebConfig()
    scheduler = Scheduler(build_pollers(config))
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
