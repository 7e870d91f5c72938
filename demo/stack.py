"""``python -m demo`` (``make demo``): start the whole stack in a temporary directory, show where to look, clean up.

Order: PostgreSQL (initdb, ``pg_stat_statements`` preloaded, HypoPG) and Redis
on free ports, the schema and seed data, the demo application (in-process
aiohttp on a free port), ``dbpulse run`` as a subprocess (the real service,
configured by a file in the temporary directory), then the load generator.
Teardown runs in reverse on Ctrl-C, SIGTERM, ``--duration`` or any error, and
removes the temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import psycopg
import yaml
from aiohttp import web

from demo import app as demo_app
from demo.load import LoadStats, run_load
from demo.saturate import Saturation
from harness.pgbouncer import USERS as PGBOUNCER_USERS
from harness.pgbouncer import LocalPgBouncer, find_pgbouncer
from harness.servers import LocalPostgres, LocalRedis, ServerError, find_pg_bin, free_port
from monitor.config import DEFAULT_PORT

log = logging.getLogger("dbpulse.demo")

PROG = "python -m demo"  # the command that starts the demo, in its messages

DB_NAME = "shop"
MONITOR_ROLE = "dbpulse"
MONITOR_PASSWORD_ENV = "DBPULSE_DEMO_PG_PASSWORD"
PGBOUNCER_PASSWORD_ENV = "DBPULSE_DEMO_PGBOUNCER_PASSWORD"
# Session mode: the app's psycopg prepares statements, which PgBouncer 1.18 keeps per server connection only in
# session mode. One server per app connection: the app's whole pool fits, so the chain shows no queue at rest.
PGBOUNCER_POOL_SIZE = demo_app.POOL_SIZE + demo_app.MAX_OVERFLOW
# The demo's statistics are minutes old, not weeks: thresholds scaled to match (see docs/demo.md).
ADVISOR_THRESHOLDS = {
    "min_table_rows": 5000,  # the seeded tables are 8k-160k rows
    "n_plus_one_min_calls": 200,
    "slow_mean_seconds": 0.01,
    "unused_min_stats_age_seconds": 30,
}
# What the README recommends for the dbpulse role, beyond pg_monitor: EXPLAIN (the advisor's what-if plans)
# and pg_stats need SELECT on the tables, sequence usage needs SELECT on the sequences.
MONITOR_GRANTS = (
    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}",
    "GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
)
INSTALL_HINT = "run `make setup` (scripts/setup.sh) to install them"


@dataclass
class DemoOptions:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT  # dbpulse's port; 0 picks a free one
    app_port: int = 0
    duration: float | None = None  # seconds; None runs until Ctrl-C
    interval: float = 2.0  # dbpulse poll interval
    advisor_interval: float = 10.0
    scale: float = 1.0  # seed data size factor
    clients: int = 4  # load generator concurrency
    saturate: bool = False  # start with PgBouncer saturated (demo/saturate.py; SIGUSR1 toggles it)
    out: TextIO = field(default_factory=lambda: sys.stdout)


def preflight() -> list[str]:
    """Everything missing on this machine, each with what to install; empty when the demo can run."""
    missing = []
    try:
        pg_bin = find_pg_bin()
        if not (pg_bin / "initdb").exists() or not (pg_bin / "pg_ctl").exists():
            raise ServerError(f"no initdb/pg_ctl in {pg_bin}")
    except ServerError:
        missing.append("PostgreSQL server binaries (initdb, pg_ctl; Debian package postgresql-15)")
    else:
        share = _pg_sharedir(pg_bin)
        if share is not None and not (share / "extension" / "pg_stat_statements.control").exists():
            missing.append("pg_stat_statements (Debian package postgresql-contrib)")
    if not shutil.which("redis-server"):
        missing.append("redis-server (Debian package redis-server)")
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            missing.append("a 'postgres' system user to run PostgreSQL as (created by postgresql-common)")
    return missing


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on ``host:port`` (then dbpulse could not bind it)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp does: TIME_WAIT is no conflict
        try:
            sock.bind((host or "0.0.0.0", port))
        except OSError:
            return True
    return False


def _pg_sharedir(pg_bin: Path) -> Path | None:
    pg_config = pg_bin / "pg_config"
    exe = str(pg_config) if pg_config.exists() else shutil.which("pg_config")
    if exe:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([exe, "--sharedir"], capture_output=True, text=True, timeout=10, check=True)
            return Path(out.stdout.strip())
    version = pg_bin.parent.name  # Debian: /usr/lib/postgresql/15/bin
    candidate = Path("/usr/share/postgresql") / version
    return candidate if candidate.exists() else None


def _http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes, str]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def finding_kinds(doc: Any) -> list[str]:
    """The ``kind`` of every finding in an ``/advice`` JSON document (one report or a list of them)."""
    reports = doc if isinstance(doc, list) else [doc]
    return [str(f.get("kind")) for r in reports if isinstance(r, dict)
            for f in r.get("findings", []) if isinstance(f, dict)]


def dbpulse_config(pg_dsn: str, redis_url: str, app_url: str, listen: str, options: DemoOptions,
                   pgbouncer_dsn: str = "", state_dir: Path | None = None) -> dict[str, Any]:
    """The configuration file dbpulse runs with; with ``pgbouncer_dsn``, the PgBouncer between app and database;
    with ``state_dir``, where the advisor keeps its state (index changes and outcomes) across restarts."""
    config: dict[str, Any] = {
        "listen": listen,
        "log": {"level": "info"},
        "postgres": {
            "interval": options.interval,
            "statement_text_length": 1000,  # the UI shows query text; no text label is exported
            "app_pools": [{"application_name": demo_app.APPLICATION_NAME,
                           "capacity": demo_app.POOL_SIZE + demo_app.MAX_OVERFLOW}],
            "targets": [{"name": "shop", "dsn": pg_dsn, "password_env": MONITOR_PASSWORD_ENV}],
        },
        "redis": {"interval": options.interval,
                  "targets": [{"name": "cache", "url": redis_url, "queues": list(demo_app.QUEUES)}]},
        # The app reports its one pool on /health ("pool") and again in /health/ready (the seeds' readiness
        # shape): read at one path only, so the page and the pool chain show it once.
        "health": {"interval": options.interval, "pool_paths": ["components.database.pool"],
                   "targets": [{"name": "demo-api", "url": app_url}]},
        "advisor": {"interval": options.advisor_interval, "thresholds": dict(ADVISOR_THRESHOLDS)},
    }
    if state_dir is not None:
        config["advisor"]["state_dir"] = str(state_dir)
    if pgbouncer_dsn:
        config["pgbouncer"] = {"interval": options.interval, "targets": [{
            "name": "edge", "dsn": pgbouncer_dsn, "password_env": PGBOUNCER_PASSWORD_ENV,
            "applications": {"demo-api": DB_NAME}}]}  # the pool chain: the app's pool leads to database shop
    return config


class DemoStack:
    """Owns every resource the demo starts; ``close()`` releases them all, whatever state they are in."""

    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.tmp = Path(tempfile.mkdtemp(prefix="dbpulse-demo-"))
        self.tmp.chmod(0o755)  # PostgreSQL runs as the postgres user when we are root
        self.postgres: LocalPostgres | None = None
        self.redis: LocalRedis | None = None
        self.pgbouncer: LocalPgBouncer | None = None
        self.app_runner: web.AppRunner | None = None
        self.dbpulse: subprocess.Popen[bytes] | None = None
        self._dbpulse_log: Any = None
        self.app_url = ""
        self.dbpulse_url = ""
        self.hypopg = False
        self.stats = LoadStats()
        self.started = time.monotonic()
        self.saturation: Saturation | None = None  # with PgBouncer: its saturating clients, off until asked

    def say(self, message: str) -> None:
        print(message, file=self.options.out, flush=True)

    # --- start -------------------------------------------------------------
    def start_servers(self) -> None:
        pg_dir = self.tmp / "postgres"
        pg_dir.mkdir()
        # Planning time per statement is measured (the UI's features show it on), as the docs suggest.
        self.postgres = LocalPostgres(workdir=pg_dir, settings={"pg_stat_statements.max": "5000",
                                                                "pg_stat_statements.track_planning": "on"})
        self.postgres.start()
        # Latency spikes are recorded (Redis's default threshold 0 records none: docs/redis.md).
        self.redis = LocalRedis(extra={"latency-monitor-threshold": "100"})
        shutil.rmtree(self.redis.workdir, ignore_errors=True)
        self.redis.workdir = self.tmp / "redis"  # keep everything under one directory
        self.redis.workdir.mkdir()
        self.redis.start()
        try:
            find_pgbouncer()
        except ServerError:
            self.say("demo: PgBouncer is not installed (Debian package pgbouncer): the app connects to PostgreSQL "
                     "directly, and the page shows no pool chain")
            return
        self.pgbouncer = LocalPgBouncer(self.postgres, pool_mode="session", pool_size=PGBOUNCER_POOL_SIZE)
        self.pgbouncer.start()

    def prepare_database(self) -> dict[str, int]:
        assert self.postgres is not None
        with psycopg.connect(self.postgres.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DB_NAME}")
            password = os.urandom(12).hex()
            os.environ[MONITOR_PASSWORD_ENV] = password  # read by the dbpulse subprocess only
            conn.execute(f"CREATE ROLE {MONITOR_ROLE} LOGIN PASSWORD '{password}' IN ROLE pg_monitor")
        with psycopg.connect(self.postgres.dsn(DB_NAME), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            try:
                conn.execute("CREATE EXTENSION hypopg")
                self.hypopg = True
            except psycopg.Error:
                self.say("demo: HypoPG is not installed (Debian package postgresql-15-hypopg): "
                         "index advice will be heuristic, not verified with hypothetical indexes")
        sizes = demo_app.create_schema(self.postgres.dsn(DB_NAME), self.options.scale)
        with psycopg.connect(self.postgres.dsn(DB_NAME), autocommit=True) as conn:
            for grant in MONITOR_GRANTS:
                conn.execute(grant.format(role=MONITOR_ROLE))
            # The seeding is not the application's workload; nor is this reset, so it is not tracked either.
            conn.execute("SET pg_stat_statements.track = 'none'")
            conn.execute("SELECT pg_stat_statements_reset()")
        return sizes

    async def start_app(self) -> None:
        assert self.postgres is not None and self.redis is not None
        port = self.options.app_port or free_port()
        dsn = self.pgbouncer.dsn(DB_NAME, user="app") if self.pgbouncer else self.postgres.dsn(DB_NAME)
        self.app_runner = await demo_app.serve(dsn, self.redis.url(), "127.0.0.1", port)
        self.app_url = f"http://127.0.0.1:{port}"

    def start_dbpulse(self) -> None:
        assert self.postgres is not None and self.redis is not None
        port = self.options.port or free_port()
        listen = f"{self.options.host}:{port}"
        shown = "127.0.0.1" if self.options.host in ("0.0.0.0", "::", "") else self.options.host
        self.dbpulse_url = f"http://{shown}:{port}"
        pg_dsn = self.postgres.dsn(DB_NAME, user=MONITOR_ROLE)
        bouncer_dsn = ""
        if self.pgbouncer is not None:
            os.environ[PGBOUNCER_PASSWORD_ENV] = PGBOUNCER_USERS["dbpulse"]  # read by the dbpulse subprocess only
            bouncer_dsn = f"postgresql://dbpulse@127.0.0.1:{self.pgbouncer.port}/pgbouncer"
        state_dir = self.tmp / "state"  # the advisor's state: kept across a restart of dbpulse, removed on exit
        state_dir.mkdir(exist_ok=True)
        config = dbpulse_config(pg_dsn, self.redis.url(), self.app_url, listen, self.options, bouncer_dsn, state_dir)
        path = self.tmp / "dbpulse.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        self._dbpulse_log = (self.tmp / "dbpulse.log").open("wb")
        self.dbpulse = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "run", "--config", str(path)],
            stdout=self._dbpulse_log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    async def wait_dbpulse_ready(self, timeout: float = 30.0) -> None:
        assert self.dbpulse is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.dbpulse.poll() is not None:
                raise ServerError(f"dbpulse exited with status {self.dbpulse.returncode}:\n{self.dbpulse_log()}")
            with contextlib.suppress(OSError):
                status, _, _ = await asyncio.to_thread(_http_get, self.dbpulse_url + "/readyz", 2.0)
                if status == 200:
                    return
            await asyncio.sleep(0.2)
        raise ServerError(f"dbpulse was not ready within {timeout:g} s:\n{self.dbpulse_log()}")

    def dbpulse_log(self) -> str:
        path = self.tmp / "dbpulse.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    async def watch_advice(self) -> None:
        """Tell the user when the first advice is in, and when the first missing-index advice is."""
        announced_first = False
        while True:
            await asyncio.sleep(1.0)
            with contextlib.suppress(OSError, ValueError):
                status, body, ctype = await asyncio.to_thread(_http_get, self.dbpulse_url + "/advice", 3.0)
                if status != 200 or "json" not in ctype:
                    continue
                kinds = finding_kinds(json.loads(body))
                elapsed = time.monotonic() - self.started
                if kinds and not announced_first:
                    announced_first = True
                    self.say(f"demo: first index advice after {elapsed:.0f} s: {len(kinds)} finding(s) "
                             f"({', '.join(sorted(set(kinds)))}) - {self.dbpulse_url}/#advice")
                if "missing_index" in kinds:
                    self.say(f"demo: first missing-index advice (verified with HypoPG when installed) after "
                             f"{elapsed:.0f} s: {kinds.count('missing_index')} index(es) to create - "
                             f"{self.dbpulse_url}/advice.html")
                    return

    # --- stop ----------------------------------------------------------------
    async def close(self) -> None:
        if self.dbpulse is not None and self.dbpulse.poll() is None:
            self.dbpulse.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.dbpulse.wait, 10)
            except subprocess.TimeoutExpired:
                self.dbpulse.kill()
                await asyncio.to_thread(self.dbpulse.wait)
        if self._dbpulse_log is not None:
            self._dbpulse_log.close()
        if self.app_runner is not None:
            with contextlib.suppress(Exception):
                await self.app_runner.cleanup()
        self.close_servers()

    def close_servers(self) -> None:
        if self.pgbouncer is not None:
            self.pgbouncer.cleanup()
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop("fast")
            self.postgres.stop("immediate")
        shutil.rmtree(self.tmp, ignore_errors=True)


def banner(stack: DemoStack, sizes: dict[str, int], elapsed: float) -> str:
    url = stack.dbpulse_url
    rows = sum(v for k, v in sizes.items())
    lines = [
        "",
        f"dbpulse demo is running (started in {elapsed:.0f} s, {rows:,} rows seeded)",
        "",
        f"  web UI          {url}/",
        f"  metrics         {url}/metrics",
        f"  index report    {url}/advice.html   (JSON at {url}/advice, and in the UI)",
        f"  readiness       {url}/readyz",
        "",
        f"  demo app        {stack.app_url}/health/ready   (SQLAlchemy pool {demo_app.POOL_SIZE}"
        f"+{demo_app.MAX_OVERFLOW}, application_name={demo_app.APPLICATION_NAME})",
        f"  PostgreSQL      {stack.postgres.dsn(DB_NAME) if stack.postgres else ''}"
        f"   (pg_stat_statements{', HypoPG' if stack.hypopg else ''})",
        *([f"  PgBouncer       127.0.0.1:{stack.pgbouncer.port}   (session mode, pool_size {PGBOUNCER_POOL_SIZE}: "
            f"the app connects through it; the pool chain is on the web UI)",
            f"                  saturate it: kill -USR1 {os.getpid()} (again to stop), or start with --saturate"]
          if stack.pgbouncer else []),
        f"  Redis           {stack.redis.url() if stack.redis else ''}",
        f"  files           {stack.tmp}  (removed on exit)",
        "",
        "A load generator is driving the app. The advisor needs a few runs of statistics; its first advice",
        "shows up in the UI within about a minute. "
        + (f"Stopping after {stack.options.duration:g} s." if stack.options.duration else "Ctrl-C stops everything."),
        "",
    ]
    return "\n".join(lines)


async def run_demo(options: DemoOptions, on_ready: Callable[[DemoStack], None] | None = None) -> int:
    missing = preflight()
    if missing:
        print(f"{PROG}: cannot start, missing on this machine:", file=sys.stderr)
        for item in missing:
            print(f"  - {item}", file=sys.stderr)
        print(f"  {INSTALL_HINT}; or set DBPULSE_PG_BIN to a directory holding initdb and pg_ctl.", file=sys.stderr)
        return 1
    if options.port and port_in_use(options.host, options.port):
        print(f"{PROG}: cannot listen on {options.host}:{options.port}: the port is already in use "
              f"(another dbpulse?); pass --listen {options.host}:PORT, or --listen {options.host}:0 for any free "
              "port", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stack = DemoStack(options)
    load_task: asyncio.Task[LoadStats] | None = None
    advice_task: asyncio.Task[None] | None = None
    try:
        stack.say(f"demo: starting PostgreSQL and Redis in {stack.tmp} ...")
        await asyncio.to_thread(stack.start_servers)
        stack.say("demo: creating the schema and seed data ...")
        sizes = await asyncio.to_thread(stack.prepare_database)
        await stack.start_app()
        stack.start_dbpulse()
        await stack.wait_dbpulse_ready()
        load_task = asyncio.create_task(run_load(stack.app_url, stop, options.clients, sizes=sizes, stats=stack.stats))
        if stack.pgbouncer is not None:
            stack.saturation = Saturation(stack.pgbouncer.dsn(DB_NAME, user="app"), PGBOUNCER_POOL_SIZE, stack.say)
            loop.add_signal_handler(signal.SIGUSR1, stack.saturation.toggle)
            if options.saturate:
                stack.saturation.start()
        advice_task = asyncio.create_task(stack.watch_advice())
        stack.say(banner(stack, sizes, time.monotonic() - stack.started))
        if on_ready:
            on_ready(stack)
        if options.duration is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), options.duration)
        else:
            await stop.wait()
        return 0
    except (ServerError, subprocess.CalledProcessError, psycopg.Error, OSError) as exc:
        detail = exc.stderr.decode(errors="replace") if isinstance(exc, subprocess.CalledProcessError) else ""
        print(f"{PROG}: {exc}\n{detail}".rstrip(), file=sys.stderr)
        return 1
    finally:
        stop.set()
        stack.say("demo: stopping ...")
        if stack.saturation is not None:
            loop.remove_signal_handler(signal.SIGUSR1)
            await stack.saturation.stop()
        for task in (advice_task, load_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await stack.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        stack.say(f"demo: stopped; {stack.stats.total:,} requests served; nothing left running, {stack.tmp} removed")


def main(options: DemoOptions) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return asyncio.run(run_demo(options))
