"""The demo's load generator: a few concurrent clients calling the demo application.

The mix is weighted towards the requests that carry the planted problems
(the N+1 list, lookups by external id, selectin loads through the unindexed
foreign key), so the advisor has evidence within its first runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from demo.app import SIZES, external_id

log = logging.getLogger("dbpulse.demo.load")

# (weight, name); the path is built per request
MIX: tuple[tuple[int, str], ...] = (
    (30, "list_quotes"),
    (25, "payment_by_external_id"),
    (12, "list_quotes_detailed"),
    (12, "get_quote"),
    (15, "dashboard"),
    (6, "create_quote"),
)


@dataclass
class LoadStats:
    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    @property
    def total(self) -> int:
        return sum(self.requests.values())


def _request(rng: random.Random, base: str, sizes: dict[str, int]) -> tuple[str, str, str]:
    name = rng.choices([n for _, n in MIX], weights=[w for w, _ in MIX])[0]
    tenant = rng.randint(1, sizes["tenants"])
    if name == "list_quotes":
        return name, "GET", f"{base}/api/v1/tenants/{tenant}/quotes?limit=20"
    if name == "payment_by_external_id":
        return name, "GET", f"{base}/api/v1/payments/by-external-id/{external_id(rng.randint(1, sizes['payments']))}"
    if name == "list_quotes_detailed":
        status = rng.choice(["draft", "sent", "accepted", "rejected"])
        return name, "GET", f"{base}/api/v1/tenants/{tenant}/quotes/detailed?status={status}"
    if name == "get_quote":
        return name, "GET", f"{base}/api/v1/quotes/{rng.randint(1, sizes['quotes'])}"
    if name == "dashboard":
        return name, "GET", f"{base}/api/v1/tenants/{tenant}/dashboard"
    return name, "POST", f"{base}/api/v1/tenants/{tenant}/quotes"


async def _client(session: aiohttp.ClientSession, base: str, sizes: dict[str, int], stats: LoadStats,
                  pause: float, seed: int) -> None:
    rng = random.Random(seed)
    while True:
        name, method, url = _request(rng, base, sizes)
        try:
            async with session.request(method, url) as response:
                await response.read()
                if response.status >= 500:
                    stats.errors[name] += 1
        except (aiohttp.ClientError, TimeoutError):
            stats.errors[name] += 1
            await asyncio.sleep(0.5)  # the app is going away, or overloaded: back off
        stats.requests[name] += 1
        await asyncio.sleep(pause * rng.uniform(0.5, 1.5))


async def run_load(base: str, stop: asyncio.Event, clients: int = 4, pause: float = 0.02,
                   sizes: dict[str, int] | None = None, stats: LoadStats | None = None) -> LoadStats:
    """Drive ``base`` with ``clients`` concurrent loops until ``stop`` is set."""
    stats = stats or LoadStats()
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await until_stopped(stop, [asyncio.create_task(_client(session, base, sizes or SIZES, stats, pause, seed))
                                   for seed in range(clients)])
    return stats


async def until_stopped(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Wait until ``stop`` is set (or this is cancelled), then cancel ``tasks`` and wait for them to end."""
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
