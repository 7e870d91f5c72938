"""What every source's settings share: strict models, a cadence, named targets, secrets, errors.

Each source owns one pydantic model of its section (``collectors/<source>/settings.py``),
built on these bases and used directly by its poller; ``monitor/config.py`` only
composes the sections and does loading, layering and error reporting.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from collectors.base.redact import register_secret

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


# The validation context's key for the environment the service will run in. Given (by ``check-config`` and
# ``run``), the secrets a configuration names are checked to be there; absent, only the shape is checked.
ENVIRONMENT = "environment"


def _environment(info: ValidationInfo) -> Mapping[str, str] | None:
    context = info.context
    environment = context.get(ENVIRONMENT) if isinstance(context, dict) else None
    return environment if isinstance(environment, Mapping) else None


def variables_set(value: Any, info: ValidationInfo) -> Any:
    """Field validator: the environment variable(s) named (a name, or the values of a mapping) are set."""
    environment = _environment(info)
    if environment is None or not value:
        return value
    names = list(value.values()) if isinstance(value, Mapping) else [value]
    missing = [name for name in names if name not in environment]
    if missing:
        raise ValueError(f"environment variable {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set")
    return value


def file_readable(value: Path | None, info: ValidationInfo) -> Path | None:
    """Field validator: the file named can be opened for reading."""
    if value is not None and _environment(info) is not None:
        try:
            with value.open("rb"):
                pass
        except OSError as exc:
            raise ValueError(f"cannot read {value}: {exc.strerror}") from None
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


class PasswordFields(Strict):
    """Where a password is read from, each checked when the configuration is (the variable set, the file
    readable): a target's, and the client side of Prometheus's basic auth."""

    password_env: str | None = Field(None, description="environment variable that holds the password")
    password_file: Path | None = Field(None, description="file that holds the password")

    _password_env = field_validator("password_env")(variables_set)
    _password_file = field_validator("password_file")(file_readable)

    def secret(self, where: str) -> str | None:
        """The password (None: none configured), registered as a secret so that no log line or page shows it;
        ``where`` names the setting in errors."""
        password = resolve_secret(where, self.password_env, self.password_file)
        register_secret(password)
        return password


class SecretTarget(TargetBase, PasswordFields):
    """A target that logs in with a password: where it is read from (else the driver's own sources)."""

    def read_password(self, source: str, link: str, register_link: Callable[[str], None]) -> str | None:
        """The password from ``password_env`` / ``password_file`` (None: the driver's own sources), registered as
        a secret, and any password in the target's ``link`` (DSN or URL, by ``register_link``) too, so that no
        log line or page shows either; ``source`` names the target in errors."""
        password = self.secret(f"{source} target {self.target}")
        register_link(link)
        return password


class PollSettings(Strict):
    """A source's section: a default cadence for its targets, each of which may override it."""

    interval: float = Field(15.0, gt=0, description="seconds between polls")
    timeout: float | None = Field(None, gt=0, description="seconds a poll may take; default 80% of interval")
    targets: Sequence[TargetBase] = ()  # each source narrows it to its own target model

    _timeout = field_validator("timeout")(timeout_below_interval)

    @model_validator(mode="wrap")
    @classmethod
    def _target_timeouts_and_names(cls, data: Any, handler: ModelWrapValidatorHandler[PollSettings]) -> Any:
        """Each target's timeout against its interval, checked on the data as given, so that it is reported
        along with every other error (an "after" validator would run only once everything else is valid);
        then the targets' names, unique within the section."""
        problems = _target_timeout_errors(data, cls.model_fields["interval"].default)
        try:
            settings = handler(data)
        except ValidationError as exc:
            if not problems:
                raise
            raise ValidationError.from_exception_data(exc.title, [*_as_init_errors(exc), *problems]) from None
        names = [t.target for t in settings.targets]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            problems.append({"type": PydanticCustomError("value_error", "target names must be unique; repeated: "
                                                         "{names}", {"names": ", ".join(repeated)}),
                             "loc": ("targets",), "input": names})
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        return settings

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


def _number(value: Any) -> float | None:
    """A number as pydantic would read it, else None (pydantic reports the bad value itself)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _get(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)


def _target_timeout_errors(data: Any, default_interval: float) -> list[InitErrorDetails]:
    section_interval = _number(_get(data, "interval")) or default_interval
    targets = _get(data, "targets")
    if isinstance(targets, str | bytes | Mapping) or not isinstance(targets, Sequence):
        return []
    errors: list[InitErrorDetails] = []
    for i, target in enumerate(targets):
        timeout = _number(_get(target, "timeout"))
        interval = _number(_get(target, "interval")) or section_interval
        if timeout is not None and timeout >= interval:
            message = PydanticCustomError("value_error", "must be shorter than its interval ({interval} s)",
                                          {"interval": f"{interval:g}"})
            errors.append({"type": message, "loc": ("targets", i, "timeout"), "input": _get(target, "timeout")})
    return errors


def _as_init_errors(exc: ValidationError) -> list[InitErrorDetails]:
    """The errors of ``exc``, to be raised again with more (type and message kept; without a context,
    the message is not formatted, so braces in it stay as they are)."""
    return [{"type": PydanticCustomError(e["type"], e["msg"]),
             "loc": e["loc"], "input": e["input"]} for e in exc.errors()]


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


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds: itself, or inside ``list[...]``, ``X | None``, ``Sequence[...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            model = _model_in(arg)
            if model is not None:
                return model
    return None


def keys_at(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The keys allowed in the mapping at ``loc`` (a path into ``model``'s data), by name and alias."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue  # a list item: its model is the list field's
        field = current.model_fields.get(part) or next(
            (f for f in current.model_fields.values() if f.alias == part), None)
        current = _model_in(field.annotation) if field is not None else None
    if current is None:
        return []
    return [f.alias or name for name, f in current.model_fields.items()]


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean X?)`` for the closest choice, or nothing."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def problems_from(exc: ValidationError, model: type[BaseModel] | None = None) -> list[ConfigProblem]:
    """One problem per error, with its path; an unknown key names the closest known key of ``model``."""
    problems = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
            if model is not None and loc and isinstance(loc[-1], str):
                msg += did_you_mean(loc[-1], keys_at(model, loc[:-1]))
        problems.append(ConfigProblem(_loc(loc), msg))
    return problems


def read_file(path: Path) -> dict[str, Any]:
    """Read a YAML config file into a mapping, or raise ConfigError naming the file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), [ConfigProblem("", f"cannot read file: {exc.strerror}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(str(path), [ConfigProblem(
            f"line {line}", f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(str(path), [ConfigProblem(where, f"YAML syntax: {problem}")]) from None
    except RecursionError:  # PyYAML's parser recurses once per level of nesting
        raise ConfigError(str(path), [ConfigProblem("", "YAML nested too deeply")]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), [ConfigProblem("", "top level must be a mapping of keys")])
    return data
