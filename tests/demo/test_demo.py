"""``dbpulse demo`` end to end: it starts everything, prints URLs that work, the UI shows the
advisor's findings, and Ctrl-C leaves no process and no file behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.web.chromium import ARTIFACTS, screenshot


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


class Output:
    """Collects a process's output lines in a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        self._stdout = proc.stdout
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float, proc: subprocess.Popen[str]) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.text)
            if match:
                return match
            if proc.poll() is not None:
                time.sleep(0.2)
                break
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} not printed within {timeout} s:\n{self.text}")


def _processes_mentioning(needle: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_demo_runs_shows_advice_and_leaves_nothing_behind() -> None:
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "demo", "--listen", "127.0.0.1:0", "--duration", "300",
         "--interval", "1", "--advisor-interval", "5", "--scale", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    out = Output(proc)
    try:
        ui = out.wait_for(r"web UI\s+(http://\S+/)", 40, proc).group(1)
        tmp = Path(out.wait_for(r"files\s+(\S+)", 5, proc).group(1))
        pg_port = int(out.wait_for(r"PostgreSQL\s+postgresql://\S+:(\d+)/", 5, proc).group(1))
        redis_port = int(out.wait_for(r"Redis\s+redis://\S+:(\d+)/", 5, proc).group(1))
        app = out.wait_for(r"demo app\s+(http://\S+?)/health", 5, proc).group(1)
        assert tmp.is_dir() and _listening(pg_port) and _listening(redis_port)

        # Every printed URL works.
        for line in out.lines:
            for url in re.findall(r"http://\S+", line):
                url = url.rstrip(");,.")
                if url.endswith("/advice.html") or url.endswith("/advice"):
                    continue  # checked below, once the advisor had its first run
                status, body = _get(url)
                assert status == 200, (url, body[:500])
        status, metrics = _get(ui + "metrics")
        for name in ("dbpulse_pg_up", "dbpulse_redis_up", "dbpulse_redis_queue_length", "dbpulse_pg_app_connections"):
            assert f"\n{name}" in metrics, name
        status, ready = _get(app + "/health/ready")
        assert status == 200 and '"pool"' in ready and '"is_ready": true' in ready

        # The UI shows every source, the app's pool and Redis TTL discipline, then the advice.
        deadline = time.monotonic() + 60
        page = ""
        while time.monotonic() < deadline:
            _, page = _get(ui + "ui/sections")
            if "Connection pool (as the app reports it)" in page and "tenant:settings:*" in page:
                break
            time.sleep(0.5)
        assert "dbpulse_pg" not in page  # the UI reads snapshots, it is not a metrics dump
        assert "tenant:settings:*" in page and "keys without TTL" in page, page[:3000]
        assert "components.database.pool" in page

        status, _ = _get(ui + "advice")
        assert status == 200
        first = out.wait_for(r"first index advice after (\d+) s", 60, proc)
        missing = out.wait_for(r"first missing-index advice .* after (\d+) s", 90, proc)
        first_missing = time.monotonic() - started
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the UI shows the same report (its next refresh)
            _, page = _get(ui + "ui/sections")
            if "Missing index" in page:
                break
            time.sleep(0.5)
        assert "Missing index" in page and "CREATE INDEX" in page and 'data-copy="' in page, page[:4000]
        assert re.search(r"payments|quote_items", page)
        assert "N+1 and slow statements" in page
        status, report = _get(ui + "advice.html")
        assert status == 200 and "CREATE INDEX" in report
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "demo-first-advice.txt").write_text(
            f"first advice after {first.group(1)} s, first missing-index advice after {missing.group(1)} s "
            f"({first_missing:.1f} s after the command started; --scale 0.5 --interval 1 --advisor-interval 5)\n")
        screenshot(ui, "demo-ui.png", size="1400,2600")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, out.text
    assert "nothing left running" in out.text
    assert not tmp.exists(), f"{tmp} was left on disk"
    assert not _processes_mentioning(str(tmp)), _processes_mentioning(str(tmp))
    assert not _listening(pg_port) and not _listening(redis_port)
    assert not _listening(int(ui.rsplit(":", 1)[1].strip("/")))


def test_demo_says_what_is_missing(tmp_path: Path) -> None:
    """No PostgreSQL binaries and no redis-server on PATH: one clear message, exit 1, nothing started."""
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "DBPULSE_PG_BIN": str(tmp_path / "no-postgres"), "PATH": str(empty)}
    result = subprocess.run([sys.executable, "-m", "monitor.cli", "demo", "--listen", "127.0.0.1:0",
                             "--duration", "1"], capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 1
    assert "PostgreSQL server binaries" in result.stderr
    assert "redis-server" in result.stderr
    assert "make setup" in result.stderr
    assert "starting" not in result.stdout
