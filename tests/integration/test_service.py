"""The service as users run it: a real process, a real PostgreSQL, real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from harness.servers import LocalPostgres, free_port
from tests.support import DbpulseProcess


def test_metrics_health_and_readiness(fresh_db: str) -> None:
    with DbpulseProcess("--postgres", f"shop={fresh_db}", "--interval", "1") as svc:
        assert svc.value("dbpulse_source_up", source="postgres", target="shop") == 1
        assert svc.value("dbpulse_pg_up", target="shop") == 1
        assert svc.value("dbpulse_build_info") == 1
        status, body = svc.get("/healthz")
        assert (status, body) == (200, b'{"status": "ok"}')
        status, body = svc.get("/readyz")
        assert status == 200 and b'"up": true' in body
        status, body = svc.get("/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
        assert status == 200 and body.rstrip().endswith(b"# EOF")
        status, body = svc.get("/metrics")
        assert status == 200 and b"# HELP dbpulse_source_up" in body


def test_promtool_finds_nothing_wrong_with_a_real_scrape(fresh_db: str) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        conn.execute("SELECT * FROM t WHERE id = 1")
    with DbpulseProcess("--postgres", f"shop={fresh_db}", "--interval", "1") as svc:
        _, body = svc.get("/metrics")
    result = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout.decode().strip() == "" and result.stderr.decode().strip() == ""


def test_scrapes_never_touch_the_database(fresh_db: str) -> None:
    with DbpulseProcess("--postgres", f"shop={fresh_db}", "--interval", "30") as svc:
        polls = svc.value("dbpulse_source_polls_total", target="shop")
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            before = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
                                  ).fetchone()
            for _ in range(20):
                svc.get("/metrics")
            conn.execute("SELECT pg_stat_clear_snapshot()")
            after = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
                                 ).fetchone()
        assert svc.value("dbpulse_source_polls_total", target="shop") == polls
        assert before is not None and after is not None
        assert after[0] - before[0] <= 3  # only this test's own statements


def test_starts_with_postgres_down_and_recovers_without_restart() -> None:
    port = free_port()
    server = LocalPostgres(port=port)
    try:
        with DbpulseProcess("--postgres", f"late={server.dsn()}", "--interval", "1") as svc:
            status, _ = svc.get("/metrics")
            assert status == 200
            assert svc.value("dbpulse_source_up", source="postgres", target="late") == 0
            assert svc.value("dbpulse_pg_up", target="late") == 0
            assert svc.get("/healthz")[0] == 200  # a down database does not make the sidecar unhealthy
            server.start()
            svc.wait_for("dbpulse_source_up", 1, source="postgres", target="late")
            assert svc.value("dbpulse_pg_up", target="late") == 1
            assert (svc.value("dbpulse_source_poll_errors_total", target="late") or 0) >= 1
    finally:
        server.cleanup()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_clean_shutdown_closes_connections(fresh_db: str, sig: int) -> None:
    svc = DbpulseProcess("--postgres", f"shop={fresh_db}", "--interval", "3").start()
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        count = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbpulse'"
        assert conn.execute(count).fetchone() == (1,)
        svc.stop(sig)  # exits by itself (stop() kills and fails the test if it does not)
        assert svc.proc is not None and svc.proc.returncode == 0
        deadline = time.monotonic() + 10
        while conn.execute(count).fetchone() != (0,) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert conn.execute(count).fetchone() == (0,)
    assert "shutting down" in svc.log


def test_nothing_to_watch_is_a_clear_error() -> None:
    result = subprocess.run([sys.executable, "-m", "monitor.cli", "run"], capture_output=True, text=True,
                            env={k: v for k, v in os.environ.items() if not k.startswith("DBPULSE_")})
    assert result.returncode == 2
    assert "nothing to watch" in result.stderr


def test_unreachable_target_never_leaks_its_password() -> None:
    port = free_port()
    dsn = f"postgresql://app:Canary-5521@127.0.0.1:{port}/shop"
    with DbpulseProcess("--postgres", dsn, "--interval", "1", "--log-level", "debug") as svc:
        svc.wait_for("dbpulse_source_up", 0, source="postgres")
        _, metrics = svc.get("/metrics")
        _, ready = svc.get("/readyz")
    assert b"Canary-5521" not in metrics + ready
    assert "Canary-5521" not in svc.log
    assert f"127.0.0.1:{port}/shop" in metrics.decode()


def test_serves_metrics_without_importing_what_it_does_not_watch(fresh_db: str, tmp_path: Path) -> None:
    # Only PostgreSQL watched: redis-py is never imported (7 MiB of RSS, issue 23). The modules the process
    # loaded are written at its exit, after a real poll and a real scrape.
    loaded = tmp_path / "modules.txt"
    svc = DbpulseProcess("--postgres", f"shop={fresh_db}", "--interval", "3")
    svc.args = [sys.executable, "-c",
                "import atexit, sys\n"
                f"atexit.register(lambda: open({str(loaded)!r}, 'w').write('\\n'.join(sorted(sys.modules))))\n"
                f"sys.argv = ['dbpulse', *{svc.args[3:]!r}]\n"
                "from monitor.cli import main\n"
                "sys.exit(main())\n"]
    svc.start(timeout=60)
    try:
        svc.wait_for("dbpulse_source_up", 1, timeout=60, source="postgres", target="shop")
        status, body = svc.get("/metrics")
        assert status == 200 and b"dbpulse_pg_up" in body
    finally:
        svc.stop()
    modules = set(loaded.read_text().split())
    assert "collectors.postgres.poller" in modules  # the file is the service's own list
    assert not {m for m in modules if m == "redis" or m.startswith("redis.")}
