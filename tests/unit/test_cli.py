from __future__ import annotations

from pathlib import Path

import pytest

from monitor import __version__
from monitor.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"dbpulse {__version__}"


def subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", [[], *([c] for c in subcommands())])
def test_help_on_every_command(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: dbpulse")


def test_contract_commands_exist() -> None:
    assert {"run", "check-config"} <= set(subcommands())


def test_example_configuration_is_valid_where_its_secrets_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    example = (ROOT / "examples" / "dbpulse.yaml").read_text()
    assert "/run/secrets/billing-db" in example and "DBPULSE_SHOP_PASSWORD" in example
    here = tmp_path / "dbpulse.yaml"
    here.write_text(example.replace("/run/secrets/billing-db", str(tmp_path / "billing-db")))
    monkeypatch.delenv("DBPULSE_SHOP_PASSWORD", raising=False)
    # Without its secrets, check-config says so, as run would before connecting.
    assert main(["check-config", str(here)]) == 2
    err = capsys.readouterr().err
    assert "postgres.targets[0].password_env: environment variable DBPULSE_SHOP_PASSWORD is not set" in err
    assert f"postgres.targets[1].password_file: cannot read {tmp_path / 'billing-db'}: No such file" in err
    (tmp_path / "billing-db").write_text("s3cret\n")
    monkeypatch.setenv("DBPULSE_SHOP_PASSWORD", "s3cret")
    assert main(["check-config", str(here)]) == 0
    assert "OK (2 PostgreSQL target(s)" in capsys.readouterr().out
