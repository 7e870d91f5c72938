"""A canary password in every DSN and URL form never shows up anywhere dbpulse writes."""

from __future__ import annotations

from pathlib import Path

import psycopg

from harness.servers import LocalPostgres, free_port
from tests.support import DbpulseProcess

CANARY = "Canary-Secret-4417"
PAGES = ("/metrics", "/readyz", "/healthz", "/", "/ui/sections", "/advice", "/advice.html")


def test_canary_never_leaks(pg_server: LocalPostgres, tmp_path: Path) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS canary; CREATE ROLE canary LOGIN PASSWORD '{CANARY}' IN ROLE pg_monitor")
    dead = free_port()
    secret_file = tmp_path / "pg-password"
    secret_file.write_text(CANARY + "\n")
    config = tmp_path / "dbpulse.yaml"
    config.write_text(f"""
postgres:
  targets:
    - name: uri-ok
      dsn: postgresql://canary:{CANARY}@127.0.0.1:{pg_server.port}/postgres
    - name: uri-dead
      dsn: postgresql://canary:{CANARY}@127.0.0.1:{dead}/postgres
    - name: kv-dead
      dsn: host=127.0.0.1 port={dead} user=canary password={CANARY} dbname=postgres
    - name: env-ok
      dsn: postgresql://canary@127.0.0.1:{pg_server.port}/postgres
      password_env: CANARY_PW
    - name: file-wrong-user
      dsn: postgresql://nobody@127.0.0.1:{pg_server.port}/postgres
      password_file: {secret_file}
redis:
  targets:
    - name: redis-dead
      url: redis://:{CANARY}@127.0.0.1:{dead}/0
    - name: redis-acl-dead
      url: redis://user:{CANARY}@127.0.0.1:{dead}/0
health:
  targets:
    - name: app-dead
      url: http://admin:{CANARY}@127.0.0.1:{dead}
""")
    with DbpulseProcess("--config", str(config), "--interval", "1", "--advice-interval", "1",
                        "--log-level", "debug", env={"CANARY_PW": CANARY}) as svc:
        svc.wait_for("dbpulse_source_up", 1, target="uri-ok", source="postgres")
        svc.wait_for("dbpulse_source_up", 1, target="env-ok", source="postgres")
        svc.wait_for("dbpulse_source_up", 0, target="file-wrong-user", source="postgres")
        bodies = {path: svc.get(path)[1] for path in PAGES}
    for path, body in bodies.items():
        assert CANARY.encode() not in body, path
    assert CANARY not in svc.log
    assert "password authentication failed" in svc.log  # the error itself is still reported
