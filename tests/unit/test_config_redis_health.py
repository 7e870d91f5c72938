"""Config and flags for Redis and health targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli import _run_flags, build_parser
from monitor.config import ConfigError, load, validate
from monitor.service import build_pollers


def flags(*argv: str) -> dict[str, object]:
    return _run_flags(build_parser().parse_args(["run", *argv]))


def test_flags_and_interval_for_every_source() -> None:
    config = load(None, flags("--redis", "redis://:pw@cache:6380/2", "--redis", "sessions=rediss://h/0",
                              "--redis-queue", "celery", "--health-url", "http://app:8000",
                              "--interval", "7"), environ={})
    assert [t.target for t in config.redis.targets] == ["cache:6380/2", "sessions"]
    assert config.redis.queues == ["celery"]
    assert [t.target for t in config.health.targets] == ["app:8000"]
    assert config.postgres.interval == config.redis.interval == config.health.interval == 7
    pollers = build_pollers(config)
    assert [(p.source, p.target, p.interval, p.timeout) for p in pollers] == [
        ("redis", "cache:6380/2", 7, 5.6), ("redis", "sessions", 7, 5.6), ("health", "app:8000", 7, 5.6)]
    assert [e.path for e in pollers[2].endpoints] == ["/health", "/health/live", "/health/ready"]  # type: ignore[attr-defined]


def test_errors_name_the_key_and_never_echo_the_url() -> None:
    with pytest.raises(ConfigError) as info:
        validate({"redis": {"targets": [{"url": "http://:hunter22@x"}, {"url": "redis://h", "bogus": 1}],
                            "sample_budget_ms": 0},
                  "health": {"targets": [{"url": "app:8000", "endpoints": ["health"]}]}}, "f.yaml")
    text = str(info.value)
    assert "hunter22" not in text
    for path in ("redis.targets[0].url", "redis.targets[1].bogus: unknown key", "redis.sample_budget_ms",
                 "health.targets[0].url", "health.targets[0].endpoints[0].path"):
        assert path in text


def test_duplicate_target_names_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"redis\.targets: target names must be unique"):
        validate({"redis": {"targets": [{"url": "redis://h:1/0"}, {"url": "redis://:x@h:1/0"}]}}, "f")


def test_password_file_and_headers_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    monkeypatch.setenv("APP_TOKEN", "Bearer t0ken")
    config = validate({
        "redis": {"targets": [{"url": "redis://h/0", "password_file": str(secret)}]},
        "health": {"targets": [{"url": "https://app/api", "headers_env": {"Authorization": "APP_TOKEN"},
                                "endpoints": [{"path": "/ready", "timeout": 2, "json": False}]}]},
    }, "f")
    redis_poller, health_poller = build_pollers(config)
    assert redis_poller._pool_kwargs["password"] == "from-file"  # type: ignore[attr-defined]
    assert health_poller._headers["Authorization"] == "Bearer t0ken"  # type: ignore[attr-defined]
    assert health_poller.target == "app:443/api"
    endpoint = health_poller.endpoints[0]  # type: ignore[attr-defined]
    assert (endpoint.path, endpoint.timeout, endpoint.json_body) == ("/ready", 2, False)
    from collectors.base.redact import redact

    assert redact("auth Bearer t0ken and from-file") == "auth *** and ***"
