"""Health poller: one per application base URL; its endpoints are probed concurrently.

An endpoint that is down is data (``dbpulse_health_up 0``), not a failed poll:
the poll itself only fails if it cannot run at all. Every endpoint timeout is
kept below the poll timeout, so a hanging endpoint is cut off by its own
timeout and reported, while the other endpoints and sources go on.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from collectors.base.poller import Poller
from collectors.base.redact import register_secret, register_url_secrets
from collectors.base.settings import resolve_secret
from collectors.health.body import PoolBlock
from collectors.health.probe import ProbeResult, probe
from collectors.health.settings import HealthSettings, HealthTarget
from collectors.health.snapshot import HealthSnapshot

log = logging.getLogger("dbpulse.health")

USER_AGENT = "dbpulse-health-probe"


def pollers(settings: HealthSettings) -> list[Poller]:
    """One poller per application; secret headers resolved from the environment and registered."""
    out: list[Poller] = []
    for target in settings.targets:
        headers = dict(target.headers)
        for header, env in target.headers_env.items():
            headers[header] = resolve_secret(f"health target {target.target}: header {header}", env, None) or ""
        for value in headers.values():
            register_secret(value)
        register_url_secrets(target.url)
        out.append(HealthPoller(target, settings, headers))
    return out


class HealthPoller(Poller):
    source = "health"

    def __init__(self, target: HealthTarget, settings: HealthSettings, headers: dict[str, str] | None = None) -> None:
        self.target = target.target
        self.interval = settings.interval_of(target)
        self.timeout = settings.timeout_of(target)
        self.settings = settings
        self.base_url = target.url
        self.endpoints = settings.endpoints_of(target)
        self._headers = {"User-Agent": USER_AGENT, **(headers if headers is not None else target.headers)}
        self._session: aiohttp.ClientSession | None = None
        self._parse_errors = {e.path: 0 for e in self.endpoints}
        self._oversized = {e.path: 0 for e in self.endpoints}
        self._last_problem: dict[str, str | None] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=len(self.endpoints) + 1, ssl=self.settings.verify_tls)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers,
                                                  timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def poll(self) -> HealthSnapshot:
        session = self._client()
        s = self.settings
        results = list(await asyncio.gather(*(
            probe(session, self.base_url, e, max_body_bytes=s.max_body_bytes, pool_paths=tuple(s.pool_paths),
                  max_components=s.max_components)
            for e in self.endpoints
        )))
        pools: dict[str, PoolBlock] = {}
        for r in results:
            self._parse_errors[r.path] += r.parse_error
            self._oversized[r.path] += r.too_large
            self._report(r)
            for path, block in (r.body.pools if r.body else {}).items():
                pools.setdefault(path, block)  # the first endpoint (in configured order) wins
        return HealthSnapshot(self.target, results, dict(self._parse_errors), dict(self._oversized), pools)

    def _report(self, r: ProbeResult) -> None:
        """One log line when an endpoint's situation changes, not one per poll."""
        problem = r.problem
        if problem != self._last_problem.get(r.path, None):
            if problem:
                log.warning("%s %s: %s", self.target, r.path, problem)
            elif r.path in self._last_problem:
                log.info("%s %s: healthy again", self.target, r.path)
            self._last_problem[r.path] = problem
