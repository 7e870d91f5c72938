"""One HTTP probe: bounded in time and in body size; failures are results, not exceptions.

An endpoint is up when it answers 2xx within its timeout with anything but an HTML page: a 200 HTML page (a
web server's welcome page, a proxy's login page) is not a health response, while a plain ``OK`` from a
liveness route is. A body that is not JSON where JSON is expected (``json: true``, the default) is counted
as a parse error, not as down: the application answered. Otherwise ``problem`` says why, with the HTTP
status and where a redirect points: the log line and the UI show that text.
"""

from __future__ import annotations

import asyncio
import errno
import json
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urljoin, urlsplit

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
    parse_error: bool = False  # a 2xx answer whose body was to be JSON and was not (counted; not down)
    html: bool = False  # the answer is an HTML page: never a health response
    too_large: bool = False  # the body exceeded the size limit and was not parsed
    location: str | None = None  # where a redirect points: scheme, host and path (never its query)
    content_type: str = ""  # of the answer, without its parameters

    @property
    def problem(self) -> str | None:
        """Why the endpoint is not up, as logged and shown; None when it is up."""
        if not self.reachable or self.status_code is None:
            return f"unreachable ({self.error})"
        return answer_problem(self.status_code, self.location, self.content_type, html=self.html)

    @property
    def up(self) -> bool:
        return self.problem is None


def status_text(code: int) -> str:
    """``HTTP 503 Service Unavailable``."""
    try:
        return f"HTTP {code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code}"


def redirect_target(url: str, location: str | None) -> str | None:
    """Where a redirect points, resolved against the probed URL; the query (tokens, state) and any user dropped."""
    if location is None:
        return None
    try:
        parts = urlsplit(urljoin(url, location))
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "an unreadable Location"
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"[:200]


def answer_problem(code: int, location: str | None, content_type: str, *, html: bool) -> str | None:
    """Why an answer is not a healthy one, or None."""
    if 300 <= code < 400:
        return f"{status_text(code)}, redirect to {location}" if location else f"{status_text(code)}, redirect"
    if not 200 <= code < 300:
        return status_text(code)
    if html:
        return f"{status_text(code)}, an HTML page ({content_type or 'no Content-Type'}): not a health response"
    return None


HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def is_html(content_type: str, head: bytes) -> bool:
    """An HTML page, by its Content-Type, or by its first bytes when it names none."""
    if content_type:
        return content_type in HTML_TYPES
    return head.lstrip()[:14].lower().startswith((b"<!doctype html", b"<html"))


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
                location = redirect_target(url, response.headers.get("Location")) if 300 <= status < 400 else None
                content_type = response.content_type if "Content-Type" in response.headers else ""
                raw, too_large = await _read_limited(response, max_body_bytes)
    except TimeoutError:
        return ProbeResult(endpoint.path, False, None, elapsed(), error="timeout")
    except aiohttp.ClientResponseError as exc:  # e.g. a malformed response
        return ProbeResult(endpoint.path, False, None, elapsed(), error=f"bad response: {exc.status}")
    except (aiohttp.ClientError, OSError) as exc:
        return ProbeResult(endpoint.path, False, None, elapsed(), error=connect_error(exc))
    duration = elapsed()

    def answered(**found: Any) -> ProbeResult:
        return ProbeResult(endpoint.path, True, status, duration, location=location, content_type=content_type,
                           html=is_html(content_type, raw), **found)

    if too_large:
        return answered(too_large=True)
    doc, failed = _parse(raw)
    if failed:  # JSON is expected of a 2xx answer; an error page's body is read only for what it may tell
        return answered(parse_error=endpoint.json_body and 200 <= status < 300)
    return answered(body=interpret(doc, pool_paths, max_components))
