"""One psycopg connection kept between polls, for the sources that talk the PostgreSQL protocol.

A poll takes the connection out (``take``), so a poll abandoned at its deadline never shares it
with the next one, and gives it back when it finished cleanly (``give_back``). A connection that
failed or was abandoned is closed (``close_quietly``), not reused, unless its source knows it is
safe (``KeptConnectionPoller._reusable_after``): it may be half way through a reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import abstractmethod
from typing import Any, Generic, TypeVar

import psycopg

from collectors.base.poller import Poller, Snapshot
from collectors.base.settings import PollSettings, TargetBase

Conn = psycopg.AsyncConnection[dict[str, Any]]
S = TypeVar("S", bound=Snapshot)


async def close_quietly(conn: psycopg.AsyncConnection[Any]) -> None:
    """Close a connection without waiting on the server; a broken one may fail to close: it is gone either way.
    (asyncio.timeout, not wait_for: Python 3.11's wait_for can drop a cancellation of the caller that arrives
    just as the close ends.)"""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1.0):
            await conn.close()


def close_now(conn: psycopg.AsyncConnection[Any]) -> None:
    """Close a connection's socket at once, awaiting nothing (libpq's PQfinish: a Terminate message, then
    close): for a task being cancelled, or a connection whose event loop has ended."""
    with contextlib.suppress(Exception):
        conn.pgconn.finish()


class KeptConnection:
    def __init__(self) -> None:
        self._conn: Conn | None = None

    async def take(self) -> Conn | None:
        """The kept connection if it is still usable (it is then out of the keeper), else None."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if conn is not None:
            await close_quietly(conn)
        return None

    async def give_back(self, conn: Conn) -> None:
        """Keep the connection for the next poll, unless a newer poll has already opened one."""
        if self._conn is None:
            self._conn = conn
        elif self._conn is not conn:
            await close_quietly(conn)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await close_quietly(conn)


class KeptConnectionPoller(Poller, Generic[S]):
    """A poller that reads its target over one kept connection: each poll checks it out, reads (``_read``) and
    gives it back, or closes it after a failure; a new one is made (``_connect``) when none is kept."""

    def __init__(self, target: TargetBase, settings: PollSettings) -> None:
        self.target = target.target
        self.interval = settings.interval_of(target)
        self.timeout = settings.timeout_of(target)
        self._kept = KeptConnection()
        self._poll_started = 0.0  # time.monotonic() when the running poll began: its deadline is this + timeout

    @abstractmethod
    async def _connect(self) -> Conn:
        """A new connection to the target."""

    @abstractmethod
    async def _read(self, conn: Conn) -> S:
        """One poll's reads over ``conn``."""

    def _reusable_after(self, conn: Conn, exc: BaseException) -> bool:
        """Whether ``conn`` may serve the next poll after this one failed with ``exc``. Not by default: a
        command may be half read (abandoned at the deadline), so the connection cannot be trusted."""
        return False

    async def _checkout(self) -> Conn:
        """The kept connection, taken out of the poller for this poll (see ``Poller.poll``), or a new one."""
        conn = await self._kept.take()
        return conn if conn is not None else await self._connect()

    async def poll(self) -> S:
        self._poll_started = time.monotonic()
        conn = await self._checkout()
        try:
            snapshot = await self._read(conn)
        except BaseException as exc:
            if self._reusable_after(conn, exc):
                await self._kept.give_back(conn)
            else:
                await close_quietly(conn)  # the next poll connects afresh
            raise
        await self._kept.give_back(conn)
        return snapshot

    async def close(self) -> None:
        await self._kept.close()
