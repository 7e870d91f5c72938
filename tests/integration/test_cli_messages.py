"""The command line's messages (issue 24, "Measured" 6; issue 20, "Measured" 8 and 9): each names what failed,
in plain words, on one line; `--postgres NAME=DSN` means the same in `run` and `advise`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import demo.__main__ as demo_main
from harness.servers import free_port
from monitor.cli import build_parser, main
from tests.support import DbpulseProcess

ENV = {k: v for k, v in os.environ.items() if not k.startswith("DBPULSE_")}


def dbpulse(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor.cli", *argv], capture_output=True, text=True,
                          env=ENV, timeout=120)


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "--interval", "-5"], "dbpulse run: argument --interval: must be > 0, got -5"),
    (["run", "--advisor-interval", "-1"], "dbpulse run: argument --advisor-interval: must be ≥ 0, got -1"),
    (["run", "--bogus"], "dbpulse: unrecognized arguments: --bogus"),
])
def test_bad_flags_are_one_line_naming_the_flag(argv: list[str], message: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(message), line
    assert line.endswith("--help)")


def _subcommands() -> list[str]:
    action = next(a for a in build_parser()._actions if a.dest == "command")
    return sorted(action.choices)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", _subcommands())
def test_help_prints_no_empty_default_and_no_default_twice(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "(default: None)" not in out and "(default: False)" not in out
    options = out.split("options:", 1)[1]
    # each option's help is the text up to the next line that starts an option
    helps = [h for h in options.split("\n  -") if h.strip()]
    for text in helps:
        assert " ".join(text.split()).count("default") <= 1, text


@pytest.mark.parametrize(("argv", "message"), [
    (["--clients", "-1"], "python -m demo: argument --clients: must be ≥ 1, got -1"),
    (["--clients", "two"], "python -m demo: argument --clients: must be a whole number, got 'two'"),
    (["--app-port", "70000"], "python -m demo: argument --app-port: must be ≥ 0 and ≤ 65535, got 70000"),
    (["--scale", "0"], "python -m demo: argument --scale: must be > 0, got 0"),
])
def test_bad_demo_flags_are_one_line_naming_the_flag(argv: list[str], message: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        demo_main.run(argv)
    assert info.value.code == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(message), line


def test_demo_help_prints_no_empty_default_and_no_default_twice(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        demo_main.run(["--help"])
    out = capsys.readouterr().out
    assert "(default: None)" not in out and "(default: False)" not in out


def test_the_same_flag_names_in_run_and_demo() -> None:
    run = build_parser().parse_args(["run", "--advisor-interval", "60", "--listen", "127.0.0.1:1"])
    demo = demo_main.build_parser().parse_args(["--advisor-interval", "60", "--listen", "127.0.0.1:0"])
    assert run.advisor_interval == demo.advisor_interval == 60
    # the former names still work, hidden from --help
    assert build_parser().parse_args(["run", "--advice-interval", "5"]).advisor_interval == 5
    options = demo_main.options_of(demo_main.build_parser().parse_args(["--listen", "127.0.0.1:7", "--port", "0"]))
    assert (options.host, options.port) == ("127.0.0.1", 0)


def test_dbpulse_has_no_demo_command(capsys: pytest.CaptureFixture[str]) -> None:
    """The service's command never reaches for the demo: it is started by its own entry point."""
    with pytest.raises(SystemExit):
        main(["demo"])
    assert "invalid choice: 'demo'" in capsys.readouterr().err


def test_listen_on_a_host_that_does_not_resolve_names_the_address() -> None:
    result = dbpulse("run", "--postgres", f"postgresql://u@127.0.0.1:{free_port()}/db", "--listen", "nohost:9635",
                     "--advisor-interval", "0")
    assert result.returncode == 1
    assert "cannot listen on nohost:9635: the host name does not resolve" in result.stderr
    assert "Traceback" not in result.stderr


def test_listen_on_a_port_in_use_names_the_address() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = dbpulse("run", "--postgres", f"postgresql://u@127.0.0.1:{free_port()}/db", "--listen",
                         f"127.0.0.1:{port}", "--advisor-interval", "0")
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: the port is already in use" in result.stderr


def test_advice_for_an_unknown_target_says_it_is_unknown() -> None:
    dsn = f"postgresql://u@127.0.0.1:{free_port()}/db"  # nothing there: the advisor never has a report
    with DbpulseProcess("--postgres", f"shop={dsn}", "--interval", "1", "--advisor-interval", "1",
                        env={"DBPULSE_POSTGRES": ""}) as svc:
        status, body = svc.get("/advice?target=nope")
        assert status == 404
        assert json.loads(body) == {"error": "unknown target 'nope'; the advisor runs on: shop"}
        status, body = svc.get("/advice.html?target=nope")
        assert status == 404 and body.decode().startswith("unknown target 'nope'")
        status, body = svc.get("/advice?target=shop")
        assert status == 404
        assert json.loads(body)["error"].startswith("no advice for shop yet")


def test_advise_names_its_target_as_run_does(fresh_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["advise", "--postgres", f"shop={fresh_db}", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["target"] == "shop"
    assert main(["advise", "--postgres", f"shop={fresh_db}", "--target", "other", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["target"] == "other"


@pytest.mark.parametrize(("dsn", "message"), [
    ("shop=postgresql://u@h:notaport/db",
     'dbpulse advise: --postgres: dsn: invalid integer value "notaport" for connection option "port"'),
    ("postgresql://u@h/db?sslmode=bogus", 'dbpulse advise: --postgres: dsn: invalid sslmode value: "bogus"'),
])
def test_advise_checks_the_dsn_as_run_does(dsn: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["advise", "--postgres", dsn]) == 2
    assert one_error_line(capsys.readouterr().err) == message


def test_advise_checks_its_output_before_connecting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The database is unreachable: the output's problem is found first, so nothing waits on an analysis whose
    report could never be written."""
    dsn = f"postgresql://u@127.0.0.1:{free_port()}/db"
    cases = [("/missing/dir/r.md", "--output /missing/dir/r.md: directory /missing/dir does not exist"),
             (str(tmp_path), f"--output {tmp_path}: is a directory")]
    for output, message in cases:
        assert main(["advise", "--postgres", dsn, "--output", output]) == 2
        assert one_error_line(capsys.readouterr().err) == f"dbpulse advise: {message}"


def test_run_adds_flag_targets_to_the_file_and_logs_it(tmp_path: Path) -> None:
    """`--config f.yaml --postgres extra=...` used to replace the file's targets without a word."""
    path = tmp_path / "f.yaml"
    path.write_text(f"postgres:\n  targets:\n    - name: shop\n      dsn: postgresql://u@127.0.0.1:{free_port()}/db\n")
    extra = f"extra=postgresql://u@127.0.0.1:{free_port()}/db"
    with DbpulseProcess("--config", str(path), "--postgres", extra, "--interval", "1", "--advisor-interval", "0",
                        env={"DBPULSE_POSTGRES": ""}) as svc:
        status, body = svc.get("/readyz")
        assert status == 200
        assert {s["target"] for s in json.loads(body)["sources"]} == {"shop", "extra"}
    assert (f"targets: postgres shop ({path}) + extra (flags); targets from flags and DBPULSE_POSTGRES are added "
            "to the file's") in svc.log
