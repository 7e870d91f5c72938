"""One HTTP probe: bounded in time and in body size; failures are results, not exceptions."""

from __future__ import annotations

import asyncio
import errno
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from collectors.health.body import BodyInfo, interpret
from collectors.health.settings import HealthEndpoint


@dataclass(frozen=True)
class ProbeResult:
    path: str
    reachable: bool  # an HTTP response arrived within the timeout (tells down from not ready)
    status_code: int | None
    duration: float
    error: str | None = None  # "timeout", "connection refused"... when not reachable
    body: BodyInfo | None = None
    parse_error: bool = False  # JSON was expected and the body was not JSON
    too_large: bool = False  # the body exceeded the size limit and was not parsed

    @property
    def up(self) -> bool:
        return self.reachable and self.status_code is not None and 200 <= self.status_code < 300


async def _read_limited(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(16384):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"", True  # stop reading: the connection is released, not drained
    return b"".join(chunks), False


_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
}


def connect_error(exc: BaseException) -> str:
    """What failed, in plain words: "connection refused", not the exception's class name."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        reason = getattr(exc.certificate_error, "verify_message", None) or exc.certificate_error
        return f"TLS certificate rejected ({reason})"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "TLS handshake failed"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "host name not found"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server closed the connection without a response"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "response body cut short"
    if isinstance(exc, aiohttp.InvalidURL):
        return "invalid URL"
    os_error = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
    if isinstance(os_error, OSError) and os_error.errno in _ERRNO_WORDS:
        return _ERRNO_WORDS[os_error.errno]
    if isinstance(os_error, OSError) and os_error.strerror:
        return os_error.strerror.lower()
    return str(exc) or type(exc).__name__


def _parse(raw: bytes) -> tuple[Any, bool]:
    try:
        return json.loads(raw), False
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None, True


async def probe(
    session: aiohttp.ClientSession, base_url: str, endpoint: HealthEndpoint, *, max_body_bytes: int,
    pool_paths: tuple[str, ...], max_components: int, headers: dict[str, str] | None = None,
) -> ProbeResult:
    """GET one endpoint within ``endpoint.timeout`` (set: see ``HealthSettings.endpoints_of``)."""
    url = base_url.rstrip("/") + endpoint.path
    assert endpoint.timeout is not None
    started = time.perf_counter()

    def elapsed() -> float:
        return time.perf_counter() - started

    try:
        async with asyncio.timeout(endpoint.timeout):
            async with session.get(url, headers=headers, allow_redirects=False) as response:
                status = response.status
                raw, too_large = await _read_limited(response, max_body_bytes)
    except TimeoutError:
        return ProbeResult(endpoint.path, False, None, elapsed(), error="timeout")
    except aiohttp.ClientResponseError as exc:  # e.g. a malformed response
        return ProbeResult(endpoint.path, False, None, elapsed(), error=f"bad response: {exc.status}")
    except (aiohttp.ClientError, OSError) as exc:
        return ProbeResult(endpoint.path, False, None, elapsed(), error=connect_error(exc))
    duration = elapsed()
    if too_large:
        return ProbeResult(endpoint.path, True, status, duration, too_large=True)
    doc, failed = _parse(raw)
    if failed:
        return ProbeResult(endpoint.path, True, status, duration, parse_error=endpoint.json_body)
    return ProbeResult(endpoint.path, True, status, duration,
                       body=interpret(doc, pool_paths, max_components))
