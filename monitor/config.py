"""Typed configuration: YAML file, then environment, then command-line flags.

Every error is reported at once, each with its path in the file
(``postgres.targets[1].dsn``), and unknown keys are rejected. Validation is
done by pydantic, which gives exactly that (all errors, with locations)
without hand-written checks.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from psycopg.conninfo import conninfo_to_dict
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

if TYPE_CHECKING:
    from monitor.advisor.settings import AdvisorSettings

DEFAULT_LISTEN = "0.0.0.0:9630"
TARGET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _timeout_below_interval(value: float | None, info: ValidationInfo) -> float | None:
    interval = info.data.get("interval")
    if value is not None and interval is not None and value >= interval:
        raise ValueError(f"must be shorter than interval ({interval} s)")
    return value


class PollSettings(Strict):
    interval: float = Field(15.0, gt=0, description="seconds between polls")
    timeout: float | None = Field(None, gt=0, description="seconds a poll may take; default 80% of interval")

    _timeout = field_validator("timeout")(_timeout_below_interval)

    @model_validator(mode="after")
    def _target_timeouts_below_intervals(self) -> PollSettings:
        bad = []
        for i, target in enumerate(getattr(self, "targets", [])):
            interval = target.interval or self.interval
            if target.timeout is not None and target.timeout >= interval:
                bad.append(f"targets[{i}].timeout ({target.timeout:g}) must be shorter than its interval "
                           f"({interval:g} s)")
        if bad:
            raise ValueError("; ".join(bad))
        return self

    @property
    def effective_timeout(self) -> float:
        return self.timeout if self.timeout is not None else round(self.interval * 0.8, 3)


def _check_name(value: str | None) -> str | None:
    if value is not None and not TARGET_NAME.match(value):
        raise ValueError("must be 1-63 characters of letters, digits and _ . : / -")
    return value


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.:/-]", "_", name).lstrip("_.:/-")[:63] or "target"


class TargetBase(Strict):
    """What every target has: a safe name for the `target` label and its own cadence."""

    name: str | None = Field(None, description="label `target`; derived from the address if absent")
    interval: float | None = Field(None, gt=0)
    timeout: float | None = Field(None, gt=0)

    _name = field_validator("name")(_check_name)


class PostgresTarget(TargetBase):
    dsn: str
    password_env: str | None = None
    password_file: Path | None = None

    @field_validator("dsn")
    @classmethod
    def _parseable(cls, value: str) -> str:
        try:
            conninfo_to_dict(value)
        except Exception:
            # Never echo the DSN: it may hold a password.
            raise ValueError("is not a valid PostgreSQL connection string or URI") from None
        return value

    @property
    def target(self) -> str:
        return self.name or derive_target_name(self.dsn)


class AppPool(Strict):
    """An application's server-side pool capacity (e.g. SQLAlchemy pool_size + max_overflow)."""

    application_name: str
    capacity: int = Field(gt=0)


class PostgresSettings(PollSettings):
    targets: list[PostgresTarget] = Field(default_factory=list)
    top_statements: int = Field(100, ge=1, le=10000)
    top_tables: int = Field(50, ge=1, le=10000)
    top_indexes: int = Field(100, ge=1, le=10000)
    top_applications: int = Field(20, ge=1, le=1000)
    statement_text_info: bool = Field(False, description="export dbpulse_pg_statement_info with query text")
    statement_text_length: int = Field(80, ge=10, le=1000)
    app_pools: list[AppPool] = Field(default_factory=list)
    size_interval: float = Field(300.0, ge=0, description="seconds between reads of table, index and database "
                                 "sizes (they cost a stat() per file); 0 reads them every poll")


# --- Redis and application health -------------------------------------


class RedisTarget(TargetBase):
    url: str = Field(description="redis://[[user]:password@]host[:port][/db], rediss://..., unix://path")
    username: str | None = Field(None, description="ACL user; overrides the URL's")
    password_env: str | None = None
    password_file: Path | None = None
    queues: list[str] = Field(default_factory=list, description="list or stream keys of this target")

    @field_validator("url")
    @classmethod
    def _parseable(cls, value: str) -> str:
        from redis.asyncio.connection import parse_url

        try:
            parse_url(value)
        except Exception:
            # Never echo the URL: it may hold a password.
            raise ValueError("is not a valid redis://, rediss:// or unix:// URL") from None
        return value

    @property
    def target(self) -> str:
        return self.name or derive_redis_name(self.url)


class RedisSettings(PollSettings):
    targets: list[RedisTarget] = Field(default_factory=list)
    queues: list[str] = Field(default_factory=list, description="list or stream keys read on every target")
    sampling: bool = Field(True, description="sample keys with SCAN/PTTL for per-prefix TTL discipline")
    sample_budget_ms: float = Field(50.0, gt=0, le=5000, description="wall time per poll for sampling")
    sample_max_keys: int = Field(10_000, ge=1, le=1_000_000)
    scan_count: int = Field(200, ge=1, le=10_000, description="COUNT hint of each SCAN call")
    prefixes: list[str] = Field(default_factory=list, description="glob patterns, first match wins")
    prefix_depth: int = Field(2, ge=0, le=8, description="segments before ':' of automatic prefixes; 0: off")
    prefix_separator: str = Field(":", min_length=1, max_length=4)
    top_prefixes: int = Field(20, ge=1, le=1000)


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

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(value)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            ok = False
        if not ok:
            raise ValueError("must be an http:// or https:// base URL")
        return value

    @property
    def target(self) -> str:
        return self.name or derive_health_name(self.url)


class HealthSettings(PollSettings):
    targets: list[HealthTarget] = Field(default_factory=list)
    endpoints: list[HealthEndpoint] = Field(
        default_factory=lambda: [HealthEndpoint(path=p) for p in ("/health", "/health/live", "/health/ready")])
    endpoint_timeout: float = Field(5.0, gt=0, description="seconds; capped below the poll timeout")
    max_body_bytes: int = Field(65536, ge=256, le=16 * 1024 * 1024)
    max_components: int = Field(20, ge=1, le=500)
    pool_paths: list[str] = Field(
        default_factory=lambda: ["pool", "components.database.pool", "database.pool"],
        description="dotted paths of SQLAlchemy pool blocks in the JSON bodies")
    verify_tls: bool = True

    _endpoints = field_validator("endpoints", mode="before")(_endpoints)


def derive_redis_name(url: str) -> str:
    """``host:port/db`` (or ``unix:path/db``), never the user or password."""
    from redis.asyncio.connection import parse_url

    try:
        parts = parse_url(url)
    except Exception:
        return "redis"
    db = parts.get("db") or 0
    if "path" in parts:
        return _safe(f"unix:{parts['path']}/{db}")
    return _safe(f"{parts.get('host') or 'localhost'}:{parts.get('port') or 6379}/{db}")


def derive_health_name(url: str) -> str:
    """``host:port`` plus the base path, never credentials or the query."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "app"
    return _safe(f"{parts.hostname}:{port}{parts.path.rstrip('/')}")


_NAMED_URL = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)=(?P<url>[a-z][a-z0-9+.-]*://.*)$")


def named_url_from_flag(value: str) -> dict[str, Any]:
    """``--redis [NAME=]URL``, ``--health-url [NAME=]URL``."""
    match = _NAMED_URL.match(value)
    if match:
        return {"name": match["name"], "url": match["url"]}
    return {"url": value}


def resolve_secret(what: str, password_env: str | None, password_file: Path | None,
                   environ: dict[str, str] | None = None) -> str | None:
    """A secret from an environment variable or a file; None if neither is configured."""
    env = dict(os.environ) if environ is None else environ
    if password_env:
        if password_env not in env:
            raise ConfigError("environment", [ConfigProblem(
                f"{what}: password_env", f"environment variable {password_env} is not set")])
        return env[password_env]
    if password_file:
        try:
            return password_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(str(password_file), [ConfigProblem(
                f"{what}: password_file", f"cannot read: {exc.strerror}")]) from None
    return None


class AdvisorConfig(Strict):
    """The index advisor in the service: one run per PostgreSQL target every ``interval``."""

    enabled: bool = True
    interval: float = Field(300.0, ge=1, description="seconds between advisor runs")
    timeout: float | None = Field(None, gt=0, description="seconds a run may take; default min(120, 80% of interval)")
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="overrides of AdvisorSettings fields, e.g. slow_mean_seconds: 0.2")

    _timeout = field_validator("timeout")(_timeout_below_interval)

    @field_validator("thresholds")
    @classmethod
    def _known_thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        from monitor.advisor.settings import AdvisorSettings  # the advisor owns its thresholds

        known = set(AdvisorSettings.__dataclass_fields__) - {"interval_seconds"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown threshold(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return value

    @property
    def effective_timeout(self) -> float:
        return self.timeout if self.timeout is not None else min(120.0, round(self.interval * 0.8, 3))

    def settings(self) -> AdvisorSettings:
        """AdvisorSettings with the overrides, each cast to its field's type (YAML gives numbers)."""
        from monitor.advisor.settings import AdvisorSettings

        defaults = AdvisorSettings(interval_seconds=self.interval)
        # The session and the what-if budget fit inside the run's timeout unless set explicitly.
        half = self.effective_timeout / 2
        bounded = {"statement_timeout_seconds": min(defaults.statement_timeout_seconds, half),
                   "verification_max_seconds": min(defaults.verification_max_seconds, half)}
        explicit = {name: type(getattr(defaults, name))(value) for name, value in self.thresholds.items()}
        return replace(defaults, **{**bounded, **explicit})


class LogSettings(Strict):
    level: str = "info"
    format: str = "text"

    @field_validator("level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("must be one of debug, info, warning, error")
        return value.lower()

    @field_validator("format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value not in {"text", "json"}:
            raise ValueError("must be text or json")
        return value


class Config(Strict):
    listen: str = DEFAULT_LISTEN
    web_config: Path | None = Field(None, description="exporter-toolkit web config: TLS and basic auth")
    log: LogSettings = Field(default_factory=LogSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    advisor: AdvisorConfig = Field(default_factory=AdvisorConfig)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @model_validator(mode="after")
    def _unique_targets(self) -> Config:
        sections: tuple[tuple[str, list[Any]], ...] = (
            ("postgres", self.postgres.targets), ("redis", self.redis.targets), ("health", self.health.targets))
        for section, targets in sections:
            names = [t.target for t in targets]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{section} target names must be unique; repeated: {', '.join(dupes)}")
        return self


@dataclass(frozen=True)
class ConfigProblem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    """Every problem found in a configuration, with the file it came from."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration in {source}:\n{lines}")


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must be HOST:PORT, e.g. 0.0.0.0:9630")
    return host.strip("[]") or "0.0.0.0", int(port)


def derive_target_name(dsn: str) -> str:
    """A safe label from a DSN: ``host:port/dbname``, never the user or password."""
    try:
        parts = conninfo_to_dict(dsn)
    except Exception:
        return "postgres"
    host = str(parts.get("host") or "localhost").split(",")[0]
    if host.startswith("/"):
        host = "localhost"
    port = str(parts.get("port") or "5432").split(",")[0]
    dbname = str(parts.get("dbname") or parts.get("user") or "postgres")
    return _safe(f"{host}:{port}/{dbname}")


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def problems_from(exc: ValidationError) -> list[ConfigProblem]:
    problems = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        problems.append(ConfigProblem(_loc(tuple(err["loc"])), msg))
    return problems


def read_file(path: Path) -> dict[str, Any]:
    """Read a YAML config file into a mapping, or raise ConfigError naming the file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(str(path), [ConfigProblem("", f"cannot read file: {exc.strerror}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(str(path), [ConfigProblem(where, f"YAML syntax: {problem}")]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), [ConfigProblem("", "top level must be a mapping of keys")])
    return data


def validate(data: dict[str, Any], source: str) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, problems_from(exc)) from None


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """Settings from DBPULSE_* environment variables (between the file and the flags)."""
    data: dict[str, Any] = {}
    if environ.get("DBPULSE_LISTEN"):
        data["listen"] = environ["DBPULSE_LISTEN"]
    if environ.get("DBPULSE_LOG_LEVEL"):
        data.setdefault("log", {})["level"] = environ["DBPULSE_LOG_LEVEL"]
    if environ.get("DBPULSE_POSTGRES"):
        dsns = [d for d in environ["DBPULSE_POSTGRES"].split() if d]
        data.setdefault("postgres", {})["targets"] = [target_from_flag(d) for d in dsns]
    return data


_NAMED_URI = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)=(?P<dsn>postgres(?:ql)?://.*)$")


def target_from_flag(value: str) -> dict[str, Any]:
    """``--postgres [NAME=]DSN``: an optional target name before a URI."""
    match = _NAMED_URI.match(value)
    if match:
        return {"name": match["name"], "dsn": match["dsn"]}
    return {"dsn": value}


def load(
    path: Path | None,
    flags: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """File, then DBPULSE_* environment, then flags; each later layer wins."""
    data: dict[str, Any] = read_file(path) if path else {}
    data = _merge(data, env_overrides(dict(os.environ) if environ is None else environ))
    data = _merge(data, flags or {})
    return validate(data, str(path) if path else "command line")
