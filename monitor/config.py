"""Typed configuration: YAML file, then environment, then command-line flags.

Each source owns its section's model (``collectors/<source>/settings.py``, the
advisor's in ``monitor/advisor/settings.py``); this module only composes them
and does loading, layering and error reporting. Every error is reported at
once, each with its path in the file (``postgres.targets[1].dsn``), and
unknown keys are rejected: pydantic gives exactly that without hand-written
checks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from collectors.health.settings import HealthSettings
from collectors.postgres.settings import PostgresSettings, target_from_flag
from collectors.redis.settings import RedisSettings
from monitor.advisor.settings import AdvisorSettings
from monitor.core.settings import ConfigError, ConfigProblem, PollSettings, Strict, problems_from, read_file

DEFAULT_LISTEN = "0.0.0.0:9630"

__all__ = ["DEFAULT_LISTEN", "Config", "ConfigError", "ConfigProblem", "load", "parse_listen", "read_file",
           "validate"]


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


class UiSettings(Strict):
    history_seconds: float = Field(3600.0, ge=1, le=86400,
                                   description="how far back the web UI's charts reach (kept in memory per source)")


class Config(Strict):
    listen: str = DEFAULT_LISTEN
    web_config: Path | None = Field(None, description="exporter-toolkit web config: TLS and basic auth")
    log: LogSettings = Field(default_factory=LogSettings)
    ui: UiSettings = Field(default_factory=UiSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    advisor: AdvisorSettings = Field(default_factory=AdvisorSettings)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @model_validator(mode="after")
    def _unique_targets(self) -> Config:
        sections: dict[str, PollSettings] = {"postgres": self.postgres, "redis": self.redis, "health": self.health}
        for name, section in sections.items():
            names = [t.target for t in section.targets]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{name} target names must be unique; repeated: {', '.join(dupes)}")
        return self

    @property
    def has_targets(self) -> bool:
        return bool(self.postgres.targets or self.redis.targets or self.health.targets)


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must be HOST:PORT, e.g. 0.0.0.0:9630")
    return host.strip("[]") or "0.0.0.0", int(port)


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
