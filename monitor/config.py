"""Typed configuration: YAML file, then environment, then command-line flags.

Every error is reported at once, each with its path in the file
(``postgres.targets[1].dsn``), and unknown keys are rejected. Validation is
done by pydantic, which gives exactly that (all errors, with locations)
without hand-written checks.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

DEFAULT_LISTEN = "0.0.0.0:9630"
TARGET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PollSettings(Strict):
    interval: float = Field(15.0, gt=0, description="seconds between polls")
    timeout: float | None = Field(None, gt=0, description="seconds a poll may take; default 80% of interval")

    @field_validator("timeout")
    @classmethod
    def _timeout_below_interval(cls, value: float | None, info: ValidationInfo) -> float | None:
        interval = info.data.get("interval")
        if value is not None and interval is not None and value >= interval:
            raise ValueError(f"must be shorter than interval ({interval} s)")
        return value

    @property
    def effective_timeout(self) -> float:
        return self.timeout if self.timeout is not None else round(self.interval * 0.8, 3)


class PostgresTarget(Strict):
    name: str | None = Field(None, description="label `target`; derived from host/port/dbname if absent")
    dsn: str
    password_env: str | None = None
    password_file: Path | None = None
    interval: float | None = Field(None, gt=0)
    timeout: float | None = Field(None, gt=0)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str | None) -> str | None:
        if value is not None and not TARGET_NAME.match(value):
            raise ValueError("must be 1-63 characters of letters, digits and _ . : / -")
        return value

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
    log: LogSettings = Field(default_factory=LogSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @model_validator(mode="after")
    def _unique_targets(self) -> Config:
        names = [t.target for t in self.postgres.targets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"postgres target names must be unique; repeated: {', '.join(dupes)}")
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
    name = re.sub(r"[^A-Za-z0-9_.:/-]", "_", f"{host}:{port}/{dbname}")
    return name[:63]


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _problems(exc: ValidationError) -> list[ConfigProblem]:
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
        raise ConfigError(source, _problems(exc)) from None


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


def resolve_password(target: PostgresTarget, environ: dict[str, str] | None = None) -> str | None:
    """The password from ``password_env`` or ``password_file``; None lets libpq decide
    (DSN, PGPASSWORD, ~/.pgpass)."""
    env = dict(os.environ) if environ is None else environ
    if target.password_env:
        if target.password_env not in env:
            raise ConfigError("environment", [ConfigProblem(
                f"postgres target {target.target}: password_env",
                f"environment variable {target.password_env} is not set")])
        return env[target.password_env]
    if target.password_file:
        try:
            return target.password_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(str(target.password_file), [ConfigProblem(
                f"postgres target {target.target}: password_file", f"cannot read: {exc.strerror}")]) from None
    return None
