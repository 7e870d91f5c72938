"""What every source's settings share: strict models, a cadence, named targets, secrets, errors.

Each source owns one pydantic model of its section (``collectors/<source>/settings.py``),
built on these bases and used directly by its poller; ``monitor/config.py`` only
composes the sections and does loading, layering and error reporting.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

TARGET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$")
DEFAULT_TIMEOUT_SHARE = 0.8  # a poll may take this share of its interval unless a timeout is set


class Strict(BaseModel):
    """Unknown keys are errors; settings never change once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def timeout_below_interval(value: float | None, info: ValidationInfo) -> float | None:
    """Field validator: a ``timeout`` must be shorter than the model's ``interval``."""
    interval = info.data.get("interval")
    if value is not None and interval is not None and value >= interval:
        raise ValueError(f"must be shorter than interval ({interval} s)")
    return value


def default_timeout(interval: float) -> float:
    return round(interval * DEFAULT_TIMEOUT_SHARE, 3)


def safe_name(name: str) -> str:
    """A string made fit for the ``target`` label (see ``TARGET_NAME``)."""
    return re.sub(r"[^A-Za-z0-9_.:/-]", "_", name).lstrip("_.:/-")[:63] or "target"


class TargetBase(Strict):
    """What every target has: a safe name for the `target` label and its own cadence."""

    name: str | None = Field(None, description="label `target`; derived from the address if absent")
    interval: float | None = Field(None, gt=0)
    timeout: float | None = Field(None, gt=0)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not TARGET_NAME.match(value):
            raise ValueError("must be 1-63 characters of letters, digits and _ . : / -")
        return value

    @property
    def target(self) -> str:
        """The ``target`` label: the configured name, else one derived from the address."""
        return self.name or self.derived_name()

    def derived_name(self) -> str:
        raise NotImplementedError


class PollSettings(Strict):
    """A source's section: a default cadence for its targets, each of which may override it."""

    interval: float = Field(15.0, gt=0, description="seconds between polls")
    timeout: float | None = Field(None, gt=0, description="seconds a poll may take; default 80% of interval")
    targets: Sequence[TargetBase] = ()  # each source narrows it to its own target model

    _timeout = field_validator("timeout")(timeout_below_interval)

    @model_validator(mode="after")
    def _target_timeouts_below_intervals(self) -> PollSettings:
        bad = []
        for i, target in enumerate(self.targets):
            interval = self.interval_of(target)
            if target.timeout is not None and target.timeout >= interval:
                bad.append(f"targets[{i}].timeout ({target.timeout:g}) must be shorter than its interval "
                           f"({interval:g} s)")
        if bad:
            raise ValueError("; ".join(bad))
        return self

    def interval_of(self, target: TargetBase) -> float:
        return target.interval or self.interval

    def timeout_of(self, target: TargetBase) -> float:
        """The target's timeout, else the section's when it fits the target's interval, else 80% of it."""
        interval = self.interval_of(target)
        if target.timeout is not None:
            return target.timeout
        if self.timeout is not None and self.timeout < interval:
            return self.timeout
        return default_timeout(interval)


_NAMED_URL = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)=(?P<url>[a-z][a-z0-9+.-]*://.*)$")


def named_url(value: str, key: str = "url") -> dict[str, Any]:
    """A flag value ``[NAME=]URL``: an optional target name before a URL."""
    match = _NAMED_URL.match(value)
    if match:
        return {"name": match["name"], key: match["url"]}
    return {key: value}


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
