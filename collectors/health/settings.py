"""The ``health`` section: application base URLs, their endpoints and limits, used as is by the poller."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from collectors.base.settings import PollSettings, Strict, TargetBase, safe_name, variables_set

DEFAULT_ENDPOINT_TIMEOUT = 5.0


def target_name(url: str) -> str:
    """The ``target`` label of a base URL: ``host:port`` plus the base path, never credentials or the query."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "app"
    return safe_name(f"{parts.hostname}:{port}{parts.path.rstrip('/')}")


class HealthEndpoint(Strict):
    path: str
    timeout: float | None = Field(None, gt=0, description="seconds; default health.endpoint_timeout")
    json_body: bool = Field(True, alias="json", description="a body that is not JSON is a parse error")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or len(value) > 200:
            raise ValueError("must start with / (at most 200 characters)")
        return value


def _endpoints(value: Any) -> Any:
    """Endpoints may be written as bare paths."""
    if isinstance(value, list):
        return [{"path": v} if isinstance(v, str) else v for v in value]
    return value


class HealthTarget(TargetBase):
    url: str = Field(description="the application's base URL, e.g. http://app:8000")
    endpoints: list[HealthEndpoint] | None = None
    headers: dict[str, str] = Field(default_factory=dict, description="sent with every probe")
    headers_env: dict[str, str] = Field(default_factory=dict, description="header name -> env variable")

    _endpoints = field_validator("endpoints", mode="before")(_endpoints)
    _headers_env = field_validator("headers_env")(variables_set)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            ok = False
        if not ok:
            raise ValueError("must be an http:// or https:// base URL")
        return value

    def derived_name(self) -> str:
        return target_name(self.url)


class HealthSettings(PollSettings):
    targets: list[HealthTarget] = Field(default_factory=list)
    endpoints: list[HealthEndpoint] = Field(
        default_factory=lambda: [HealthEndpoint(path=p) for p in ("/health", "/health/live", "/health/ready")])
    endpoint_timeout: float = Field(DEFAULT_ENDPOINT_TIMEOUT, gt=0,
                                    description="seconds; capped below the poll timeout")
    max_body_bytes: int = Field(65536, ge=256, le=16 * 1024 * 1024)
    max_components: int = Field(20, ge=1, le=500)
    pool_paths: list[str] = Field(
        default_factory=lambda: ["pool", "components.database.pool", "database.pool"],
        description="dotted paths of SQLAlchemy pool blocks in the JSON bodies")
    verify_tls: bool = True

    _endpoints = field_validator("endpoints", mode="before")(_endpoints)

    def endpoints_of(self, target: HealthTarget) -> list[HealthEndpoint]:
        """The target's endpoints (else the section's), each with its timeout, kept below the poll timeout."""
        cap = self.timeout_of(target) * 0.9  # leave the poll time to report a timed-out endpoint
        chosen = target.endpoints if target.endpoints is not None else self.endpoints
        return [e.model_copy(update={"timeout": min(e.timeout or self.endpoint_timeout, cap)}) for e in chosen]
