"""PgBouncer: dbpulse's poll against Debian's prometheus-pgbouncer-exporter, on one PgBouncer, in one run.

A throwaway PostgreSQL behind a throwaway PgBouncer 1.18 (harness), with ``--databases`` databases, each with
``--clients`` idle clients connected (a few application names), so SHOW CLIENTS has rows to count. Measured:

- dbpulse: the PgBouncer poller in-process (``--polls`` polls): wall time per poll, admin commands per poll,
  series per poll, the time to render its samples as the exposition text, and the service's /metrics body
  in-process (built beforehand, and the worst case: a scrape that lands while a poll's re-encoding runs);
- dbpulse's admin commands a minute at its default settings (interval 15 s, config_interval 60 s,
  detail_interval 30 s): ``--minutes`` minutes of polls on a stepped clock, every command counted on the wire;
- the peer, started as its package installs it: time per scrape and admin commands per scrape, or why it
  does not run. Debian 12's exporter 1.7 reads ``SHOW STATS`` ``total_requests``, which PgBouncer renamed
  ``total_query_count`` in 1.8, and exits at start on 1.18; the bench records that, then runs it again with
  a shim (``PEER_SHIM``: the one column copied under its old name, nothing else changed) so its scrape can be
  timed; the result says which run was measured;
- side by side over HTTP, the scrape: dbpulse's service (``dbpulse run --pgbouncer``, polling at its defaults)
  and the peer, both on the same PgBouncer directly (no proxy slows the peer), measured twice:
  - first by a real Prometheus (Debian's, ``harness.prometheus``) scraping both at one interval
    (``--prometheus-interval``, 0.5 s) for ``--prometheus-seconds``: its own ``scrape_duration_seconds`` per
    target, median and p99 (Prometheus 2.x times the request, the body read, gunzipped, parsed and appended to its
    head block: the scrape as the real scraper sees it, the series count included);
  - then by one Python client that sends what Prometheus 2.53 sends (``common.PROMETHEUS_HEADERS``: OpenMetrics
    preferred, ``Accept-Encoding: gzip``), keeps the connection alive while the server does, and reads and
    gunzips the body, ``--scrapes`` times each in turn: median and p99 of each, their ratios, the client's own
    CPU a scrape, and each side's serving process CPU a scrape;
  - the floor of both scrapers: a server that only writes a prebuilt copy of each side's reply (``replying``),
    scraped by that Prometheus and that client too: what the scraper and the loopback cost by themselves;
- side by side, admin commands a minute: dbpulse at its defaults against the peer at a 15 s scrape interval
  (the global ``scrape_interval`` of Debian's prometheus.yml; Prometheus' built-in default is 1 m) and at 1 m,
  with dbpulse at a 60 s interval too.

Admin commands are counted on the wire: each side connects through a small TCP proxy in front of PgBouncer
that counts the simple-protocol queries (``Q`` messages) its clients send. (PgBouncer's own SHOW STATS does not
count admin-console commands.)

Usage: .venv/bin/python -m bench.pgbouncer_poll [--databases 20] [--clients 5] [--polls 50] [--minutes 4]
       [--scrapes 500] [--prometheus-seconds 120] [--prometheus-interval 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from bench import common
from collectors.base.samples import Sample, families
from collectors.pgbouncer.poller import PgBouncerPoller
from collectors.pgbouncer.settings import PgBouncerSettings, PgBouncerTarget
from harness.pgbouncer import USERS, LocalPgBouncer
from harness.prometheus import LocalPrometheus
from harness.servers import LocalPostgres, free_port
from monitor.core.scheduler import Scheduler
from monitor.web.exposition import Exposition

PEER = Path(os.environ.get("BENCH_PGBOUNCER_EXPORTER", "/usr/bin/prometheus-pgbouncer-exporter"))
APPS = ("quotes-api", "billing-worker", "reports", "admin-ui")
SCRAPE_INTERVALS = (15.0, 60.0)  # Debian's prometheus.yml global scrape_interval; Prometheus' built-in default
SCRAPE_WARMUP = 5  # scrapes of each side before the timed ones (the first builds dbpulse's gzipped body)
PROMETHEUS_INTERVAL = 0.5  # seconds: the real Prometheus scrapes both sides at this one interval

# A server that only writes one prebuilt reply to every request: the bench client's own cost (its floor).
REPLY_SERVER = """
import asyncio, sys
port, path, content_type, encoding, mode = sys.argv[1:6]
body = open(path, "rb").read()
head = "HTTP/1.1 200 OK\\r\\nContent-Type: %s\\r\\nContent-Length: %d\\r\\n" % (content_type, len(body))
head += "Content-Encoding: %s\\r\\n" % encoding if encoding else ""
head += "Connection: close\\r\\n" if mode == "close" else ""
reply = (head + "\\r\\n").encode() + body
class Reply(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""
    def data_received(self, data):
        self.buffer += data
        while b"\\r\\n\\r\\n" in self.buffer:
            self.buffer = self.buffer.partition(b"\\r\\n\\r\\n")[2]
            self.transport.write(reply)
            if mode == "close":
                self.transport.close()
async def main():
    await asyncio.get_running_loop().create_server(Reply, "127.0.0.1", int(port))
    await asyncio.Event().wait()
asyncio.run(main())
"""

# Run by the system Python that has the Debian package: its STATS collector reads total_requests, gone since
# PgBouncer 1.8 (renamed total_query_count). The shim copies that one column under its old name.
PEER_SHIM = """
import sys
from prometheus_pgbouncer_exporter import cli, collectors, utils
read = utils.get_data_by_named_column
def shimmed(connection, key):
    rows = read(connection, key)
    for row in rows:
        if key == "STATS" and "total_requests" not in row and "total_query_count" in row:
            row["total_requests"] = row["total_query_count"]
    return rows
collectors.get_data_by_named_column = shimmed
sys.argv[0] = "prometheus-pgbouncer-exporter"
sys.exit(cli.main())
"""


class Rendered:
    """A registry collector that yields the families of fixed samples, as the service's exposition does."""

    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples

    def collect(self) -> Iterator[Any]:
        yield from families(self.samples)


class CountingProxy:
    """127.0.0.1:port -> PgBouncer, counting the ``Q`` (simple query) messages clients send."""

    SSL_OR_GSS_REQUEST = (80877103, 80877104)

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.queries = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()
        server.close()

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def upstream() -> None:
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                while True:  # the startup phase: length-prefixed messages with no type byte
                    head = await reader.readexactly(8)
                    length, code = struct.unpack("!ii", head)
                    up_writer.write(head + await reader.readexactly(length - 8))
                    if code not in self.SSL_OR_GSS_REQUEST:
                        break
                while True:
                    head = await reader.readexactly(5)
                    kind, length = head[:1], struct.unpack("!i", head[1:])[0]
                    if kind == b"Q":
                        self.queries += 1
                    up_writer.write(head + await reader.readexactly(length - 4))
            up_writer.close()

        async def downstream() -> None:
            with contextlib.suppress(ConnectionError):
                while data := await up_reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.close()

        await asyncio.gather(upstream(), downstream())


@contextlib.contextmanager
def clients(bouncer: LocalPgBouncer, databases: list[str], per_database: int) -> Iterator[None]:
    conns = []
    try:
        for db in databases:
            for i in range(per_database):
                conn = psycopg.connect(bouncer.dsn(db, "app"), application_name=APPS[i % len(APPS)], autocommit=True)
                conn.execute("SELECT 1")
                conns.append(conn)
        yield
    finally:
        for c in conns:
            c.close()


def dsn_via(proxy: CountingProxy) -> str:
    return f"postgresql://dbpulse:{USERS['dbpulse']}@127.0.0.1:{proxy.port}/pgbouncer"


def measure_dbpulse(proxy: CountingProxy, polls: int) -> dict[str, Any]:
    # Every command every poll (config_interval and detail_interval 0): the full poll is what is timed.
    settings = PgBouncerSettings(interval=15, config_interval=0, detail_interval=0)
    poller = PgBouncerPoller(PgBouncerTarget(name="bench", dsn=dsn_via(proxy)), settings)

    async def run() -> tuple[list[float], list[Sample]]:
        walls, samples = [], []
        await poller.poll()  # connects; not measured
        for _ in range(polls):
            started = time.perf_counter()
            snapshot = await poller.poll()
            walls.append(time.perf_counter() - started)
            samples = snapshot.samples()
        await poller.close()
        return walls, samples

    before = proxy.queries
    walls, samples = asyncio.run(run())
    after = proxy.queries
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Rendered(samples))
    renders = []
    for _ in range(polls):
        started = time.perf_counter()
        text = generate_latest(registry)
        renders.append(time.perf_counter() - started)
    cold, warm = asyncio.run(scrapes(poller, samples, polls))
    return {
        "polls": polls,
        "poll_ms_median": common.median(walls) * 1000, "poll_ms_p99": common.percentile(walls, 99) * 1000,
        # every command every poll here; the first poll's SHOW VERSION included (see admin_commands_per_minute)
        "admin_commands_per_poll": (after - before) / (polls + 1),
        "series": len(samples), "exposition_bytes": len(text),
        "render_ms_median": common.median(renders) * 1000,
        # the service's /metrics body (monitor/web/exposition.py) without HTTP: a poll's end re-encodes the snapshot
        # in the background, so a scrape is served cached and encodes only the process metrics (warm); one that
        # lands during that re-encoding waits for it (cold, the worst case)
        "scrape_cold_ms_median": common.median(cold) * 1000, "scrape_warm_ms_median": common.median(warm) * 1000,
    }


async def scrapes(poller: PgBouncerPoller, samples: list[Sample], n: int) -> tuple[list[float], list[float]]:
    """The service's /metrics body without HTTP, as Prometheus asks for it: served as built beforehand (warm), and
    landing while a poll's re-encoding runs (cold: it waits for the encoding, the worst case)."""
    scheduler = Scheduler([poller])
    state = scheduler.states[0]
    state.samples, state.up, state.polls = samples, True, 1
    exposition = Exposition(scheduler)
    accept, encoding = common.PROMETHEUS_HEADERS["Accept"], common.PROMETHEUS_HEADERS["Accept-Encoding"]
    cold, warm = [], []
    await exposition.serve(accept, encoding)  # Prometheus has scraped once: its format is re-encoded when a poll ends
    for _ in range(n):
        scheduler.version += 1  # a scrape that lands while a poll's re-encoding runs waits for it (worst case)
        started = time.perf_counter()
        await exposition.serve(accept, encoding)
        cold.append(time.perf_counter() - started)
        scheduler.bump()  # a poll ended: re-encoded in the background, so the next scrape is served as built
        assert exposition.warming is not None
        await exposition.warming
        started = time.perf_counter()
        await exposition.serve(accept, encoding)
        warm.append(time.perf_counter() - started)
    await exposition.close()
    return cold, warm


def commands_per_minute(proxy: CountingProxy, minutes: int, interval: float) -> float:
    """dbpulse's admin commands a minute at ``interval`` and the other settings' defaults: ``minutes`` of polls
    on a stepped clock (after the first poll, which connects and reads everything once), counted on the wire."""
    poller = PgBouncerPoller(PgBouncerTarget(name="bench", dsn=dsn_via(proxy)), PgBouncerSettings(interval=interval))
    now = [0.0]
    poller.clock = lambda: now[0]

    async def run() -> int:
        await poller.poll()
        before = proxy.queries
        for _ in range(int(minutes * 60 / interval)):
            now[0] += interval
            await poller.poll()
        sent = proxy.queries - before
        await poller.close()
        return sent

    return asyncio.run(run()) / minutes


def peer_command(proxy: CountingProxy) -> tuple[list[str] | None, dict[str, Any]]:
    """How the peer runs: as installed, else under the shim (``PEER_SHIM``), else not (and why)."""
    if not PEER.exists():
        return None, {"runs": False, "why": f"{PEER} is not installed"}
    as_installed = run_peer(proxy.port, 1, [str(PEER)])
    if as_installed.get("runs"):
        return [str(PEER)], {"shim": False}
    shimmed = run_peer(proxy.port, 1, ["/usr/bin/python3", "-c", PEER_SHIM])
    if not shimmed.get("runs"):
        return None, shimmed | {"as_installed": as_installed}
    return ["/usr/bin/python3", "-c", PEER_SHIM], {"shim": True, "as_installed": as_installed}


def measure_peer(proxy: CountingProxy, command: list[str], scrapes: int) -> dict[str, Any]:
    """The peer's admin commands a scrape, counted on the wire (through the proxy)."""
    return run_peer(proxy.port, scrapes, command, lambda: proxy.queries)


@contextlib.contextmanager
def serving(name: str, command: list[str], port: int, env: dict[str, str] | None = None,
            ready: str = "/metrics") -> Iterator[common.Service]:
    service = common.Service(name, command, port, env or {})
    with common.running(service):
        common.wait_http(service, timeout=30, path=ready)
        yield service


def run_peer(pgbouncer_port: int, scrapes: int, command: list[str],
             commands: Callable[[], int] = lambda: 0) -> dict[str, Any]:
    """The peer started on PgBouncer at ``pgbouncer_port``, scraped ``scrapes`` times, ``commands`` (the admin
    commands counted so far) read around those scrapes; or why it does not run."""
    port = free_port()
    args = [*command, "--host", "127.0.0.1", "--port", str(port), "--pgbouncer-host", "127.0.0.1",
            "--pgbouncer-port", str(pgbouncer_port), "--pgbouncer-user", "dbpulse"]
    try:
        with serving("peer", args, port, {"PGPASSWORD": USERS["dbpulse"]}):
            scraper = common.PrometheusScraper(port)
            before = commands()
            got = [scraper.scrape() for _ in range(scrapes)]
            sent = commands() - before
            scraper.close()
    except RuntimeError as exc:  # it exited: its last line says why
        lines = str(exc).strip().splitlines()
        return {"runs": False, "why": lines[-1] if lines else "exited"}
    return {"runs": True, "scrapes": scrapes, "series": common.series_count(got[-1].body.decode()),
            "admin_commands_per_scrape": sent / scrapes}


def side_by_side(bouncer: LocalPgBouncer, peer: list[str] | None, scrapes: int, prometheus_seconds: float = 0,
                 prometheus_interval: float = PROMETHEUS_INTERVAL) -> dict[str, Any]:
    """dbpulse's service and the peer, each on the same PgBouncer (directly: no proxy slows the peer's SHOW
    commands). First a real Prometheus scrapes both at one interval for ``prometheus_seconds`` (its own
    ``scrape_duration_seconds``); then one Prometheus-like Python client scrapes them in turn, ``scrapes`` times
    each: time per scrape, from the request to the body read and gunzipped, with that client's own CPU and its
    time against a server that only writes a prebuilt reply (its floor). dbpulse polls at its default interval
    meanwhile."""
    ours_port = free_port()
    ours_args = [str(common.DBPULSE), "run", "--listen", f"127.0.0.1:{ours_port}", "--pgbouncer",
                 f"bench=postgresql://dbpulse:{USERS['dbpulse']}@127.0.0.1:{bouncer.port}/pgbouncer",
                 "--log-level", "warning"]
    out: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        services = {"dbpulse": stack.enter_context(serving("dbpulse", ours_args, ours_port, ready="/readyz"))}
        if peer is not None:
            peer_port = free_port()
            services["peer"] = stack.enter_context(serving(
                "peer", [*peer, "--host", "127.0.0.1", "--port", str(peer_port), "--pgbouncer-host", "127.0.0.1",
                         "--pgbouncer-port", str(bouncer.port), "--pgbouncer-user", "dbpulse"],
                peer_port, {"PGPASSWORD": USERS["dbpulse"]}))
        scrapers = {name: common.PrometheusScraper(s.port) for name, s in services.items()}
        # each side's reply, prebuilt, from a server that does nothing else: the scrapers' own floor
        replies = {f"{name}_reply": stack.enter_context(replying(scraper.scrape(), keep_alive=name == "dbpulse"))
                   for name, scraper in scrapers.items()}
        prometheus = scraped_by_prometheus(services | replies, prometheus_seconds, prometheus_interval)
        walls: dict[str, list[float]] = {name: [] for name in scrapers}
        client_cpu = dict.fromkeys(scrapers, 0.0)
        last: dict[str, common.Scraped] = {}
        cpu: dict[str, float] = {}
        pgbouncer = psutil.Process(bouncer.pid)
        for i in range(SCRAPE_WARMUP + scrapes):
            if i == SCRAPE_WARMUP:
                cpu = {name: s.cpu_seconds() for name, s in services.items()} | {"pgbouncer": _cpu(pgbouncer)}
            for name, scraper in scrapers.items():
                started = time.process_time()
                last[name] = got = scraper.scrape()
                if i >= SCRAPE_WARMUP:
                    walls[name].append(got.seconds)
                    client_cpu[name] += time.process_time() - started
        cpu = {name: s.cpu_seconds() - cpu[name] for name, s in services.items()} | {
            "pgbouncer": _cpu(pgbouncer) - cpu["pgbouncer"]}
        for name, scraper in scrapers.items():
            scraper.close()
            got = last[name]
            out[name] = {"scrapes": scrapes, "ms_median": common.median(walls[name]) * 1000,
                         "ms_p99": common.percentile(walls[name], 99) * 1000, "series":
                         common.series_count(got.body.decode()), "content_type": got.content_type,
                         "content_encoding": got.content_encoding, "wire_bytes": got.wire_bytes,
                         "body_bytes": len(got.body),
                         # the serving process's CPU time (user + system) per scrape: the work, whatever the load
                         "cpu_ms_per_scrape": cpu[name] * 1000 / scrapes,
                         # the client's own CPU per scrape (request, parsing the reply, gunzip): in both medians
                         "client_cpu_ms_per_scrape": client_cpu[name] * 1000 / scrapes,
                         # the same client against a server that only writes this side's reply, prebuilt
                         "client_floor": client_floor(replies[f"{name}_reply"], scrapes)}
        if "peer" in out:  # PgBouncer answers the peer's four SHOW commands a scrape (and dbpulse's rare polls)
            out["peer"]["pgbouncer_cpu_ms_per_scrape"] = cpu["pgbouncer"] * 1000 / scrapes
    if "peer" in out:
        out["ratios"] = {"median": common.ratio(out["peer"]["ms_median"], out["dbpulse"]["ms_median"]),
                         "p99": common.ratio(out["peer"]["ms_p99"], out["dbpulse"]["ms_p99"]),
                         "cpu": common.ratio(out["peer"]["cpu_ms_per_scrape"], out["dbpulse"]["cpu_ms_per_scrape"])}
    out["prometheus"] = prometheus
    return out


def scraped_by_prometheus(services: dict[str, common.Service], seconds: float, interval: float) -> dict[str, Any]:
    """Debian's Prometheus scraping every service at ``interval`` for ``seconds`` (nothing else scrapes them
    meanwhile), and its own ``scrape_duration_seconds`` per target: from sending the request to the body read,
    gunzipped, parsed and appended to its head block (Prometheus 2.x times the append too, so the series count
    weighs in). The first ``SCRAPE_WARMUP`` scrapes of each (which create the series) are left out."""
    if seconds <= 0:
        return {"runs": False, "why": "not asked (--prometheus-seconds 0)"}
    if shutil.which("prometheus") is None:
        return {"runs": False, "why": "prometheus is not installed"}
    instances = {f"127.0.0.1:{s.port}": name for name, s in services.items()}
    with LocalPrometheus(list(instances), [], scrape_interval=interval) as prometheus:
        deadline = time.monotonic() + 30
        while len(prometheus.client.query("up")) < len(instances) and time.monotonic() < deadline:
            time.sleep(0.2)  # Prometheus applies its targets a few seconds after it is ready
        before = {name: s.cpu_seconds() for name, s in services.items()}
        time.sleep(seconds + SCRAPE_WARMUP * interval)
        used = {name: s.cpu_seconds() - before[name] for name, s in services.items()}
        window = f"{int(seconds + (SCRAPE_WARMUP + 10) * interval) + 1}s"
        durations = prometheus.client.query(f"scrape_duration_seconds[{window}]")
        ups = prometheus.client.query(f"up[{window}]")
        scraped = prometheus.client.query("scrape_samples_scraped")
        version = prometheus.client.api("status/buildinfo")["version"]
    out: dict[str, Any] = {"runs": True, "version": version, "interval_s": interval, "seconds": seconds}
    failed = {instances[u["metric"]["instance"]]: sum(float(v) == 0 for _, v in u["values"]) for u in ups}
    series = {instances[s["metric"]["instance"]]: int(float(s["value"][1])) for s in scraped}
    for found in durations:
        name = instances[found["metric"]["instance"]]
        values = [float(v) for _, v in found["values"]][SCRAPE_WARMUP:]
        out[name] = {"scrapes": len(values), "failed": failed.get(name, 0), "series": series.get(name),
                     "ms_median": common.median(values) * 1000, "ms_p99": common.percentile(values, 99) * 1000,
                     # the serving process's CPU over the whole phase per scrape (dbpulse's includes its polls)
                     "cpu_ms_per_scrape": used[name] * 1000 / max(1, len(values) + SCRAPE_WARMUP)}
    if "dbpulse" in out and "peer" in out:
        out["ratios"] = {"median": common.ratio(out["peer"]["ms_median"], out["dbpulse"]["ms_median"]),
                         "p99": common.ratio(out["peer"]["ms_p99"], out["dbpulse"]["ms_p99"])}
    return out


@contextlib.contextmanager
def replying(reply: common.Scraped, keep_alive: bool) -> Iterator[common.Service]:
    """A server that does nothing but write ``reply`` (its content type and encoding, the same wire bytes) to every
    request, keeping the connection alive or closing it after each reply as the side it copies does."""
    port = free_port()
    body = Path(tempfile.mkstemp(prefix="bench-reply-")[1])
    body.write_bytes(gzip.compress(reply.body) if reply.content_encoding == "gzip" else reply.body)
    args = [sys.executable, "-c", REPLY_SERVER, str(port), str(body), reply.content_type, reply.content_encoding,
            "keep-alive" if keep_alive else "close"]
    try:
        with serving("reply", args, port) as server:
            yield server
    finally:
        body.unlink()


def client_floor(server: common.Service, scrapes: int) -> dict[str, float]:
    """The bench's client against a reply server (``replying``): what the client and the loopback cost by
    themselves, the part of a side's median that is not the server's work."""
    scraper = common.PrometheusScraper(server.port)
    walls, cpu = [], 0.0
    for i in range(SCRAPE_WARMUP + scrapes):
        started = time.process_time()
        got = scraper.scrape()
        if i >= SCRAPE_WARMUP:
            walls.append(got.seconds)
            cpu += time.process_time() - started
    scraper.close()
    return {"ms_median": common.median(walls) * 1000, "ms_p99": common.percentile(walls, 99) * 1000,
            "client_cpu_ms_per_scrape": cpu * 1000 / scrapes}


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def sides(figures: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The per-side entries of a side-by-side result (dbpulse, the peer), without its ratios and notes."""
    return [(name, figures[name]) for name in ("dbpulse", "peer", "dbpulse_reply", "peer_reply") if name in figures]


def peer_version() -> str:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "prometheus-pgbouncer-exporter"],
                         capture_output=True, text=True, check=False).stdout
    return out.strip() or "unknown"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", type=int, default=20)
    parser.add_argument("--clients", type=int, default=5, help="idle clients per database")
    parser.add_argument("--polls", type=int, default=50, help="timed polls of dbpulse (in-process)")
    parser.add_argument("--scrapes", type=int, default=500, help="timed scrapes over HTTP of each, in turn")
    parser.add_argument("--minutes", type=int, default=4, help="minutes of polls (stepped clock) for dbpulse's "
                        "admin commands a minute")
    parser.add_argument("--prometheus-seconds", type=float, default=120, help="how long a real Prometheus scrapes "
                        "both sides (at --prometheus-interval) before the client's scrapes; 0: not at all")
    parser.add_argument("--prometheus-interval", type=float, default=PROMETHEUS_INTERVAL)
    parser.add_argument("--results-dir", type=Path, default=None, help="default bench/results")
    args = parser.parse_args(argv)
    names = [f"bench{i}" for i in range(args.databases)]
    with LocalPostgres(settings={"max_connections": str(args.databases * 3 + 20)}) as pg, \
            LocalPgBouncer(pg, pool_size=1, settings={"max_client_conn": str(args.databases * args.clients + 50),
                                                      "server_idle_timeout": "3600"}) as bouncer:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            for name in names:
                conn.execute(f"CREATE DATABASE {name}")
        with clients(bouncer, names, args.clients), CountingProxy(bouncer.port) as proxy:
            ours = measure_dbpulse(proxy, args.polls)
            per_minute = {f"dbpulse_at_{i:g}s": commands_per_minute(proxy, args.minutes, i) for i in SCRAPE_INTERVALS}
            command, peer = peer_command(proxy)
            if command is not None:
                peer |= measure_peer(proxy, command, max(1, args.polls // 10))
            http = side_by_side(bouncer, command, args.scrapes, args.prometheus_seconds,
                                args.prometheus_interval)
    ratios = {}
    prometheus_ratios = http["prometheus"].get("ratios", {})
    if peer.get("runs"):
        for i in SCRAPE_INTERVALS:
            per_minute[f"peer_at_{i:g}s"] = peer["admin_commands_per_scrape"] * 60 / i
        ratios = {"scrape_peer_over_dbpulse_median": http["ratios"]["median"],
                  "scrape_peer_over_dbpulse_p99": http["ratios"]["p99"],
                  "scrape_cpu_peer_over_dbpulse": http["ratios"]["cpu"],
                  **{f"prometheus_scrape_duration_peer_over_dbpulse_{q}": prometheus_ratios.get(q)
                     for q in ("median", "p99")},
                  **{f"admin_commands_per_minute_peer_over_dbpulse_at_{i:g}s":
                     common.ratio(per_minute[f"peer_at_{i:g}s"], per_minute[f"dbpulse_at_{i:g}s"])
                     for i in SCRAPE_INTERVALS}}
    ours["admin_commands_per_minute"] = per_minute
    result = {
        "params": vars(args) | {"results_dir": None},
        "versions": {"pgbouncer": "1.18.0", "prometheus-pgbouncer-exporter": peer_version(),
                     "dbpulse": common.dbpulse_version()},
        "machine": common.machine(),
        "dbpulse": ours, "peer": peer, "scrape_over_http": http, "ratios": ratios,
    }
    common.print_table(["", "ms median", "ms p99", "admin commands", "series"],
                       [["dbpulse poll", ours["poll_ms_median"], ours["poll_ms_p99"], ours["admin_commands_per_poll"],
                         ours["series"]],
                        ["dbpulse body, built beforehand (in-process)", ours["scrape_warm_ms_median"], None, 0,
                         ours["series"]],
                        ["dbpulse body during a re-encoding (in-process, worst case)", ours["scrape_cold_ms_median"],
                         None, 0, ours["series"]]]
                       + [[f"{name} scrape over HTTP, Python client ({side['content_encoding'] or 'identity'})",
                           side["ms_median"], side["ms_p99"],
                           0 if name == "dbpulse" else peer.get("admin_commands_per_scrape"), side["series"]]
                          for name, side in sides(http)]
                       + [[f"  the client alone (a prebuilt reply of {name}'s)", side["client_floor"]["ms_median"],
                           side["client_floor"]["ms_p99"], None, None] for name, side in sides(http)]
                       + [[f"{name} scrape_duration_seconds (Prometheus {http['prometheus']['version']}, every "
                           f"{http['prometheus']['interval_s']:g} s)", side["ms_median"], side["ms_p99"], None,
                           side["series"]] for name, side in sides(http["prometheus"])])
    if http.get("ratios"):
        print(f"peer / dbpulse scrape over HTTP: median {common.fmt_ratio(http['ratios']['median'])}, "
              f"p99 {common.fmt_ratio(http['ratios']['p99'])}; serving process CPU per scrape "
              f"{http['dbpulse']['cpu_ms_per_scrape']:.3f} ms against {http['peer']['cpu_ms_per_scrape']:.3f} ms "
              f"({common.fmt_ratio(http['ratios']['cpu'])}; PgBouncer "
              f"{http['peer']['pgbouncer_cpu_ms_per_scrape']:.3f} ms more for the peer)")
        print(f"the Python client's own CPU per scrape: dbpulse {http['dbpulse']['client_cpu_ms_per_scrape']:.3f} ms, "
              f"peer {http['peer']['client_cpu_ms_per_scrape']:.3f} ms")
    if http["prometheus"].get("ratios"):
        print(f"peer / dbpulse scrape_duration_seconds (Prometheus): median "
              f"{common.fmt_ratio(http['prometheus']['ratios']['median'])}, "
              f"p99 {common.fmt_ratio(http['prometheus']['ratios']['p99'])}")
    elif not http["prometheus"].get("runs"):
        print(f"no Prometheus figures: {http['prometheus']['why']}")
    common.print_table(["admin commands a minute", *(f"at {i:g} s" for i in SCRAPE_INTERVALS)],
                       [["dbpulse (interval = that, other settings default)",
                         *(per_minute[f"dbpulse_at_{i:g}s"] for i in SCRAPE_INTERVALS)],
                        ["peer (scrape interval = that)",
                         *(per_minute.get(f"peer_at_{i:g}s") for i in SCRAPE_INTERVALS)]])
    failed = peer if not peer.get("runs") else peer.get("as_installed")
    if failed:
        print(f"prometheus-pgbouncer-exporter {result['versions']['prometheus-pgbouncer-exporter']} as installed does "
              f"not run: {failed['why']}" + ("; measured with the shim" if peer.get("runs") else ""))
    path = common.write_result("pgbouncer_poll", result, args.results_dir)
    print(f"written: {path}")
    return result


if __name__ == "__main__":
    main()
