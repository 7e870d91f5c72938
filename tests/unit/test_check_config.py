"""`check-config` predicts `run`: every bad input of issue 20 ("Measured" 7 and 8) fails both, with the same
lines and the same exit status, every problem at once, one line each, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.registry import sources
from monitor.cli import main

FIVE_TARGETS = """\
postgres:
  targets:
    - {name: good, dsn: "postgresql://u@h/db"}
    - {name: port, dsn: "postgresql://u@h:notaport/db"}
    - {name: sslmode, dsn: "postgresql://u@h/db?sslmode=bogus"}
    - {name: range, dsn: "host=h port=99999 dbname=db"}
    - {name: also-good, dsn: "host=h dbname=db"}
"""

SECRETS = """\
postgres:
  targets:
    - {name: a, dsn: "postgresql://u@h/db", password_file: /nonexistent/pg-password}
    - {name: b, dsn: "postgresql://u@h/db", password_env: DBPULSE_TEST_UNSET_PASSWORD}
redis:
  targets:
    - {url: "redis://h/0", password_env: DBPULSE_TEST_UNSET_PASSWORD}
health:
  targets:
    - {url: "http://app:8000", headers_env: {Authorization: DBPULSE_TEST_UNSET_TOKEN}}
"""

# A target's timeout at or over its interval used to hide the other errors of the file.
TIMEOUT_AND_TYPO = """\
postgres:
  interval: 5
  targets:
    - {name: slow, dsn: "postgresql://u@h/a", timeout: 9}
    - {name: typo, dsn: "postgresql://u@h/b", intervall: 3}
redis:
  targets:
    - {url: "redis://h/0", interval: 2, timeout: 2, bogus: 1}
"""

# postgres.targets[].databases: each bad form named by its key.
DATABASES = """\
postgres:
  targets:
    - {name: word, dsn: "postgresql://u@h/a", databases: all}
    - {name: both, dsn: "postgresql://u@h/b", databases: {names: [x], include: ["y*"]}}
    - {name: cap, dsn: "postgresql://u@h/c", databases: {max: 0, budget: 0, concurrency: 99}}
    - {name: typo, dsn: "postgresql://u@h/d", databases: {exclud: ["z*"]}}
    - {name: empty, dsn: "postgresql://u@h/e", databases: []}
"""

CASES = {
    "bad DSN values": (FIVE_TARGETS, [
        'postgres.targets[1].dsn: invalid integer value "notaport" for connection option "port"',
        'postgres.targets[2].dsn: invalid sslmode value: "bogus"',
        'postgres.targets[3].dsn: invalid port number: "99999"',
    ]),
    "bad databases": (DATABASES, [
        "postgres.targets[0].databases: must be auto, a list of database names, or a mapping (include, exclude, "
        "max, ...); got 'all'",
        "postgres.targets[1].databases: give names, or include/exclude patterns, not both",
        "postgres.targets[2].databases.max: Input should be greater than or equal to 1",
        "postgres.targets[2].databases.budget: Input should be greater than 0",
        "postgres.targets[2].databases.concurrency: Input should be less than or equal to 16",
        "postgres.targets[3].databases.exclud: unknown key (did you mean exclude?)",
        "postgres.targets[4].databases: a list of databases must name at least one",
    ]),
    "empty file": ("", ["nothing to watch: give --postgres DSN"]),
    "comments only": ("# nothing yet\n", ["nothing to watch: give --postgres DSN"]),
    "missing secrets": (SECRETS, [
        "postgres.targets[0].password_file: cannot read /nonexistent/pg-password: No such file or directory",
        "postgres.targets[1].password_env: environment variable DBPULSE_TEST_UNSET_PASSWORD is not set",
        "redis.targets[0].password_env: environment variable DBPULSE_TEST_UNSET_PASSWORD is not set",
        "health.targets[0].headers_env: environment variable DBPULSE_TEST_UNSET_TOKEN is not set",
    ]),
    "timeout and typos": (TIMEOUT_AND_TYPO, [
        "postgres.targets[1].intervall: unknown key (did you mean interval?)",
        "postgres.targets[0].timeout: must be shorter than its interval (5 s)",
        "redis.targets[0].bogus: unknown key",
        "redis.targets[0].timeout: must be shorter than its interval (2 s)",
    ]),
    "unknown section": ("postgre:\n  targets: [{dsn: 'postgresql://u@h/db'}]\n", [
        "postgre: unknown key (did you mean postgres?)", "nothing to watch"]),
    "bad listen": ("listen: nowhere\npostgres: {targets: [{dsn: 'postgresql://u@h/db'}]}\n", [
        "listen: must be HOST:PORT, e.g. 0.0.0.0:19630"]),
    "YAML syntax": ("postgres:\n  targets: [\n", ["line 3, column 1: YAML syntax"]),
    "not a mapping": ("- postgres\n", ["top level must be a mapping of keys"]),
    "nested too deeply": ("postgres: " + "[" * 5000 + "]" * 5000 + "\n", ["YAML nested too deeply"]),
    "missing web config": ("web_config: /nonexistent/web.yml\nlisten: nowhere\n"
                           "postgres: {targets: [{dsn: 'postgresql://u@h/db'}]}\n", [
        "listen: must be HOST:PORT", "invalid configuration in /nonexistent/web.yml:",
        "cannot read file: No such file or directory"]),
}


def run_both(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, int, str]:
    """check-config FILE and run --config FILE: their exit statuses, and the one error text they share."""
    check = main(["check-config", str(path)])
    check_err = capsys.readouterr().err
    run = main(["run", "--config", str(path)])
    run_err = capsys.readouterr().err
    assert check_err == run_err
    return check, run, check_err


def assert_one_line_each(err: str, path: Path) -> None:
    assert "Traceback" not in err
    lines = err.splitlines()
    assert lines and all(line.startswith(("dbpulse: ", "  - ")) for line in lines), err
    assert str(path) in lines[0]


@pytest.mark.parametrize("case", CASES)
def test_check_config_fails_where_run_fails(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("DBPULSE_TEST_UNSET_PASSWORD", "DBPULSE_TEST_UNSET_TOKEN", "DBPULSE_POSTGRES", "DBPULSE_LISTEN"):
        monkeypatch.delenv(name, raising=False)
    text, expected = CASES[case]
    path = tmp_path / "dbpulse.yaml"
    path.write_text(text)
    check, run, err = run_both(path, capsys)
    assert check == run == 2
    assert_one_line_each(err, path)
    for line in expected:
        assert line in err, f"{line!r} not in:\n{err}"


@pytest.mark.parametrize(("content", "expected"), [
    (b"postgres:\n  targets: [{dsn: 'postgresql://u@h/caf\xe9'}]\n", "line 2: not UTF-8 text (byte 0xe9)"),
    (b"\xff\xfe" + "listen: x\n".encode("utf-16-le"), "line 1: not UTF-8 text (byte 0xff)"),
])
def test_a_file_that_is_not_utf8_is_one_line(
    content: bytes, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(content)
    check, run, err = run_both(path, capsys)
    assert check == run == 2
    assert_one_line_each(err, path)
    assert expected in err


def test_a_directory_or_a_missing_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for path, reason in ((tmp_path, "cannot read file: Is a directory"),
                         (tmp_path / "nope.yaml", "cannot read file: No such file or directory")):
        check, run, err = run_both(path, capsys)
        assert check == run == 2
        assert_one_line_each(err, path)
        assert reason in err


def test_a_good_file_names_where_each_target_comes_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """check-config reads the environment as run does: DBPULSE_POSTGRES adds its targets to the file's."""
    path = tmp_path / "dbpulse.yaml"
    path.write_text("postgres:\n  targets: [{name: shop, dsn: 'postgresql://u@h/db'}]\n")
    monkeypatch.setenv("DBPULSE_POSTGRES", "extra=postgresql://u@h2/db")
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    others = "".join(f", 0 {s.title} target(s)" for s in sources() if s.name != "postgres")
    variables = " and ".join(s.env for s in sources() if s.env)  # DBPULSE_POSTGRES and any other source's
    assert "DBPULSE_POSTGRES" in variables
    assert out.strip() == (f"{path}: OK (2 PostgreSQL target(s){others}): "
                           f"postgres shop ({path}) + extra (DBPULSE_* environment); "
                           f"targets from flags and {variables} are added to the file's")


def test_a_certificate_that_cannot_be_loaded_fails_check_config_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """run used to find it only when it started listening ("cannot start: [SSL] PEM lib")."""
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    (tmp_path / "key.pem").write_text("not a key\n")
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: {tmp_path / 'cert.pem'}\n  key_file: {tmp_path / 'key.pem'}\n")
    path = tmp_path / "dbpulse.yaml"
    path.write_text(f"web_config: {web}\npostgres: {{targets: [{{dsn: 'postgresql://u@h/db'}}]}}\n")
    check, run, err = run_both(path, capsys)
    assert check == run == 2
    assert f"invalid configuration in {web}:" in err
    assert "tls_server_config: cannot load the certificate and key" in err
