"""The metric catalogue is the truth: a real service with every source configured must export
exactly the catalogued names, with the catalogued types and label names."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import psycopg
import redis

from collectors.base.catalogue import catalogue
from harness.pgbouncer import LocalPgBouncer
from harness.servers import LocalPostgres, LocalRedis
from tests.integration.postgres.health_scenario import live_trouble, pair
from tests.integration.redis.plant import every_redis_metric
from tests.support import DbpulseProcess, StandInApp

CONFIG = """
postgres:
  statement_text_info: true
  expected_standbys: 1
  app_pools:
    - application_name: quotes-api
      capacity: 30
advisor:
  interval: 2
  thresholds:
    min_table_rows: 100
    unused_min_stats_age_seconds: 0
"""


def exported(svc: DbpulseProcess) -> dict[str, tuple[str, frozenset[str]]]:
    """family name -> (type, label names) from a real scrape."""
    from prometheus_client.parser import text_string_to_metric_families

    _, body = svc.get("/metrics")
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for family in text_string_to_metric_families(body.decode()):
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = frozenset(k for s in family.samples for k in s.labels)
        if family.samples:
            out[name] = (family.type, labels)
    return out


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def pgbouncer_version(svc: DbpulseProcess) -> str:
    from prometheus_client.parser import text_string_to_metric_families

    _, body = svc.get("/metrics")
    return next(s.labels["version"] for f in text_string_to_metric_families(body.decode()) for s in f.samples
                if s.name == "dbpulse_pgbouncer_info")


def test_exported_metrics_equal_the_catalogue(pg_server: LocalPostgres, fresh_db: str, redis_server: LocalRedis,
                                              stand_in_app: StandInApp, tmp_path: Path) -> None:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE quotes (id int PRIMARY KEY, tenant int, total int)")
        conn.execute("INSERT INTO quotes SELECT g, g % 50, g FROM generate_series(1, 2000) g")
        conn.execute("SELECT pg_stat_reset()")  # so the database has a stats_reset time
        conn.execute("VACUUM ANALYZE quotes")
        for i in range(5):
            conn.execute("SELECT * FROM quotes WHERE tenant = %s", (i,)).fetchall()
    stack = contextlib.ExitStack()
    app_conn = psycopg.connect(fresh_db, application_name="quotes-api")
    cache = redis.Redis.from_url(redis_server.url())
    cache.set("dashboard:kpi:1", "x", ex=300)
    cache.set("session:abc", "y")
    cache.rpush("celery", "task")
    config = tmp_path / "dbpulse.yaml"
    # A target that watches the cluster's other databases (postgres.targets[].databases): their own series.
    watched = "databases: {include: ['t*'], refresh_interval: 2}"  # read again soon if a turn timed out
    config.write_text(CONFIG.replace("postgres:\n", "postgres:\n  targets:\n    - {name: cluster, dsn: "
                                     f"'{pg_server.dsn()}', {watched}}}\n", 1))
    # PostgreSQL health: a 17 primary (pg_stat_io is 16+) and its standby, in trouble (slots, paused
    # replay, a blocking chain, a running VACUUM, a failed archiving...): every health metric has a value.
    try:
        replica = stack.enter_context(every_redis_metric(redis_server))  # replication, slowlog, errors, latency
        pg = stack.enter_context(pair("17"))
        stack.enter_context(live_trouble(pg))
        # PgBouncer in front of the fresh database, with a client of its own holding a server connection.
        bouncer = stack.enter_context(LocalPgBouncer(pg_server))
        bouncer_client = stack.enter_context(psycopg.connect(
            bouncer.dsn(fresh_db.rsplit("/", 1)[-1].split("?")[0], user="app"), autocommit=True,
            application_name="bouncer-client", prepare_threshold=None))
        with DbpulseProcess("--config", str(config), "--postgres", f"shop={fresh_db}",
                            "--postgres", f"primary={pg.primary.dsn()}", "--postgres", f"standby={pg.standby.dsn()}",
                            "--redis", f"cache={redis_server.url()}", "--redis", f"replica={replica.url()}",
                            "--redis-queue", "celery",
                            "--health-url", f"api={stand_in_app.url}", "--pgbouncer", f"bouncer={bouncer.dsn()}",
                            "--interval", "1") as svc:
            # Returns as soon as every metric is seen; the margin is for a loaded machine, where a poll (and
            # the other databases' turn in it, read again every refresh_interval) can time out.
            deadline = time.monotonic() + 60
            names: dict[str, tuple[str, frozenset[str]]] = {}
            while time.monotonic() < deadline:
                app_conn.execute("SELECT sum(total) FROM quotes").fetchone()  # block accesses between polls
                app_conn.execute("SELECT pg_stat_force_next_flush()")
                app_conn.commit()
                cache.get("dashboard:kpi:1")
                cache.get("missing")
                bouncer_client.execute("SELECT 1").fetchone()
                names = exported(svc)
                if set(catalogue()) - set(names) <= {n for n, spec in catalogue().items() if spec.requires}:
                    break
                time.sleep(0.3)
            version = pgbouncer_version(svc)
    finally:
        app_conn.close()
        stack.close()
    specs = catalogue()
    assert sorted(set(names) - set(specs)) == [], "exported but not in the catalogue (collectors/*/metrics.yaml)"
    # A metric that needs a newer server (PgBouncer's 1.21+ columns) is exported exactly when the server has it.
    newer = sorted(n for n, spec in specs.items() if spec.requires
                   and version_tuple(version) < version_tuple(spec.requires))
    assert sorted(set(specs) - set(names)) == newer, f"catalogued but never exported (PgBouncer {version})"
    for name, (kind, labels) in names.items():
        spec = specs[name]
        assert kind == ("counter" if spec.type == "counter" else "gauge"), name
        assert labels == frozenset(spec.labels), name


def test_catalogue_entries_follow_prometheus_naming() -> None:
    for name, spec in catalogue().items():
        assert spec.type in {"gauge", "counter"}, name
        assert (spec.type == "counter") == name.endswith("_total"), name
        if spec.unit:
            assert spec.unit in {"seconds", "bytes", "ratio"}, name
            stem = name.removesuffix("_total")
            assert stem.endswith(f"_{spec.unit}") or stem.endswith(f"_{spec.unit}_total"), name
        if not name.startswith("process_"):
            assert name.startswith("dbpulse_"), name
            assert "target" in spec.labels or name == "dbpulse_build_info", name
        assert spec.help.strip(), name
