"""The PgBouncer alerts fire on what dbpulse read from a real saturated PgBouncer: the samples of polls of a
queueing pool become promtool input series (one poll a minute, the last one held), and promtool evaluates the
shipped rules on them."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import yaml

from collectors.base.catalogue import spec
from collectors.base.samples import Sample
from harness.pgbouncer import LocalPgBouncer
from harness.servers import LocalPostgres
from tests.integration.pgbouncer.conftest import bouncer_poller
from tests.integration.pgbouncer.test_pgbouncer_collector import holding, waiting
from tests.rules.promql_check import RULES_DIR, promtool

ALERTS = ("PgBouncerClientsWaiting", "PgBouncerMaxWaitHigh", "PgBouncerPoolSaturated")
HELD_MINUTES = 8  # the last poll's values, held past every alert's `for`


def series_of(polls: list[list[Sample]], names: set[str]) -> list[dict[str, str]]:
    """promtool input series: each poll's value of every sample named, one a minute."""
    keyed: dict[str, list[float]] = {}
    for i, samples in enumerate(polls):
        for s in samples:
            if s.name in names:
                labels = ", ".join(f'{k}="{v}"' for k, v in zip(spec(s.name).labels, s.labels, strict=True))
                keyed.setdefault(f'{s.name}{{job="dbpulse", {labels}}}', [0.0] * i).append(s.value)
    return [{"series": key, "values": " ".join(f"{v:g}" for v in values) + f" {values[-1]:g}x{HELD_MINUTES}"}
            for key, values in keyed.items()]


def test_waiting_clients_from_a_real_pgbouncer_fire_the_alerts(pg_server: LocalPostgres, fresh_db: str,
                                                               tmp_path: Path) -> None:
    dbname = fresh_db.rsplit("/", 1)[1]
    names = {"dbpulse_pgbouncer_pool_clients", "dbpulse_pgbouncer_pool_servers",
             "dbpulse_pgbouncer_pool_maxwait_seconds", "dbpulse_pgbouncer_database_pool_size"}
    with LocalPgBouncer(pg_server, pool_size=2) as bouncer:
        poller = bouncer_poller(bouncer.dsn())

        async def polls() -> list[list[Sample]]:
            out = []
            started = time.monotonic()
            while not out or time.monotonic() - started < 6.5:  # until the wait is past 5 s
                out.append((await poller.poll()).samples())
                await asyncio.sleep(1.0)
            return out

        idle = asyncio.run(poller.poll()).samples()
        with holding(bouncer, dbname, 2) as held, waiting(bouncer, dbname, 2) as threads:
            time.sleep(0.5)
            busy = asyncio.run(polls())
            for conn in held:
                conn.close()
            for t in threads:
                t.join(10)
    waited = [s.value for s in busy[-1] if s.name == "dbpulse_pgbouncer_pool_maxwait_seconds"
              and s.labels[1] == dbname]
    assert waited and waited[0] > 5
    tests = {
        "rule_files": [str(RULES_DIR / "dbpulse-pgbouncer.rules.yml")],
        "evaluation_interval": "1m",
        "tests": [
            {"name": "a real saturated PgBouncer", "interval": "1m",
             "input_series": series_of([idle, *busy], names),
             # firing, by alert and pool (ALERTS: labels only, the annotations carry the values)
             "promql_expr_test": [
                 {"expr": 'count by (alertname, database, user) (ALERTS{alertstate="firing"})',
                  "eval_time": f"{len(busy) + HELD_MINUTES - 1}m",
                  "exp_samples": [{"labels": f'{{alertname="{a}", database="{dbname}", user="postgres"}}', "value": 1}
                                  for a in ALERTS]},
                 {"expr": 'count(ALERTS{alertstate="firing"}) or vector(0)', "eval_time": "0m",
                  "exp_samples": [{"labels": "{}", "value": 0}]},
             ]},
        ],
    }
    path = tmp_path / "real.test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run([promtool(), "test", "rules", str(path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
