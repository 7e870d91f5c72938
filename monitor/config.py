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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError, create_model, field_validator

from collectors.base.settings import (
    ENVIRONMENT,
    ConfigError,
    ConfigProblem,
    PollSettings,
    Strict,
    problems_from,
    read_file,
)
from collectors.registry import sources
from monitor.advisor.settings import AdvisorSettings
from monitor.prometheus_settings import PrometheusSettings

DEFAULT_PORT = 19630
DEFAULT_LISTEN = f"0.0.0.0:{DEFAULT_PORT}"

__all__ = ["DEFAULT_LISTEN", "DEFAULT_PORT", "Config", "ConfigError", "ConfigProblem", "Layers", "load",
           "parse_listen", "read_file", "validate"]


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


class ServiceConfig(Strict):
    """The service's own sections; every registered source adds its own (``Config``)."""

    listen: str = DEFAULT_LISTEN
    web_config: Path | None = Field(None, description="exporter-toolkit web config: TLS and basic auth")
    log: LogSettings = Field(default_factory=LogSettings)
    ui: UiSettings = Field(default_factory=UiSettings)
    advisor: AdvisorSettings = Field(default_factory=AdvisorSettings)
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    def section(self, name: str) -> PollSettings:
        """A source's section, by the source's name (``config.section(spec.name)``)."""
        value = getattr(self, name)
        assert isinstance(value, PollSettings)
        return value

    def sections(self) -> dict[str, PollSettings]:
        """Every source's section, by source name, in page order."""
        return {spec.name: self.section(spec.name) for spec in sources()}


# The whole file: the service's sections and one per registered source, each the source's own model. Built
# from the registry, so a new source's section needs no line here; typed code reaches it by `section()`.
if TYPE_CHECKING:
    Config = ServiceConfig
else:
    Config = create_model("Config", __base__=ServiceConfig, **{
        spec.name: (spec.settings, Field(default_factory=spec.settings)) for spec in sources()})


def parse_listen(value: str, any_port: bool = False) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv6 host in brackets; no host: every address); port 0 only with ``any_port``."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not (0 if any_port else 1) <= int(port) < 65536:
        raise ValueError(f"must be HOST:PORT, e.g. {DEFAULT_LISTEN}")
    return host.strip("[]") or "0.0.0.0", int(port)


# Lists that add up across the layers (file, then environment, then flags) instead of being replaced:
# `--config f.yaml --postgres extra=...` watches the file's targets and `extra`. Every other value given in
# a later layer replaces the earlier one.
ADDITIVE = tuple((spec.name, key) for spec in sources() for key in spec.additive)


def _either(words: list[str]) -> str:
    return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else "".join(words)


ENV_TARGETS = " and ".join(s.env for s in sources() if s.env)  # the DBPULSE_* variables that add targets
NOTHING_TO_WATCH = "nothing to watch: give {} or a config file with {}".format(
    ", ".join(f"{f.option} {f.metavar.removeprefix('[NAME=]')}" for s in sources() if (f := s.target_flag)),
    _either([f"{s.name}.targets" for s in sources()]))


def validate(data: dict[str, Any], source: str, environment: Mapping[str, str] | None = None) -> Config:
    """The configuration in ``data``; with ``environment``, the secrets it names are checked to be there."""
    try:
        return Config.model_validate(data, context={ENVIRONMENT: environment} if environment is not None else None)
    except ValidationError as exc:
        raise ConfigError(source, problems_from(exc, Config)) from None


def _merge(base: dict[str, Any], override: dict[str, Any], path: tuple[str, ...] = ()) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        here = (*path, key)
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, here)
        elif here in ADDITIVE and isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = [*out[key], *value]
        else:
            out[key] = value
    return out


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings from DBPULSE_* environment variables (between the file and the flags)."""
    data: dict[str, Any] = {}
    if environ.get("DBPULSE_LISTEN"):
        data["listen"] = environ["DBPULSE_LISTEN"]
    if environ.get("DBPULSE_LOG_LEVEL"):
        data.setdefault("log", {})["level"] = environ["DBPULSE_LOG_LEVEL"]
    if environ.get("DBPULSE_PROMETHEUS_URL"):
        data.setdefault("prometheus", {})["url"] = environ["DBPULSE_PROMETHEUS_URL"]
    if environ.get("DBPULSE_STATE_DIR"):
        data.setdefault("advisor", {})["state_dir"] = environ["DBPULSE_STATE_DIR"]
    for spec in sources():
        flag = spec.target_flag
        if spec.env and flag and environ.get(spec.env):
            data.setdefault(spec.name, {})["targets"] = [flag.convert(t) for t in environ[spec.env].split()]
    return data


@dataclass(frozen=True)
class Layer:
    origin: str  # where its values come from: the file's path, "DBPULSE_* environment", "flags"
    data: dict[str, Any]


@dataclass(frozen=True)
class Layers:
    """The file, the DBPULSE_* environment and the flags, each later one over the earlier ones."""

    layers: tuple[Layer, ...]
    source: str  # named in errors: the file, else "command line"
    environment: Mapping[str, str]

    @classmethod
    def read(cls, path: Path | None, flags: dict[str, Any] | None = None,
             environ: Mapping[str, str] | None = None) -> Layers:
        environment = os.environ if environ is None else environ
        layers = (Layer(str(path), read_file(path)) if path else Layer("file", {}),
                  Layer("DBPULSE_* environment", env_overrides(environment)), Layer("flags", flags or {}))
        return cls(layers, str(path) if path else "command line", environment)

    def merged(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for layer in self.layers:
            data = _merge(data, layer.data)
        return data

    def config(self) -> Config:
        """The configuration `run` would use, with every problem it would meet before connecting reported at
        once: shape and values, secrets that are missing from the environment, nothing to watch."""
        data = self.merged()
        problems: list[ConfigProblem] = []
        try:
            config = validate(data, self.source, self.environment)
        except ConfigError as exc:
            problems = exc.problems
        if not any(isinstance(data.get(s.name), dict) and data[s.name].get("targets") for s in sources()):
            problems.append(ConfigProblem("", NOTHING_TO_WATCH))
        if problems:
            raise ConfigError(self.source, problems)
        return config

    def _given(self, section: str) -> list[tuple[Layer, int]]:
        """The layers that give targets of ``section``, with how many, in order."""
        out = []
        for layer in self.layers:
            block = layer.data.get(section)
            targets = block.get("targets") if isinstance(block, dict) else None
            if isinstance(targets, list) and targets:
                out.append((layer, len(targets)))
        return out

    def origins(self, config: Config) -> str:
        """Which targets came from which layer, e.g. ``postgres shop, orders (dbpulse.yaml) + extra (flags)``;
        with the rule spelled out when a later layer added targets to an earlier one's."""
        parts, added = [], False
        for section, settings in config.sections().items():
            names = iter(t.target for t in settings.targets)
            given = self._given(section)
            added = added or len(given) > 1
            if given:
                parts.append(f"{section} " + " + ".join(
                    f"{', '.join(next(names) for _ in range(count))} ({layer.origin})" for layer, count in given))
        rule = f"; targets from flags and {ENV_TARGETS} are added to the file's" if added else ""
        return "; ".join(parts) + rule


def load(
    path: Path | None,
    flags: dict[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """File, then DBPULSE_* environment, then flags; each later layer wins, target lists add up."""
    return Layers.read(path, flags, environ).config()
