"""End to end with the real Prometheus server: scrape a running dbpulse, evaluate the shipped
rule files, and watch alerts fire through Prometheus's HTTP API.

dbpulse watches the harness's PostgreSQL and Redis, a PostgreSQL that is not there
("ghost"), and a stand-in application serving the seeds' /health, /health/live and
/health/ready, switchable to 503. The rule files are loaded as shipped except that every
`for:` is shortened to 2 s; scrape and evaluation intervals are 1 s.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from harness.prometheus import LocalPrometheus
from harness.prometheus import PrometheusAPI as Prometheus
from harness.servers import LocalRedis, free_port
from tests.rules.promql_check import ROOT, RULE_FILES
from tests.support import StandInApp, eventually

pytestmark = pytest.mark.slow

SHORT_FOR = "2s"


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{url} did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture
def dbpulse(fresh_db: str, redis_server: LocalRedis, stand_in_app: StandInApp,
            tmp_path: Path) -> Iterator[str]:
    port = free_port()
    ghost = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"  # nothing listens there
    log = tmp_path / "dbpulse.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "run", "--listen", f"127.0.0.1:{port}", "--interval", "1",
         "--postgres", f"main={fresh_db}", "--postgres", f"ghost={ghost}",
         "--redis", f"cache={redis_server.url()}", "--redis-queue", "celery",
         "--health-url", f"api={stand_in_app.url}"],
        cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/metrics", proc, log)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(proc)


def shortened_rules(dest: Path) -> list[Path]:
    """Copies of the shipped rule files with every `for:` set to SHORT_FOR."""
    out = []
    for path in RULE_FILES:
        text = re.sub(r"(?m)^([ \t]+for:[ \t]*)\S+[ \t]*$", rf"\g<1>{SHORT_FOR}", path.read_text())
        copy = dest / path.name
        copy.write_text(text)
        out.append(copy)
    return out




@pytest.fixture
def prometheus(dbpulse: str, tmp_path: Path) -> Iterator[Prometheus]:
    server = LocalPrometheus([dbpulse], shortened_rules(tmp_path), scrape_interval=1.0, workdir=tmp_path)
    server.start()
    try:
        yield server.client
    finally:
        server.stop()


def test_shortened_copies_keep_every_rule(tmp_path: Path) -> None:
    copies = shortened_rules(tmp_path)
    for original, copy in zip(RULE_FILES, copies, strict=True):
        a, b = original.read_text(), copy.read_text()
        assert a.count("for:") == b.count(f"for: {SHORT_FOR}")
        assert a.count("alert:") == b.count("alert:") and a.count("record:") == b.count("record:")


def _value(result: list[dict[str, Any]]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def test_prometheus_scrapes_dbpulse_and_fires_alerts(
        prometheus: Prometheus, stand_in_app: StandInApp, redis_server: LocalRedis) -> None:
    # the scrape target is up
    def target_up() -> bool:
        targets = prometheus.api("targets")["activeTargets"]
        return len(targets) == 1 and targets[0]["health"] == "up"
    eventually(target_up, 20, "the dbpulse scrape target to be up")

    # all rule groups loaded, none in error
    groups = prometheus.api("rules")["groups"]
    assert {g["name"] for g in groups} >= {"dbpulse.recording", "dbpulse.postgres", "dbpulse.redis",
                                           "dbpulse.app", "dbpulse.self", "dbpulse.advisor"}
    assert all(r["health"] != "err" for g in groups for r in g["rules"]), groups

    # dbpulse metrics are queryable, one per source
    eventually(lambda: prometheus.query('dbpulse_pg_up{target="main"} == 1'), 20, "dbpulse_pg_up 1")
    eventually(lambda: prometheus.query('dbpulse_redis_up{target="cache"} == 1'), 20, "dbpulse_redis_up 1")
    eventually(lambda: prometheus.query('dbpulse_health_up{target="api", endpoint="/health/ready"} == 1'),
               20, "readiness up")
    assert _value(prometheus.query('dbpulse_source_up{source="postgres", target="ghost"}')) == 0

    # a recording rule yields a value: the connections of main over its max_connections
    ratio = eventually(lambda: prometheus.query('dbpulse:pg_connections:usage_ratio{target="main"}'), 20,
                       "the recording rule dbpulse:pg_connections:usage_ratio")
    assert 0 < _value(ratio) <= 1

    # a PostgreSQL that is not there: PostgresDown fires, with its annotations
    down = eventually(lambda: prometheus.firing("PostgresDown", target="ghost"), 20, "PostgresDown firing")
    assert down[0]["labels"]["severity"] == "critical"
    assert down[0]["annotations"]["runbook_url"].endswith("#postgresdown")
    assert not prometheus.firing("PostgresDown", target="main")

    # healthy cache traffic: only hits
    client = redis.Redis.from_url(redis_server.url())
    client.set("cache:user:1", "x", ex=600)
    stop = threading.Event()
    miss_share = {"value": 0.0}

    def traffic() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            if (i % 100) < miss_share["value"] * 100:
                client.get(f"cache:user:missing:{i}")
            else:
                client.get("cache:user:1")
            time.sleep(0.002)

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        eventually(lambda: prometheus.query('dbpulse:redis_cache_hit:ratio_rate5m{target="cache"} > 0.95'),
                   20, "a high Redis hit ratio")
        time.sleep(3)  # longer than the shortened `for`: nothing healthy may fire
        for healthy in ("AppNotReady", "AppDown", "AppComponentUnhealthy", "RedisCacheHitRatioLow",
                        "RedisDown"):
            assert not prometheus.firing(healthy), healthy

        # the app turns not ready (503) and the cache starts missing
        stand_in_app.ready = False
        miss_share["value"] = 0.9
        not_ready = eventually(lambda: prometheus.firing("AppNotReady", target="api"), 30, "AppNotReady firing")
        assert not_ready[0]["labels"]["endpoint"] == "/health/ready"
        assert "last status: 503" in not_ready[0]["annotations"]["description"]
        eventually(lambda: prometheus.firing("AppComponentUnhealthy", target="api", component="redis"), 30,
                   "AppComponentUnhealthy firing for the redis component")
        low = eventually(lambda: prometheus.firing("RedisCacheHitRatioLow", target="cache"), 40,
                         "RedisCacheHitRatioLow firing")
        assert float(low[0]["value"]) < 0.85
        assert not prometheus.firing("AppDown"), "liveness still answers: AppDown must not fire"
    finally:
        stop.set()
        worker.join(5)
        client.close()
