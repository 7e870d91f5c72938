"""Helpers shared by integration and end-to-end tests: run dbpulse as a real process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from collectors.health.poller import HealthPoller
from collectors.health.settings import HealthEndpoint, HealthSettings, HealthTarget
from collectors.postgres.poller import PostgresPoller
from collectors.postgres.settings import PostgresSettings, PostgresTarget
from collectors.redis.poller import RedisPoller
from collectors.redis.settings import RedisSettings, RedisTarget
from harness.servers import free_port


class DbpulseProcess:
    """``dbpulse run`` in a subprocess on a free port; stderr kept for assertions."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, log_dir: Path | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "monitor.cli", "run", "--listen", f"127.0.0.1:{self.port}", *args]
        self.env = {**os.environ, **(env or {})}
        self.log_path = (log_dir or Path(os.environ.get("TMPDIR", "/tmp"))) / f"dbpulse-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_ready: bool = True, timeout: float = 20) -> DbpulseProcess:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout
        path = "/readyz" if wait_ready else "/healthz"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dbpulse exited with {self.proc.returncode}:\n{self.log}")
            try:
                status, _ = self.get(path)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        log = self.log
        self.stop(signal.SIGKILL)  # a process that never got ready must not outlive the test (its port, its polls)
        raise TimeoutError(f"dbpulse not {path} within {timeout} s:\n{log}")

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def metrics(self) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        """name -> {sorted label pairs: value}, sample names as exposed (``_total`` kept)."""
        status, body = self.get("/metrics")
        assert status == 200, body
        out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
        return out

    def value(self, name: str, **labels: str) -> float | None:
        for key, value in self.metrics().get(name, {}).items():
            if all(dict(key).get(k) == v for k, v in labels.items()):
                return value
        return None

    def wait_for(self, name: str, expected: float, timeout: float = 15, **labels: str) -> float:
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.value(name, **labels)
            if value == expected:
                return value
            time.sleep(0.2)
        raise AssertionError(f"{name}{labels} stayed {value}, expected {expected}\n{self.log}")

    def wait_for_page(self, path: str, needle: str, timeout: float = 15) -> str:
        """The body of ``path`` once it answers 200 with ``needle`` in it."""
        deadline = time.monotonic() + timeout
        body = ""
        while time.monotonic() < deadline:
            status, raw = self.get(path)
            body = raw.decode()
            if status == 200 and needle in body:
                return body
            time.sleep(0.3)
        raise AssertionError(f"{needle!r} not in {path} within {timeout} s:\n{body[:4000]}\n{self.log[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> float:
        """Send ``sig`` and return how long the process took to exit."""
        assert self.proc is not None
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        self._log.close()
        return time.monotonic() - started

    def __enter__(self) -> DbpulseProcess:
        return self if self.proc else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc and self.proc.poll() is None:
            self.stop()


@dataclass
class StandInApp:
    """The seeds' health endpoints; `ready = False` makes /health/ready answer 503."""

    ready: bool = True
    port: int = field(default_factory=free_port)

    def _components(self) -> dict[str, Any]:
        redis_status = "healthy" if self.ready else "unhealthy"
        return {
            "database": {"status": "healthy", "database": "connected"},
            "redis": {"status": redis_status, "redis": "connected" if self.ready else "error: refused"},
        }

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "healthy", "service": "onquota-api", "version": "1.0.0",
                                  "pool": {"size": 20, "max_overflow": 10, "checked_out": 3,
                                           "checked_in": 17, "overflow": 0}})

    async def live(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "service": "onquota-api", "version": "1.0.0",
                                  "timestamp": "2025-11-14T00:00:00"})

    async def ready_(self, request: web.Request) -> web.Response:
        body = {"status": "ready" if self.ready else "not_ready", "timestamp": "2025-11-14T00:00:00",
                "components": self._components(), "is_ready": self.ready}
        return web.json_response(body, status=200 if self.ready else 503)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self.health)
        app.router.add_get("/health/live", self.live)
        app.router.add_get("/health/ready", self.ready_)
        return app

    def serve(self) -> Iterator[StandInApp]:
        """Serve the endpoints from a background thread until the generator is closed."""
        for _ in serve_in_thread(self.app(), self.port):
            yield self


def serve_in_thread(app: web.Application, port: int | None = None) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 from a background thread until the generator is closed; yields its base URL."""
    port = port or free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def stand_in_process(timeout: float = 30) -> tuple[subprocess.Popen[bytes], str]:
    """The stand-in application in a process of its own (one a test can SIGSTOP), and its base URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.support", "stand-in", str(port)],
                            cwd=Path(__file__).resolve().parents[1], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"the stand-in application did not answer on {url} within {timeout} s")


def pg_poller(dsn: str, name: str = "shop", interval: float = 5, timeout: float = 4,
              **settings: Any) -> PostgresPoller:
    """A PostgreSQL poller of one target, its section's other settings as keyword arguments."""
    return PostgresPoller(PostgresTarget(name=name, dsn=dsn),
                          PostgresSettings(interval=interval, timeout=timeout, **settings))


def redis_poller(url: str, name: str = "r", interval: float = 10, timeout: float = 5, password: str | None = None,
                 **settings: Any) -> RedisPoller:
    return RedisPoller(RedisTarget(name=name, url=url), RedisSettings(interval=interval, timeout=timeout, **settings),
                       password)


def health_poller(url: str, endpoints: list[tuple[str, float]] | None = None, name: str = "app",
                  interval: float = 5, timeout: float = 4, json_body: bool = True, **settings: Any) -> HealthPoller:
    """A health poller; ``endpoints`` as (path, timeout) pairs, else the section's defaults."""
    chosen = None if endpoints is None else [
        HealthEndpoint.model_validate({"path": p, "timeout": t, "json": json_body}) for p, t in endpoints]
    return HealthPoller(HealthTarget(name=name, url=url, endpoints=chosen),
                        HealthSettings(interval=interval, timeout=timeout, **settings))


if __name__ == "__main__" and sys.argv[1:2] == ["stand-in"]:
    web.run_app(StandInApp(port=int(sys.argv[2])).app(), host="127.0.0.1", port=int(sys.argv[2]), print=None,
                handle_signals=True)


def eventually(check: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    """``check()``'s first truthy result, polled every ``every`` s; fails naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)
