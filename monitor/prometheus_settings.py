"""The ``prometheus`` section: where the UI reads history beyond the hour it keeps in memory.

Any endpoint that speaks the Prometheus HTTP query API (Prometheus, Thanos, Mimir, VictoriaMetrics). The
client side is written as Prometheus writes its own: ``basic_auth`` and ``tls_config`` blocks, with the
password from an environment variable or a file like every target's (``password_env``/``password_file``).
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator, model_validator

from collectors.base.settings import PasswordFields, Strict, file_readable

LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class BasicAuth(PasswordFields):
    username: str

    @model_validator(mode="after")
    def _one_password(self) -> Self:
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        return self


class TLSConfig(Strict):
    ca_file: Path | None = Field(None, description="CA bundle that signed Prometheus's certificate")
    cert_file: Path | None = Field(None, description="client certificate (PEM), with key_file")
    key_file: Path | None = None
    insecure_skip_verify: bool = Field(False, description="accept any server certificate (tests only)")

    _files = field_validator("ca_file", "cert_file", "key_file")(file_readable)

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class PrometheusSettings(Strict):
    url: str | None = Field(None, description="base URL of a Prometheus HTTP query API, e.g. http://prometheus:9090")
    timeout: float = Field(2.0, gt=0, le=30, description="seconds a page waits for Prometheus before it falls "
                           "back to the hour kept in memory")
    scrape_interval: float = Field(15.0, gt=0, description="how often Prometheus scrapes dbpulse: the smallest step "
                                   "of a chart")
    labels: dict[str, str] = Field(default_factory=dict, description="extra label matchers on every query, e.g. "
                                   "{job: dbpulse}, when several dbpulse instances name targets alike")
    basic_auth: BasicAuth | None = None
    tls_config: TLSConfig = Field(default_factory=TLSConfig)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            ok = False
        if not ok:
            raise ValueError("must be an http:// or https:// base URL without a query, e.g. http://prometheus:9090")
        if parts.password:
            raise ValueError("must not hold a password: use basic_auth.password_env or basic_auth.password_file")
        return value.rstrip("/")

    @field_validator("labels")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(name for name in value if not LABEL_NAME.match(name))
        if bad:
            raise ValueError(f"not label names: {', '.join(bad)}")
        return value

    @property
    def shown_url(self) -> str:
        """The URL as pages and logs name it: without a user name."""
        parts = urlsplit(self.url or "")
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, host, parts.path, "", ""))

    def password(self) -> str | None:
        """The basic-auth password (read now, registered as a secret so no log line shows it)."""
        auth = self.basic_auth
        if auth is None:
            return None
        return auth.secret("prometheus.basic_auth")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The client's TLS: for an https URL, or when a CA or a client certificate is given."""
        tls = self.tls_config
        if not (self.url or "").startswith("https:"):
            return None
        context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
        if tls.cert_file and tls.key_file:
            context.load_cert_chain(tls.cert_file, tls.key_file)
        if tls.insecure_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context
