"""The healthy soak: a busy, healthy system puts no alert into pending (issue 20).

A PostgreSQL primary and its streaming standby under pgbench (tpcb-like on the primary,
select-only on the standby), and Redis under cache traffic (redis-benchmark: SET with a TTL,
and four GETs for each SET), watched by dbpulse (primary, standby and Redis as targets, the
index advisor on, ``postgres.expected_standbys: 1``) and scraped by a real Prometheus that
evaluates the shipped rule files unchanged. Every alert that was pending or firing at any
evaluation is listed, from Prometheus's own ``ALERTS`` series; so is what shows the system was
busy and watched (transactions, cache hit ratio, polls, autovacuum's runs, how often the old
autovacuum rule's condition held).

    .venv/bin/python -m bench.soak                                # 30 minutes, the real thing
    .venv/bin/python -m bench.soak --minutes 20 --speedup 15      # 80 s: what `make test` runs

Why 30 minutes by default: PostgresAutovacuumNotKeepingUp compares two 10-minute windows and
needs 20 minutes of history before it can be true; a soak too short for a rule to go pending
shows nothing about it. ``--speedup N`` runs the same scenario N times faster: dbpulse polls,
Prometheus scrapes and evaluates, autovacuum naps and the advisor runs N times as often (polls
and scrapes at most every ``MIN_POLL_SECONDS``), and every window and ``for:`` of the rules is
divided by N (``harness.prometheus.scaled_rules``). The load itself is not sped up: each window
holds fewer transactions.

Results: ``bench/results/soak.json`` and the printed report in ``bench/results/soak.txt``
(summarised in docs/alerting.md).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench.common import DBPULSE, RESULTS, ROOT, Service, dbpulse_version, running, wait_http, write_result
from harness.prometheus import LocalPrometheus, PrometheusAPI, format_duration, scaled_rules
from harness.servers import LocalPostgres, LocalRedis, free_port

RULE_FILES = sorted((ROOT / "rules").glob("*.rules.yml"))
# Real-time cadences, divided by --speedup.
POLL_SECONDS = 15.0  # dbpulse's default interval; Prometheus scrapes and evaluates as often
# Sped up, polls stay at least this far apart: a poll (two servers, Redis, the advisor's thread
# beside them) can take a second on a loaded 2-core machine, which a 1-second interval (timeout
# 0.8 s) counts as a failure. The rules' windows still hold 20 polls where the real run has 40.
MIN_POLL_SECONDS = 2.0
NAPTIME_SECONDS = 60  # autovacuum_naptime's default
ADVISOR_SECONDS = 300.0
MAINTENANCE_SECONDS = 300.0
SEQUENCE_SECONDS = 60.0
PREWARM = ("SELECT sum(pg_prewarm(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
           "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') AND c.relname LIKE 'pgbench%'")


@dataclass(frozen=True)
class Params:
    minutes: float = 30.0  # of the scenario's own time (wall time is minutes / speedup)
    speedup: float = 1.0
    scale: int = 5  # pgbench -i -s
    tps: int = 200  # pgbench --rate on the primary (tpcb-like), 4 clients
    standby_tps: int = 400  # pgbench --rate on the standby (select-only), 2 clients
    redis_ops: int = 500  # a second: one SET (EX 3600) for four GETs, over 1,000 keys

    @property
    def wall_seconds(self) -> float:
        return self.minutes * 60 / self.speedup

    @property
    def poll_seconds(self) -> float:
        return max(POLL_SECONDS / self.speedup, min(POLL_SECONDS, MIN_POLL_SECONDS))

    @property
    def naptime_seconds(self) -> int:
        return max(1, round(NAPTIME_SECONDS / self.speedup))


@dataclass
class AlertSeen:
    alertname: str
    labels: dict[str, str]
    states: list[str]  # pending, firing
    first_seconds: float  # after the start of the observation
    last_seconds: float

    def line(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items())
                          if k not in {"alertname", "alertstate", "job", "instance", "severity", "source"})
        return (f"{self.alertname} {{{shown}}} {'/'.join(self.states)} from {self.first_seconds:.0f} s "
                f"to {self.last_seconds:.0f} s")


@dataclass
class SoakResult:
    params: Params
    observed_seconds: float
    evaluations: int
    alerts: list[AlertSeen] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def pending(self) -> list[str]:
        """Alert names that were pending or firing at any evaluation."""
        return sorted({a.alertname for a in self.alerts})


# --------------------------------------------------------------------------- the servers and the load


def _pg_tool(server: LocalPostgres, name: str) -> str:
    tool = server.bin / name
    return str(tool) if tool.exists() else (shutil.which(name) or name)


def _one(dsn: str, sql: str) -> Any:
    """The first value the statement returns (None for a statement that returns no rows)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(sql.encode())
        row = cur.fetchone() if cur.description else None
        return row[0] if row else None


def _wait(what: str, check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:g} s for {what}")
        time.sleep(0.2)


@contextlib.contextmanager
def pair(params: Params) -> Iterator[tuple[LocalPostgres, LocalPostgres]]:
    """A primary initialised by pgbench and its streaming standby (autovacuum_naptime sped up)."""
    primary = LocalPostgres(settings={"autovacuum_naptime": str(params.naptime_seconds)})
    standby: LocalPostgres | None = None
    try:
        primary.start()
        _one(primary.dsn(), "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        with contextlib.suppress(psycopg.Error):  # the advisor verifies with HypoPG where it is installed
            _one(primary.dsn(), "CREATE EXTENSION IF NOT EXISTS hypopg")
        subprocess.run([_pg_tool(primary, "pgbench"), "-i", "-q", "-s", str(params.scale),
                        "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "postgres"],
                       check=True, capture_output=True, timeout=600)
        _one(primary.dsn(), "CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        standby = primary.standby(name="standby")
        standby.start()
        _wait("the standby to stream", lambda: _one(
            primary.dsn(), "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"))
        for server in (primary, standby):  # caches in service, not filling from a cold start
            _one(server.dsn(), PREWARM)
        yield primary, standby
    finally:
        if standby is not None:
            standby.cleanup()
        primary.cleanup()


class Load:
    """pgbench on both servers and redis-benchmark on Redis, until stopped."""

    def __init__(self, params: Params, primary: LocalPostgres, standby: LocalPostgres, redis: LocalRedis,
                 seconds: float) -> None:
        self.params, self.redis = params, redis
        duration = str(int(seconds) + 1)

        def pgbench(server: LocalPostgres, *args: str) -> list[str]:
            return [_pg_tool(server, "pgbench"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres",
                    "-T", duration, *args, "postgres"]

        self.commands = {
            "primary": pgbench(primary, "-c", "4", "-j", "2", "--rate", str(params.tps)),
            "standby": pgbench(standby, "-S", "-n", "-c", "2", "--rate", str(params.standby_tps)),
        }
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.redis_bursts = 0
        self.redis_failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._redis_traffic, daemon=True)

    def _benchmark(self, requests: int, *command: str) -> None:
        result = subprocess.run(
            ["redis-benchmark", "-h", "127.0.0.1", "-p", str(self.redis.port), "-c", "1", "-n", str(requests),
             "-r", "1000", "-q", *command], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            self.redis_failures.append(result.stderr.strip()[-200:])

    def warm_cache(self) -> None:
        """Every key there before the watch starts: a cache in service, not one filling from empty."""
        self._benchmark(5000, "SET", "cache:item:__rand_int__", "payload", "EX", "3600")

    def _redis_traffic(self) -> None:
        sets = max(1, self.params.redis_ops // 5)
        while not self._stop.is_set():
            started = time.monotonic()
            self._benchmark(sets, "SET", "cache:item:__rand_int__", "payload", "EX", "3600")
            self._benchmark(4 * sets, "GET", "cache:item:__rand_int__")
            self.redis_bursts += 1
            self._stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))

    def start(self) -> None:
        for name, command in self.commands.items():
            self.procs[name] = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._thread.start()

    def check(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"pgbench on the {name} ended early:\n{(proc.stdout.read() if proc.stdout else '')}")

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(30)
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
            proc.communicate(timeout=30)
        return {"redis_bursts": self.redis_bursts, "redis_failures": self.redis_failures[:3]}


# --------------------------------------------------------------------------- dbpulse and Prometheus


def dbpulse_config(params: Params, port: int, primary: LocalPostgres, standby: LocalPostgres,
                   redis: LocalRedis) -> str:
    s = params.speedup
    return json.dumps({  # JSON is YAML
        "listen": f"127.0.0.1:{port}",
        "postgres": {
            "interval": params.poll_seconds, "maintenance_interval": MAINTENANCE_SECONDS / s,
            "size_interval": MAINTENANCE_SECONDS / s, "sequence_interval": SEQUENCE_SECONDS / s,
            "expected_standbys": 1,
            "targets": [{"name": "primary", "dsn": primary.dsn()}, {"name": "standby", "dsn": standby.dsn()}],
        },
        "redis": {"interval": params.poll_seconds, "targets": [{"name": "cache", "url": redis.url()}]},
        "advisor": {"interval": max(1.0, ADVISOR_SECONDS / s)},
    }, indent=2)


# --------------------------------------------------------------------------- what Prometheus saw


def alerts_seen(prom: PrometheusAPI, start: float, end: float) -> list[AlertSeen]:
    """Every alert series in ALERTS between start and end, from the raw samples (one per evaluation)."""
    found: dict[tuple[tuple[str, str], ...], AlertSeen] = {}
    window = format_duration(end - start)
    for series in prom.api("query", query=f"ALERTS[{window}]", time=f"{end:.3f}")["result"]:
        labels = {k: v for k, v in series["metric"].items() if k != "__name__"}
        state = labels.pop("alertstate")
        times = [float(t) - start for t, _ in series["values"]]
        key = tuple(sorted(labels.items()))
        seen = found.setdefault(key, AlertSeen(labels.pop("alertname"), labels, [], min(times), max(times)))
        seen.states = sorted({*seen.states, state}, key=["pending", "firing"].index)
        seen.first_seconds, seen.last_seconds = min(seen.first_seconds, *times), max(seen.last_seconds, *times)
    return sorted(found.values(), key=lambda a: (a.alertname, a.first_seconds))


def _values(prom: PrometheusAPI, expr: str, at: float, *label_names: str) -> dict[str, float]:
    out = {}
    for r in prom.api("query", query=expr, time=f"{at:.3f}")["result"]:
        key = "/".join(r["metric"].get(n, "") for n in label_names) or "value"
        out[key] = round(float(r["value"][1]), 4)
    return out


def evidence(prom: PrometheusAPI, params: Params, start: float, end: float) -> dict[str, Any]:
    """What shows the system was busy, healthy and watched the whole time."""
    d = format_duration(end - start)
    step = format_duration(params.poll_seconds)
    hot = '{target="primary", table=~"pgbench_.*"}'
    q = {
        "source_up_min": (f"min_over_time(dbpulse_source_up[{d}])", ("source", "target")),
        "polls": (f"increase(dbpulse_source_polls_total[{d}])", ("source", "target")),
        "poll_errors": (f"increase(dbpulse_source_poll_errors_total[{d}])", ("source", "target")),
        "transactions_per_second": (
            f'sum by (target) (rate(dbpulse_pg_database_xact_commit_total{{datname="postgres"}}[{d}]))', ("target",)),
        "connected_standbys_min": (f"min_over_time(dbpulse_pg_replication_connected_standbys[{d}])", ("target",)),
        "replay_lag_bytes_max": (f'max_over_time(dbpulse_pg_replication_lag_bytes{{stage="replay"}}[{d}])',
                                 ("standby",)),
        "redis_commands_per_second": (f"rate(dbpulse_redis_commands_processed_total[{d}])", ("target",)),
        "redis_hit_ratio": (
            f"increase(dbpulse_redis_keyspace_hits_total[{d}]) / (increase(dbpulse_redis_keyspace_hits_total[{d}])"
            f" + increase(dbpulse_redis_keyspace_misses_total[{d}]))", ("target",)),
        "autovacuum_runs": (f'increase(dbpulse_pg_table_vacuums_total{{target="primary", mode="auto", '
                            f'table=~"pgbench_.*"}}[{d}])', ("table",)),
        "dead_rows_max": (f"max_over_time(dbpulse_pg_table_dead_rows{hot}[{d}])", ("table",)),
        "autovacuum_threshold_rows": (f"max_over_time(dbpulse_pg_table_autovacuum_threshold_rows{hot}[{d}])",
                                      ("table",)),
        # How often the old rule's whole condition held (`dead rows > threshold`), per table.
        "old_autovacuum_condition_share": (
            f"count_over_time((dbpulse_pg_table_dead_rows{hot} > dbpulse_pg_table_autovacuum_threshold_rows)"
            f"[{d}:{step}]) / count_over_time(dbpulse_pg_table_dead_rows{hot}[{d}:{step}])", ("table",)),
    }
    return {name: _values(prom, expr, end, *labels) for name, (expr, labels) in q.items()}


# --------------------------------------------------------------------------- the run


def run(params: Params, log: Any = None) -> SoakResult:
    log = log or functools.partial(print, flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="dbpulse-soak-"))
    versions = {"dbpulse": dbpulse_version()}
    try:
        with pair(params) as (primary, standby), LocalRedis() as redis:
            versions["postgresql"] = str(_one(primary.dsn(), "SHOW server_version"))
            versions["redis"] = redis.version.text
            said = subprocess.run(["prometheus", "--version"], capture_output=True, text=True).stdout
            versions["prometheus"] = said.split()[2] if len(said.split()) > 2 else said.strip()
            load = Load(params, primary, standby, redis, params.wall_seconds + 600)
            load.warm_cache()
            load.start()
            port = free_port()
            config = workdir / "dbpulse.json"
            config.write_text(dbpulse_config(params, port, primary, standby, redis))
            service = Service("dbpulse", [str(DBPULSE), "run", "--config", str(config)], port)
            try:
                with running(service):
                    wait_http(service, path="/readyz")
                    rules = scaled_rules(RULE_FILES, workdir, params.speedup)
                    with LocalPrometheus([f"127.0.0.1:{port}"], rules, scrape_interval=params.poll_seconds,
                                         workdir=workdir) as prometheus:
                        start = time.time()
                        log(f"watching for {params.minutes:g} minutes ({params.wall_seconds:.0f} s of wall time, "
                            f"speedup {params.speedup:g}); dbpulse polls every {params.poll_seconds:g} s")
                        next_report = start + 60
                        while time.time() < start + params.wall_seconds:
                            time.sleep(min(5.0, max(0.0, start + params.wall_seconds - time.time())))
                            load.check()
                            if service.proc is not None and service.proc.poll() is not None:
                                raise RuntimeError(f"dbpulse exited:\n{service.log_tail(40)}")
                            if time.time() >= next_report:
                                now = prometheus.client.alerts()
                                log(f"  {time.time() - start:5.0f} s: {len(now)} alert(s) pending or firing now"
                                    + "".join(f"\n    {a['labels']['alertname']} {a['state']}" for a in now))
                                next_report += 60
                        end = time.time()
                        time.sleep(params.poll_seconds)  # the last evaluation is in
                        alerts = alerts_seen(prometheus.client, start, end)
                        facts = evidence(prometheus.client, params, start, end)
                        facts["dbpulse_log_warnings"] = [line for line in service.log_tail(400).splitlines()
                                                         if " WARNING " in line or " ERROR " in line][-10:]
            finally:
                facts_load = load.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    facts["load"] = facts_load
    evaluations = int((end - start) / params.poll_seconds)
    return SoakResult(params, round(end - start, 1), evaluations, alerts, facts, versions)


def report(result: SoakResult) -> str:
    p = result.params
    lines = [f"soak: {p.minutes:g} minutes at speedup {p.speedup:g} ({result.observed_seconds:.0f} s observed, "
             f"about {result.evaluations} rule evaluations)",
             f"load: pgbench tpcb-like --rate {p.tps} on the primary (scale {p.scale}), select-only --rate "
             f"{p.standby_tps} on the standby, Redis {p.redis_ops} ops/s (SET EX 3600 : GET = 1 : 4)",
             f"versions: {', '.join(f'{k} {v}' for k, v in result.versions.items())}", ""]
    if result.alerts:
        lines.append(f"alerts pending or firing at some evaluation: {len(result.alerts)} series of "
                     f"{len(result.pending)} alert(s)")
        lines += [f"  {a.line()}" for a in result.alerts]
    else:
        lines.append("alerts pending or firing at some evaluation: none")
    lines += ["", "evidence (over the observed time):"]
    for name, values in result.evidence.items():
        lines.append(f"  {name}: {json.dumps(values, sort_keys=True)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--minutes", type=float, default=Params.minutes, help="scenario minutes (default 30)")
    ap.add_argument("--speedup", type=float, default=Params.speedup, help="run N times faster (default 1: real time)")
    ap.add_argument("--scale", type=int, default=Params.scale)
    ap.add_argument("--tps", type=int, default=Params.tps)
    ap.add_argument("--standby-tps", type=int, default=Params.standby_tps)
    ap.add_argument("--redis-ops", type=int, default=Params.redis_ops)
    ap.add_argument("--results-dir", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    params = Params(args.minutes, args.speedup, args.scale, args.tps, args.standby_tps, args.redis_ops)
    result = run(params)
    text = report(result)
    print(text)
    payload = {"params": asdict(params), "observed_seconds": result.observed_seconds,
               "evaluations": result.evaluations, "pending_alerts": result.pending,
               "alerts": [asdict(a) for a in result.alerts], "evidence": result.evidence,
               "versions": result.versions}
    write_result("soak", payload, args.results_dir)
    (args.results_dir / "soak.txt").write_text(text + "\n")
    return payload


if __name__ == "__main__":
    sys.exit(1 if main()["pending_alerts"] else 0)
