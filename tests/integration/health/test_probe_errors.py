"""A probe that gets no response says why in plain words ("connection refused"), not with the exception's
class name ("ClientConnectorError"), against real sockets."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from collectors.health.probe import ProbeResult, connect_error, probe
from collectors.health.settings import HealthEndpoint
from harness.servers import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _probe(url: str) -> ProbeResult:
    async with aiohttp.ClientSession() as session:
        return await probe(session, url, HealthEndpoint(path="/health", timeout=5), max_body_bytes=4096,
                           pool_paths=(), max_components=5)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_nothing_listening_is_connection_refused() -> None:
    result = await _probe(f"http://127.0.0.1:{free_port()}")
    assert not result.reachable
    assert result.error == "connection refused"


async def test_a_server_that_hangs_up_says_so(serve: Callable[[Handler], Awaitable[int]]) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.close()

    port = await serve(hang_up)
    result = await _probe(f"http://127.0.0.1:{port}")
    assert result.error == "server closed the connection without a response"


async def test_https_to_a_plain_http_server_is_a_tls_failure(serve: Callable[[Handler], Awaitable[int]]) -> None:
    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    port = await serve(plain)
    result = await _probe(f"https://127.0.0.1:{port}")
    assert result.error == "TLS handshake failed"


def test_a_name_that_does_not_resolve() -> None:
    """Built by hand: whether a resolver answers quickly depends on the machine's network."""
    key = ConnectionKey("nohost.invalid", 80, False, True, None, None, None)
    error = aiohttp.ClientConnectorDNSError(key, socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    assert connect_error(error) == "host name not found"
