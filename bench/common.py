"""Shared pieces of the benchmarks: processes, the scraper, statistics, machine info, results.

Every benchmark measures dbpulse and its peer exporter with the same client,
on the same data, in the same run, and reports the ratio peer / dbpulse.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from harness.servers import end_process

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DBPULSE = ROOT / ".venv" / "bin" / "dbpulse"
PG_EXPORTER = Path(os.environ.get("BENCH_PG_EXPORTER", "/usr/bin/prometheus-postgres-exporter"))
REDIS_EXPORTER = Path(os.environ.get("BENCH_REDIS_EXPORTER", "/usr/bin/prometheus-redis-exporter"))


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def ratio(peer: float, ours: float) -> float | None:
    """peer / dbpulse: above 1 means dbpulse is cheaper or faster."""
    if ours <= 0 or peer != peer or ours != ours:
        return None
    return peer / ours


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}x"


# --------------------------------------------------------------------------- processes


@dataclass
class Service:
    """A process under test, started on a free port and stopped at the end."""

    name: str
    args: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def start(self) -> None:
        fd, path = tempfile.mkstemp(prefix=f"bench-{self.name}-", suffix=".log")
        self.log_path = Path(path)
        env = {**os.environ, **self.env}
        self.proc = subprocess.Popen(self.args, stdout=fd, stderr=fd, env=env, cwd=ROOT)
        os.close(fd)

    def rss_bytes(self) -> int:
        assert self.proc is not None
        return int(psutil.Process(self.proc.pid).memory_info().rss)

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        times = psutil.Process(self.proc.pid).cpu_times()
        return float(times.user + times.system)

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            end_process(self.proc, 10)
        if self.log_path:
            with contextlib.suppress(OSError):
                self.log_path.unlink()


@contextlib.contextmanager
def running(*services: Service) -> Iterator[None]:
    try:
        for s in services:
            s.start()
        yield
    finally:
        for s in services:
            s.stop()


def wait_http(service: Service, timeout: float = 60.0, path: str = "/metrics") -> None:
    """Wait until ``path`` answers 200, or fail with the process's log."""
    import urllib.request

    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{service.port}{path}"
    while time.monotonic() < deadline:
        if service.proc and service.proc.poll() is not None:
            raise RuntimeError(f"{service.name} exited ({service.proc.returncode}):\n{service.log_tail()}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=30) as resp:
            if resp.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{service.name} did not answer {url} within {timeout} s:\n{service.log_tail()}")


def fetch_metrics(url: str, timeout: float = 60.0) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return str(resp.read().decode())


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def metric_values(text: str, name: str, **labels: str) -> list[float]:
    """Values of the samples called ``name`` whose labels include ``labels``."""
    out = []
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m or m.group(1) != name:
            continue
        label_text = m.group(2) or ""
        if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            out.append(float(m.group(3)))
    return out


def series_count(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def dbpulse_polls(port: int, source: str = "postgres") -> int:
    """Completed polls so far, from dbpulse's own ``dbpulse_source_polls_total``."""
    values = metric_values(fetch_metrics(f"http://127.0.0.1:{port}/metrics"), "dbpulse_source_polls_total",
                           source=source)
    return int(sum(values))


def wait_dbpulse_polls(port: int, at_least: int, timeout: float, source: str = "postgres") -> int:
    deadline = time.monotonic() + timeout
    polls = 0
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            polls = dbpulse_polls(port, source)
            if polls >= at_least:
                return polls
        time.sleep(0.05)
    raise RuntimeError(f"dbpulse made {polls} {source} polls, expected {at_least} within {timeout} s")


# --------------------------------------------------------------------------- the scraper


@dataclass
class ScrapeResult:
    latencies: list[float]
    errors: int
    bytes_last: int
    wall: float
    sizes: list[int] = field(default_factory=list)  # body bytes of each successful scrape

    def summary(self) -> dict[str, Any]:
        return {
            "requests": len(self.latencies),
            "errors": self.errors,
            "median_ms": median(self.latencies) * 1000,
            "p99_ms": percentile(self.latencies, 99) * 1000,
            "max_ms": (max(self.latencies) if self.latencies else float("nan")) * 1000,
            "throughput_rps": len(self.latencies) / self.wall if self.wall else None,
            "response_bytes": self.bytes_last,
            "response_bytes_min": min(self.sizes) if self.sizes else None,
            "response_bytes_max": max(self.sizes) if self.sizes else None,
        }


async def _scrape(url: str, requests: int, concurrency: int, timeout: float) -> ScrapeResult:
    latencies: list[float] = []
    sizes: list[int] = []
    errors = 0
    size = 0
    todo = iter(range(requests))
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=True)
    # A Prometheus scraper opens a connection per scrape target and asks for the text format.
    headers = {"Accept": "text/plain;version=0.0.4", "Accept-Encoding": "identity"}

    async with aiohttp.ClientSession(timeout=client_timeout, connector=connector, headers=headers) as session:

        async def worker() -> None:
            nonlocal errors, size
            for _ in todo:
                started = time.perf_counter()
                try:
                    async with session.get(url) as resp:
                        body = await resp.read()
                        if resp.status != 200:
                            errors += 1
                            continue
                except (TimeoutError, aiohttp.ClientError):
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)
                size = len(body)
                sizes.append(size)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return ScrapeResult(latencies, errors, size, wall, sizes)


def scrape(url: str, requests: int, concurrency: int, timeout: float = 60.0) -> ScrapeResult:
    """``requests`` GETs of ``url`` by ``concurrency`` concurrent scrapers; one latency per success."""
    return asyncio.run(_scrape(url, requests, concurrency, timeout))


# What Prometheus 2.53 sends with every scrape (its default scrape_protocols, no native histograms).
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
              "text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    "Accept-Encoding": "gzip",
    "User-Agent": "Prometheus/2.53.1",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}


@dataclass
class Scraped:
    seconds: float  # from sending the request to the body read and decoded
    body: bytes  # decoded
    content_type: str
    content_encoding: str
    wire_bytes: int


class PrometheusScraper:
    """One scraper as Prometheus is one: its headers, one connection kept alive for as long as the server keeps
    it (a server that closes it is connected again, in the timed scrape), the gzipped body read and decoded.
    The same client for dbpulse and its peer, one scrape at a time."""

    def __init__(self, port: int, path: str = "/metrics", timeout: float = 30.0) -> None:
        import http.client

        self.path = path
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def scrape(self) -> Scraped:
        import gzip

        started = time.perf_counter()
        self.conn.request("GET", self.path, headers=PROMETHEUS_HEADERS)
        resp = self.conn.getresponse()
        wire = resp.read()
        encoding = resp.getheader("Content-Encoding") or ""
        body = gzip.decompress(wire) if encoding == "gzip" else wire
        seconds = time.perf_counter() - started
        if resp.status != 200:
            raise RuntimeError(f"GET {self.path}: HTTP {resp.status}")
        return Scraped(seconds, body, resp.getheader("Content-Type") or "", encoding, len(wire))

    def close(self) -> None:
        self.conn.close()


# --------------------------------------------------------------------------- machine and versions


def _run(*args: str) -> str:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (out.stdout + out.stderr).strip()


def machine() -> dict[str, Any]:
    lscpu = _run("lscpu")
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                  if line.startswith("Model name")), platform.processor())
    os_name = platform.platform()
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": os_name,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def pg_exporter_version() -> str:
    out = _run(str(PG_EXPORTER), "--version")
    m = re.search(r"version (\S+)", out)
    return m.group(1) if m else out.splitlines()[0] if out else "unknown"


def redis_exporter_version() -> str:
    out = _run(str(REDIS_EXPORTER), "--version")
    m = re.search(r"Exporter (\S+)", out) or re.search(r"version[ :]+(\S+)", out)
    return m.group(1) if m else "unknown"


@functools.cache
def dbpulse_version() -> str:
    """dbpulse's version and commit, read once: call it before starting dbpulse so it names what runs."""
    out = _run(str(DBPULSE), "--version")
    commit = _run("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD")
    # Uncommitted changes to the service's code are part of what was measured: say so.
    dirty = _run("git", "-C", str(ROOT), "status", "--porcelain", "--", "monitor", "collectors")
    return f"{out.split()[-1] if out else 'unknown'} (git {commit or 'unknown'}{'+dirty' if dirty else ''})"


# --------------------------------------------------------------------------- results


def write_result(name: str, payload: dict[str, Any], results_dir: Path | None = None) -> Path:
    """Write ``bench/results/<name>.json`` (or into ``results_dir``) and return its path."""
    out_dir = results_dir or RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "when": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "machine": machine(),
        # Other work on the machine skews wall times: keep the load next to the numbers.
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        **payload,
    }
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Print and return a plain aligned table."""
    cells = [[str(h) for h in headers]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    text = "\n".join(lines)
    print(text)
    return text


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:
            return "n/a"
        return f"{value:.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if value is None:
        return "n/a"
    return str(value)


def require(path: Path, what: str) -> None:
    if not (path.exists() or shutil.which(str(path))):
        sys.exit(f"{what} not found at {path}: run `make setup` (installs the peer exporters)")
