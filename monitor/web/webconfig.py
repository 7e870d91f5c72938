"""``--web-config FILE`` in the Prometheus exporter-toolkit format: TLS and basic auth.

Supported keys (others are rejected, so a typo never silently disables auth):

    tls_server_config:
      cert_file, key_file            # PEM; both required when the block is present
      client_auth_type               # NoClientCert (default) | RequestClientCert | RequireAnyClientCert
                                     # | VerifyClientCertIfGiven | RequireAndVerifyClientCert
      client_ca_file                 # CA bundle to verify client certificates
      min_version, max_version       # TLS10 | TLS11 | TLS12 | TLS13
    http_server_config:
      headers: {Name: value}         # added to every response
    basic_auth_users:
      name: bcrypt-hash              # e.g. from `htpasswd -nBC 10 "" | tr -d ':\\n'`
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ssl
from pathlib import Path

import bcrypt
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from pydantic import Field, ValidationError, field_validator

from collectors.base.settings import ConfigError, ConfigProblem, Strict, problems_from, read_file

# Liveness must work for orchestrators that cannot hold credentials (kubelet probes).
UNAUTHENTICATED_PATHS = frozenset({"/healthz"})

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3,
}
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}


class TLSServerConfig(Strict):
    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: str = "TLS12"
    max_version: str | None = None

    @field_validator("client_auth_type")
    @classmethod
    def _auth(cls, value: str) -> str:
        if value not in CLIENT_AUTH:
            raise ValueError(f"must be one of {', '.join(CLIENT_AUTH)}")
        return value

    @field_validator("min_version", "max_version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is not None and value not in TLS_VERSIONS:
            raise ValueError(f"must be one of {', '.join(TLS_VERSIONS)}")
        return value


class HTTPServerConfig(Strict):
    headers: dict[str, str] = Field(default_factory=dict)


class WebConfig(Strict):
    tls_server_config: TLSServerConfig | None = None
    http_server_config: HTTPServerConfig = Field(default_factory=HTTPServerConfig)
    basic_auth_users: dict[str, str] = Field(default_factory=dict)

    @field_validator("basic_auth_users")
    @classmethod
    def _bcrypt(cls, users: dict[str, str]) -> dict[str, str]:
        bad = [name for name, hashed in users.items() if not str(hashed).startswith(("$2a$", "$2b$", "$2y$"))]
        if bad:
            raise ValueError(f"passwords must be bcrypt hashes ($2y$...); not for: {', '.join(sorted(bad))}")
        return users


def load_web_config(path: Path) -> WebConfig:
    try:
        config = WebConfig.model_validate(read_file(path))
    except ValidationError as exc:
        raise ConfigError(str(path), problems_from(exc, WebConfig)) from None
    problems = []
    tls = config.tls_server_config
    if tls:
        files = {"cert_file": tls.cert_file, "key_file": tls.key_file, "client_ca_file": tls.client_ca_file}
        for key, file in files.items():
            if file is not None and not file.is_file():
                problems.append(ConfigProblem(f"tls_server_config.{key}", f"file not found: {file}"))
        if tls.client_auth_type in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert") \
                and tls.client_ca_file is None:
            problems.append(ConfigProblem("tls_server_config.client_ca_file",
                                          f"required with client_auth_type {tls.client_auth_type}"))
    if tls and not problems:
        try:
            ssl_context(config)
        except (ssl.SSLError, OSError) as exc:  # a file that is not PEM, a key that does not match
            problems.append(ConfigProblem("tls_server_config", f"cannot load the certificate and key: {exc}"))
    if problems:
        raise ConfigError(str(path), problems)
    return config


def ssl_context(config: WebConfig) -> ssl.SSLContext | None:
    tls = config.tls_server_config
    if tls is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    context.minimum_version = TLS_VERSIONS[tls.min_version]
    if tls.max_version:
        context.maximum_version = TLS_VERSIONS[tls.max_version]
    context.verify_mode = CLIENT_AUTH[tls.client_auth_type]
    if tls.client_ca_file:
        context.load_verify_locations(cafile=str(tls.client_ca_file))
    elif context.verify_mode != ssl.CERT_NONE:
        context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    return context


class BasicAuth:
    """Checks ``Authorization: Basic`` against bcrypt hashes.

    bcrypt is deliberately slow (tens of ms), so it never runs on the event
    loop: checks go to a worker thread, one at a time, so a flood of bad
    passwords cannot stall the pollers or the scrapes. Good credentials are
    remembered, since Prometheus sends the same ones every scrape. Unknown
    users are checked against a dummy hash so timing does not tell which
    names exist.
    """

    def __init__(self, users: dict[str, str]) -> None:
        self.users = {name: hashed.encode() for name, hashed in users.items()}
        self._verified: set[bytes] = set()
        self._dummy = bcrypt.hashpw(b"dbpulse-dummy", next(iter(self.users.values()))[:29]) \
            if self.users else b""
        self._one_at_a_time = asyncio.Semaphore(1)

    async def check(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        key = hashlib.sha256((hashed or b"") + b"\0" + password.encode()).digest()
        if hashed is not None and any(hmac.compare_digest(key, seen) for seen in self._verified):
            return True
        async with self._one_at_a_time:
            ok = await asyncio.to_thread(bcrypt.checkpw, password.encode(), hashed or self._dummy)
        if ok and hashed is not None:
            self._verified.add(key)
            return True
        return False


def middlewares(config: WebConfig) -> list[Middleware]:
    """The guard of every request: basic auth and the configured response headers; none when neither is
    configured, so a request (a scrape of /metrics) goes through no middleware at all."""
    auth = BasicAuth(config.basic_auth_users) if config.basic_auth_users else None
    headers = config.http_server_config.headers
    if auth is None and not headers:
        return []

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if auth and request.path not in UNAUTHENTICATED_PATHS and not await auth.check(
                request.headers.get("Authorization")):
            return web.Response(status=401, text="Unauthorized\n",
                                headers={"WWW-Authenticate": 'Basic realm="dbpulse"'})
        response = await handler(request)
        for name, value in headers.items():
            response.headers[name] = value
        return response

    return [guard]
