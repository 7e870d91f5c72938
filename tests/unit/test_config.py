from __future__ import annotations

from pathlib import Path

import pytest

from collectors.base.settings import resolve_secret
from collectors.postgres.access import target_name
from collectors.postgres.settings import target_from_flag
from monitor.cli import main
from monitor.config import ConfigError, Layers, load, validate


def problems(data: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate(data, "dbpulse.yaml")
    return [str(p) for p in info.value.problems]


def test_defaults_are_valid() -> None:
    config = validate({"postgres": {"targets": [{"dsn": "postgresql:///shop"}]}}, "x")
    assert config.listen == "0.0.0.0:19630"
    assert config.postgres.interval == 15
    assert config.postgres.timeout_of(config.postgres.targets[0]) == 12


def test_every_error_is_reported_at_once_with_its_path() -> None:
    found = problems({
        "listen": "nowhere",
        "postgres": {
            "interval": 5,
            "timeout": 9,
            "targets": [{"dsn": "host=a dbname=b", "bogus": 1}, {"name": "bad name!", "dsn": "x"}],
        },
        "colour": "blue",
    })
    assert found == [
        "listen: must be HOST:PORT, e.g. 0.0.0.0:19630",
        "postgres.timeout: must be shorter than interval (5.0 s)",
        "postgres.targets[0].bogus: unknown key",
        "postgres.targets[1].name: must be 1-63 characters of letters, digits and _ . : / -",
        "postgres.targets[1].dsn: is not a valid PostgreSQL connection string or URI",
        "colour: unknown key",
    ]


def test_bad_dsn_error_never_echoes_the_password() -> None:
    found = problems({"postgres": {"targets": [{"dsn": "host=a password=s3cr3t port=notaport x"}]}})
    assert len(found) == 1
    assert found[0].startswith("postgres.targets[0].dsn:")
    assert "s3cr3t" not in found[0]


def test_duplicate_target_names_rejected() -> None:
    found = problems({"postgres": {"targets": [
        {"dsn": "postgresql://a@h/db"}, {"dsn": "postgresql://b@h/db"}]}})
    assert found == ["postgres.targets: target names must be unique; repeated: h:5432/db"]


@pytest.mark.parametrize(("dsn", "name"), [
    ("postgresql://app:s3cr3t@db.internal:6432/shop", "db.internal:6432/shop"),
    ("host=/var/run/postgresql dbname=app password=s3cr3t", "localhost:5432/app"),
    ("postgresql:///orders", "localhost:5432/orders"),
])
def test_derived_target_name_is_safe(dsn: str, name: str) -> None:
    assert target_name(dsn) == name
    assert "s3cr3t" not in target_name(dsn)


def test_named_flag() -> None:
    assert target_from_flag("shop=postgresql://u@h/db") == {"name": "shop", "dsn": "postgresql://u@h/db"}
    assert target_from_flag("host=h dbname=db") == {"dsn": "host=h dbname=db"}


def test_layers_file_then_env_then_flags_and_targets_add_up(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("listen: 127.0.0.1:1000\npostgres:\n  interval: 30\n  targets:\n    - dsn: postgresql:///a\n")
    config = load(path, {}, {"DBPULSE_LISTEN": "127.0.0.1:2000"})
    assert config.listen == "127.0.0.1:2000"
    assert [t.target for t in config.postgres.targets] == ["localhost:5432/a"]
    flags = {"listen": "127.0.0.1:3000", "postgres": {"targets": [{"name": "extra", "dsn": "postgresql:///b"}]}}
    environ = {"DBPULSE_LISTEN": "127.0.0.1:2000", "DBPULSE_POSTGRES": "env=postgresql:///c"}
    config = load(path, flags, environ)
    assert config.listen == "127.0.0.1:3000"
    assert config.postgres.interval == 30  # the file's value survives a flag that does not set it
    # Targets are added, file first: a flag never silently drops the file's targets.
    assert [t.target for t in config.postgres.targets] == ["localhost:5432/a", "env", "extra"]
    layers = Layers.read(path, flags, environ)
    assert layers.origins(layers.config()) == (
        f"postgres localhost:5432/a ({path}) + env (DBPULSE_* environment) + extra (flags); "
        "targets from flags and DBPULSE_POSTGRES are added to the file's")
    only_flags = Layers.read(None, flags, {})
    assert only_flags.origins(only_flags.config()) == "postgres extra (flags)"


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("postgres:\n  targets: [\n")
    with pytest.raises(ConfigError) as info:
        load(path, {}, {})
    assert str(path) in str(info.value)
    assert "line" in str(info.value.problems[0])


def test_password_from_env_and_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("fromfile\n")
    config = validate({"postgres": {"targets": [
        {"name": "a", "dsn": "postgresql://u@h/db", "password_env": "PGPW"},
        {"name": "b", "dsn": "postgresql://u@h/db", "password_file": str(secret)},
        {"name": "c", "dsn": "postgresql://u@h/db", "password_env": "MISSING"},
    ]}}, "x")
    a, b, c = config.postgres.targets
    assert resolve_secret("a", a.password_env, a.password_file, {"PGPW": "fromenv"}) == "fromenv"
    assert resolve_secret("b", b.password_env, b.password_file, {}) == "fromfile"
    with pytest.raises(ConfigError, match="MISSING is not set"):
        resolve_secret("c", c.password_env, c.password_file, {})


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("postgres:\n  targets:\n    - name: shop\n      dsn: postgresql://u@h/db\n")
    assert main(["check-config", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("postgres:\n  intervall: 5\n  targets:\n    - dsn: postgresql://u@h/db\n      nme: x\n")
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err
    assert "postgres.intervall: unknown key (did you mean interval?)" in err
    assert "postgres.targets[0].nme: unknown key (did you mean name?)" in err


def test_check_config_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read file" in capsys.readouterr().err


def test_target_timeout_must_be_below_its_interval() -> None:
    found = problems({"postgres": {"interval": 15, "targets": [
        {"dsn": "postgresql:///a", "timeout": 60},
        {"name": "b", "dsn": "postgresql:///b", "interval": 100, "timeout": 60},
    ]}, "redis": {"targets": [{"url": "redis://h", "interval": 2, "timeout": 2}]}})
    assert found == [
        "postgres.targets[0].timeout: must be shorter than its interval (15 s)",
        "redis.targets[0].timeout: must be shorter than its interval (2 s)",
    ]
