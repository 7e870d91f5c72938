"""Saturating the demo's PgBouncer on demand, so the pool chain shows the queue move to PgBouncer's pool.

``saturate`` runs more clients than PgBouncer's ``pool_size`` against it, each a loop of: connect, hold a
server for ``hold`` seconds (``pg_sleep`` in a transaction), disconnect. Every server of the pool is taken;
the clients beyond it wait in PgBouncer (``cl_waiting``, ``maxwait``), each served in turn as another lets
its server go, so the queue keeps moving rather than hanging. The application's own requests queue behind
them too. ``python -m demo --saturate`` starts with it on; ``kill -USR1 <demo pid>`` turns it on and off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import psycopg

from demo.load import until_stopped

log = logging.getLogger("dbpulse.demo.saturate")

APPLICATION_NAME = "demo-saturate"  # how the clients show in PgBouncer's and PostgreSQL's counts
EXTRA_CLIENTS = 4  # beyond pool_size: those that wait


async def _client(dsn: str, hold: float) -> None:
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(dsn, application_name=APPLICATION_NAME, autocommit=False)
        except psycopg.OperationalError as exc:  # PgBouncer going away (the demo stopping): back off
            log.debug("saturate: cannot connect: %s", exc)
            await asyncio.sleep(1.0)
            continue
        try:
            await conn.execute("SELECT pg_sleep(%s)", (hold,))  # holds a server: waits for one first
            await conn.rollback()
        except psycopg.Error as exc:
            log.debug("saturate: %s", exc)
        finally:
            with contextlib.suppress(Exception):
                await conn.close()


async def saturate(dsn: str, pool_size: int, stop: asyncio.Event, hold: float = 1.0,
                   extra: int = EXTRA_CLIENTS) -> None:
    """``pool_size + extra`` clients on ``dsn`` (a database behind PgBouncer) until ``stop`` is set."""
    await until_stopped(stop, [asyncio.create_task(_client(dsn, hold), name=f"saturate-{i}")
                               for i in range(pool_size + extra)])


class Saturation:
    """The saturating clients, turned on and off (``toggle``: the demo's SIGUSR1)."""

    def __init__(self, dsn: str, pool_size: int, say: Callable[[str], None] = print) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self._say = say
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def on(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.on:
            return
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(saturate(self.dsn, self.pool_size, self._stop), name="saturate")
        self._tell(f"demo: saturating PgBouncer: {self.pool_size + EXTRA_CLIENTS} clients ({APPLICATION_NAME}) "
                   f"for {self.pool_size} servers; the pool chain marks PgBouncer's pool (kill -USR1 again stops)")

    async def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    def toggle(self) -> None:
        if self.on:
            asyncio.get_running_loop().create_task(self.stop())
            self._tell("demo: saturation stopped")
        else:
            self.start()

    def _tell(self, message: str) -> None:
        self._say(message)
