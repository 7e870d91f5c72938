"""One psycopg connection kept between polls, for the sources that talk the PostgreSQL protocol.

A poll takes the connection out (``take``), so a poll abandoned at its deadline never shares it
with the next one, and gives it back when it finished cleanly (``give_back``). A connection that
failed or was abandoned is closed (``close_quietly``), never reused: it may be half way through a
reply.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psycopg

Conn = psycopg.AsyncConnection[dict[str, Any]]


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
