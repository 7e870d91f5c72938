"""Throwaway PostgreSQL and Redis servers on free ports.

Used by the test harness and by the demo (``python -m demo``). PostgreSQL refuses to run
as root, so when we are root the cluster is initialised and started as the
``postgres`` system user (created by Debian's postgresql-common).

A server of a given major (``LocalPostgres(version="17")``) runs from the
cache ``scripts/install-postgres-versions.sh`` fills (every supported major;
15 is Debian's); without a version, from Debian's packages as before.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/{v}/bin",)
PG_VERSIONS = ("17", "16", "15", "14", "13")
SUPPORTED_MAJORS = ("13", "14", "15", "16", "17", "18")


class ServerError(RuntimeError):
    """A local server could not be found or started."""


def free_port() -> int:
    """Ask the kernel for a free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def end_process(proc: subprocess.Popen[bytes], timeout: float, terminate: bool = True) -> None:
    """Have ``proc`` end: SIGTERM (unless ``terminate`` is off: the caller signalled it its own way), up to
    ``timeout`` seconds to exit, then SIGKILL."""
    if terminate:
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Throwaway:
    """A server in its own temporary directory: started on entering ``with``; on leaving, stopped and the
    directory removed (``cleanup``)."""

    workdir: Path
    _own_dir = True  # False: the caller gave the directory, and keeps it

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def pg_cache_dir() -> Path:
    """Where scripts/install-postgres-versions.sh installs the majors (the same rule as the script)."""
    env = os.environ.get("DBPULSE_PG_CACHE")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/cache/dbpulse/postgres")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dbpulse" / "postgres"


def find_pg_bin(version: str | None = None) -> Path:
    """Directory holding initdb/pg_ctl: of major ``version`` if given (the version cache, then Debian's
    layout), else $DBPULSE_PG_BIN, Debian's layout, or PATH."""
    if version is not None:
        for path in (pg_cache_dir() / version / "bin", Path(PG_BIN_CANDIDATES[0].format(v=version))):
            if (path / "initdb").exists():
                return path
        raise ServerError(
            f"PostgreSQL {version} server binaries not found in {pg_cache_dir() / version}: "
            f"run scripts/install-postgres-versions.sh {version} (scripts/setup.sh does it)"
        )
    env = os.environ.get("DBPULSE_PG_BIN")
    if env:
        return Path(env)
    for version in PG_VERSIONS:
        for pattern in PG_BIN_CANDIDATES:
            path = Path(pattern.format(v=version))
            if (path / "initdb").exists():
                return path
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise ServerError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install postgresql-15 "
        "(make setup does it) or set DBPULSE_PG_BIN"
    )


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        time.sleep(0.05)
    return False


class LocalPostgres:
    """A PostgreSQL cluster in a temporary directory, listening on 127.0.0.1:port.

    Authentication is ``trust`` for the superuser ``postgres`` and
    ``scram-sha-256`` for every other role, so tests can check password handling.
    """

    def __init__(
        self,
        port: int | None = None,
        preload: tuple[str, ...] = ("pg_stat_statements",),
        settings: dict[str, str] | None = None,
        workdir: Path | None = None,
        version: str | None = None,
    ) -> None:
        self.version = version
        self.bin = find_pg_bin(version)
        self.port = port or free_port()
        self.preload = preload
        self.settings = settings or {}
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="dbpulse-pg-"))
        self.datadir = self.workdir / "data"
        self.logfile = self.workdir / "postgres.log"
        self._user = self._run_as_user()

    @staticmethod
    def _run_as_user() -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise ServerError("running as root needs a 'postgres' system user") from exc
        return "postgres"

    def _cmd(self, *args: str) -> list[str]:
        if self._user:
            return ["runuser", "-u", self._user, "--", *args]
        return list(args)

    def _chown(self, path: Path) -> None:
        if self._user:
            entry = pwd.getpwnam(self._user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def initdb(self) -> None:
        self._chown(self.workdir)
        self.workdir.chmod(0o755)
        subprocess.run(
            self._cmd(
                str(self.bin / "initdb"), "-D", str(self.datadir), "-U", "postgres",
                "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                "--locale=C", "--no-sync",
            ),
            check=True, capture_output=True,
        )
        hba = self.datadir / "pg_hba.conf"
        rules = ("host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust\n"
                 "host replication postgres 127.0.0.1/32 trust\n")
        hba.write_text(rules + hba.read_text())
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.workdir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_preload_libraries": "'" + ",".join(self.preload) + "'",
            "pg_stat_statements.track": "all",
            "track_io_timing": "on",
            "max_connections": "100",
            "logging_collector": "off",
        }
        conf.update(self.settings)
        with (self.datadir / "postgresql.conf").open("a") as f:
            for key, value in conf.items():
                f.write(f"{key} = {value}\n")

    def start(self, timeout: float = 30.0) -> None:
        if not (self.datadir / "PG_VERSION").exists():
            self.initdb()
        if self._user and not self.logfile.exists():
            self.logfile.touch()
            self._chown(self.logfile)
        subprocess.run(
            self._cmd(str(self.bin / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile),
                      "-w", "-t", str(int(timeout)), "start"),
            check=True, capture_output=True,
        )
        if not _wait_port(self.port, timeout):
            raise ServerError(f"PostgreSQL did not listen on port {self.port}; see {self.logfile}")

    def standby(self, slot: str = "standby", name: str = "standby", settings: dict[str, str] | None = None,
                timeout: float = 60.0) -> LocalPostgres:
        """A streaming standby of this running server with a new physical slot ``slot``; not started.

        Made by ``pg_basebackup -R`` where this major has one (Debian's packages). The version
        cache's builds have none: then by a cold copy (this server is stopped for the copy and
        started again), with the same result: ``standby.signal``, ``primary_conninfo`` and
        ``primary_slot_name``.
        """
        basebackup = self.bin / "pg_basebackup"
        standby = LocalPostgres(preload=self.preload, settings=settings, version=self.version)
        standby._chown(standby.workdir)
        standby.workdir.chmod(0o755)
        conf = {"port": str(standby.port), "unix_socket_directories": f"'{standby.workdir}'",
                "cluster_name": f"'{name}'"}
        if basebackup.exists():
            subprocess.run(
                standby._cmd(str(basebackup), "-D", str(standby.datadir), "-h", "127.0.0.1", "-p", str(self.port),
                             "-U", "postgres", "-R", "-X", "stream", "-C", "-S", slot, "-c", "fast", "--no-sync"),
                check=True, capture_output=True, timeout=timeout,
            )
        else:
            self._cold_copy(standby, slot)
            conf |= {"primary_conninfo": f"'host=127.0.0.1 port={self.port} user=postgres'",
                     "primary_slot_name": f"'{slot}'"}
        # The copy carries this server's postgresql.conf: the last setting of a name wins.
        conf |= settings or {}
        with (standby.datadir / "postgresql.conf").open("a") as f:
            for key, value in conf.items():
                f.write(f"{key} = {value}\n")
        return standby

    def _cold_copy(self, standby: LocalPostgres, slot: str) -> None:
        import psycopg  # only here: the rest of the harness needs no driver

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot,))
        self.stop()
        try:
            subprocess.run(self._cmd("cp", "-a", str(self.datadir), str(standby.datadir)), check=True,
                           capture_output=True)
        finally:
            self.start()
        for stale in (standby.datadir / "postmaster.pid", *(standby.datadir / "pg_replslot").iterdir()):
            if stale.is_dir():
                shutil.rmtree(stale)
            else:
                stale.unlink(missing_ok=True)
        signal = standby.datadir / "standby.signal"
        signal.touch()
        self._chown(signal)

    def stop(self, mode: str = "fast") -> None:
        if (self.datadir / "postmaster.pid").exists():
            subprocess.run(
                self._cmd(str(self.bin / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"),
                capture_output=True,
            )

    def cleanup(self) -> None:
        self.stop("immediate")
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def dsn(self, dbname: str = "postgres", user: str = "postgres", password: str | None = None) -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


# The Redis and Valkey servers scripts/install-redis-versions.sh installs (scripts/setup.sh runs it).
REDIS_SERVERS = ("redis-6.0", "redis-6.2", "redis-7.0", "redis-7.2", "redis-7.4", "redis-8.2",
                 "valkey-8.1", "valkey-9.1")


def redis_cache() -> Path:
    """Where install-redis-versions.sh keeps the servers (the same rule as the script)."""
    env = os.environ.get("DBPULSE_REDIS_CACHE")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/cache/dbpulse/redis")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dbpulse" / "redis"


def find_redis_server(server: str | None = None) -> Path:
    """The redis-server of an installed version (``redis-6.0``, ``valkey-9.1``...), or PATH's when None."""
    if server is None:
        exe = shutil.which("redis-server")
        if not exe:
            raise ServerError("redis-server not found: install redis-server (make setup does it)")
        return Path(exe)
    if server not in REDIS_SERVERS:
        raise ServerError(f"unknown Redis server {server!r} (known: {', '.join(REDIS_SERVERS)})")
    path = redis_cache() / server / "bin" / "redis-server"
    if not os.access(path, os.X_OK):
        raise ServerError(f"{server} is not installed in {redis_cache()}: run "
                          f"scripts/install-redis-versions.sh {server} (make setup does it)")
    return path


@dataclass(frozen=True)
class RedisVersion:
    product: str  # "redis" or "valkey"
    version: tuple[int, ...]

    @property
    def text(self) -> str:
        return ".".join(map(str, self.version))

    def at_least(self, *version: int) -> bool:
        """Whether it has what Redis ``version`` has (Valkey 7.2+ forked from Redis 7.2.4)."""
        return version <= (7, 2, 4) if self.product == "valkey" else self.version >= version


@functools.cache
def redis_version(exe: Path) -> RedisVersion:
    """What ``exe --version`` says: ``Redis server v=7.0.15 ...`` or ``Valkey server v=9.1.2 ...``."""
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.match(r"(Redis|Valkey) server v=(\d+(?:\.\d+)*)", out)
    if not m:
        raise ServerError(f"{exe} --version said {out!r}")
    return RedisVersion(m.group(1).lower(), tuple(int(x) for x in m.group(2).split(".")))


class LocalRedis(Throwaway):
    """A redis-server on 127.0.0.1:port that keeps nothing on disk unless told to.

    ``server`` names an installed version (see ``REDIS_SERVERS``); None runs the
    ``redis-server`` on PATH (Debian's). ``debug`` allows ``DEBUG`` from local
    connections: it is off by default from 7.0 and can only be switched on at
    start, with an option that 6.x refuses. ``replica_of`` starts it as a replica
    of another LocalRedis. Its data directory is ``datadir`` (the log lives
    beside it), so a test can remove it to make saves fail.
    """

    def __init__(
        self, port: int | None = None, password: str | None = None, extra: dict[str, str] | None = None,
        server: str | None = None, debug: bool = False, replica_of: LocalRedis | None = None,
    ) -> None:
        self.exe = str(find_redis_server(server))
        self.server = server or "redis-server"
        self.port = port or free_port()
        self.password = password
        self.extra = extra or {}
        self.debug = debug
        self.replica_of = replica_of
        self.workdir = Path(tempfile.mkdtemp(prefix="dbpulse-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def version(self) -> RedisVersion:
        return redis_version(Path(self.exe))

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    @property
    def logfile(self) -> Path:
        return self.workdir / "redis.log"

    def start(self, timeout: float = 15.0) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        args = [
            self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.datadir), "--daemonize", "no",
            "--logfile", str(self.logfile),
        ]
        if self.password:
            args += ["--requirepass", self.password]
        if self.debug and self.version.at_least(7, 0):
            args += ["--enable-debug-command", "local"]
        if self.replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(self.replica_of.port)]
            if self.replica_of.password:
                args += ["--masterauth", self.replica_of.password]
        for key, value in self.extra.items():
            args += [f"--{key}", value]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not _wait_port(self.port, timeout):
            self.stop()
            raise ServerError(f"{self.server} did not listen on port {self.port}; see {self.logfile}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            end_process(self.proc, 5)
        self.proc = None

    def url(self, db: int = 0) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"
