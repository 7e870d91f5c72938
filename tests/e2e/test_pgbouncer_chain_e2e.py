"""The pool chain's alert end to end: a real Prometheus scrapes a running dbpulse that watches two real
PgBouncers in front of a real PostgreSQL, each with a real SQLAlchemy application pool reporting on its health
endpoint, and evaluates the shipped rules (every ``for:`` shortened to 2 s).

- ``edge-tx`` (transaction mode, pool_size 4): the application ``api-full`` has both connections of its pool
  (2 + 0) checked out, outside any transaction, so PgBouncer's pool behind it has every server free: the queue
  is in the application, and PgBouncerChainAppPoolSaturated fires.
- ``edge-session`` (session mode, pool_size 2): the application ``api-ok`` holds two idle sessions, one of them
  checked out (1 of 5). PgBouncer's pool is at its size (each session holds a server) with nobody waiting: a
  healthy chain, and no PgBouncer alert fires for it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

from harness.pgbouncer import LocalPgBouncer
from harness.prometheus import LocalPrometheus
from harness.servers import LocalPostgres
from tests.e2e.test_prometheus_e2e import shortened_rules
from tests.integration.pgbouncer.test_pgbouncer_chain_ratios import app_serving
from tests.support import DbpulseProcess, eventually, serve_in_thread

pytestmark = pytest.mark.slow

CONFIG = """
pgbouncer:
  targets:
    - name: edge-tx
      dsn: {tx}
      applications: {{api-full: {database}}}
    - name: edge-session
      dsn: {session}
      applications: {{api-ok: {database}}}
"""


def engine_through(bouncer: LocalPgBouncer, database: str, pool_size: int, max_overflow: int) -> Engine:
    return create_engine(bouncer.dsn(database, "app").replace("postgresql://", "postgresql+psycopg://"),
                         poolclass=QueuePool, pool_size=pool_size, max_overflow=max_overflow)


@contextlib.contextmanager
def checked_out(engine: Engine, n: int, in_transaction: bool) -> Iterator[list[Connection]]:
    conns = [engine.connect() for _ in range(n)]
    try:
        for conn in conns:
            conn.execute(text("SELECT 1"))  # connects: in session mode, the session now holds a server
            if not in_transaction:
                conn.commit()  # checked out, but in no transaction: in transaction mode it holds no server
        yield conns
    finally:
        for conn in conns:
            conn.close()


def test_the_chain_alert_fires_for_a_full_app_pool_and_not_for_a_healthy_full_session_pool(
        pg_server: LocalPostgres, fresh_db: str, tmp_path: Path) -> None:
    database = fresh_db.rsplit("/", 1)[1]
    with contextlib.ExitStack() as stack:
        tx = stack.enter_context(LocalPgBouncer(pg_server, pool_mode="transaction", pool_size=4))
        session = stack.enter_context(LocalPgBouncer(pg_server, pool_mode="session", pool_size=2))
        full = engine_through(tx, database, pool_size=2, max_overflow=0)
        ok = engine_through(session, database, pool_size=2, max_overflow=3)
        stack.callback(full.dispose)
        stack.callback(ok.dispose)
        stack.enter_context(checked_out(full, 2, in_transaction=False))
        with checked_out(ok, 2, in_transaction=False):
            pass  # two sessions opened, back in the pool: idle, each holding its server
        stack.enter_context(checked_out(ok, 1, in_transaction=False))
        full_url = next(stack.enter_context(contextlib.closing(serve_in_thread(app_serving(full)))))
        ok_url = next(stack.enter_context(contextlib.closing(serve_in_thread(app_serving(ok)))))
        config = tmp_path / "dbpulse.yaml"
        config.write_text(CONFIG.format(tx=tx.dsn(), session=session.dsn(), database=database))
        svc = stack.enter_context(DbpulseProcess(
            "--config", str(config), "--postgres", f"shop={fresh_db}", "--health-url", f"api-full={full_url}",
            "--health-url", f"api-ok={ok_url}", "--interval", "1"))
        prometheus = LocalPrometheus([svc.base.removeprefix("http://")], shortened_rules(tmp_path),
                                     scrape_interval=1.0, workdir=tmp_path)
        prometheus.start()
        stack.callback(prometheus.stop)
        api = prometheus.client

        fired = eventually(lambda: api.firing("PgBouncerChainAppPoolSaturated", target="edge-tx"), 40,
                           "PgBouncerChainAppPoolSaturated firing for edge-tx")
        assert fired[0]["labels"]["database"] == database and float(fired[0]["value"]) == 1.0
        # the healthy chain, read by the same Prometheus in the same evaluations: its pool is at its size
        ratio = {r["metric"]["link"]: float(r["value"][1]) for r in api.query(
            f'dbpulse_pgbouncer_chain_saturation_ratio{{target="edge-session", database="{database}"}}')}
        assert ratio["pgbouncer_pool"] == 1.0 and ratio["app_pool"] == pytest.approx(1 / 5), ratio
        time.sleep(3)  # past the shortened `for:` again
        firing = sorted({a["labels"]["alertname"] for a in api.alerts()
                         if a["state"] == "firing" and a["labels"].get("target") == "edge-session"})
        assert firing == [], firing
