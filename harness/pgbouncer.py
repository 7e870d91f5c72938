"""A throwaway PgBouncer on a free port, in front of a harness ``LocalPostgres``.

Debian's ``pgbouncer`` package (1.18 in Debian 12) provides the binary. PgBouncer will not run as
root, so when we are root it runs as the ``postgres`` system user, like ``LocalPostgres``.

Every database name is served by a wildcard entry that connects as PostgreSQL's ``postgres`` (trusted
from 127.0.0.1 by the harness), so a pool is ``(database, postgres)`` whoever the client is. Clients
log in to PgBouncer with ``md5`` against a plain-text ``userlist.txt``: ``USERS`` below, of which
``dbpulse`` is a ``stats_users`` role (what dbpulse needs) and ``admin`` an ``admin_users`` one
(PAUSE, RESUME, DISABLE).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from harness.servers import LocalPostgres, ServerError, Throwaway, _wait_port, end_process, free_port

USERS = {"dbpulse": "stats-secret", "admin": "admin-secret", "app": "app-secret"}


def find_pgbouncer() -> str:
    exe = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None)
    if exe is None:
        raise ServerError("pgbouncer not found: install the Debian package pgbouncer (scripts/setup.sh does it)")
    return exe


class LocalPgBouncer(Throwaway):
    """PgBouncer on 127.0.0.1:port in front of ``postgres``; ``settings`` add to or override its ini."""

    def __init__(self, postgres: LocalPostgres, pool_mode: str = "transaction", pool_size: int = 2,
                 settings: dict[str, str] | None = None, port: int | None = None) -> None:
        self.exe = find_pgbouncer()
        self.postgres = postgres
        self.port = port or free_port()
        self.pool_mode = pool_mode
        self.pool_size = pool_size
        self.settings = settings or {}
        self.workdir = Path(tempfile.mkdtemp(prefix="dbpulse-pgbouncer-"))
        self.logfile = self.workdir / "pgbouncer.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._user = "postgres" if os.geteuid() == 0 else None

    def _write_config(self) -> Path:
        ini = {
            "listen_addr": "127.0.0.1",
            "listen_port": str(self.port),
            "unix_socket_dir": "",
            "auth_type": "md5",
            "auth_file": str(self.workdir / "userlist.txt"),
            "admin_users": "admin",
            "stats_users": "dbpulse",
            "pool_mode": self.pool_mode,
            "default_pool_size": str(self.pool_size),
            "max_client_conn": "100",
            "logfile": str(self.logfile),
            "pidfile": str(self.workdir / "pgbouncer.pid"),
            "ignore_startup_parameters": "extra_float_digits,options",
            "server_login_retry": "1",
        }
        ini.update(self.settings)
        lines = ["[databases]", f"* = host=127.0.0.1 port={self.postgres.port} user=postgres", "", "[pgbouncer]"]
        lines += [f"{k} = {v}" for k, v in ini.items()]
        path = self.workdir / "pgbouncer.ini"
        path.write_text("\n".join(lines) + "\n")
        (self.workdir / "userlist.txt").write_text("".join(f'"{u}" "{p}"\n' for u, p in USERS.items()))
        if self._user:
            entry = pwd.getpwnam(self._user)
            for p in (self.workdir, path, self.workdir / "userlist.txt"):
                os.chown(p, entry.pw_uid, entry.pw_gid)
        return path

    def start(self, timeout: float = 15.0) -> None:
        ini = self._write_config()
        args = [self.exe, str(ini)]
        if self._user:
            args = ["runuser", "-u", self._user, "--", *args]
        # runuser execs nothing in between that would swallow signals: it forks, so signal the child by pid file.
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not _wait_port(self.port, timeout):
            self.stop()
            raise ServerError(f"pgbouncer did not listen on port {self.port}; see {self.logfile}")

    @property
    def pid(self) -> int:
        """PgBouncer's own process (not runuser's)."""
        return int((self.workdir / "pgbouncer.pid").read_text().split()[0])

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.pid, sig)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            signalled = True
            try:
                self.signal(signal.SIGCONT)  # a SIGSTOPped one must run to exit
                self.signal(signal.SIGINT)
            except (OSError, ValueError):
                signalled = False  # no pid file yet: runuser (or pgbouncer) gets SIGTERM
            end_process(self.proc, 10, terminate=not signalled)
        self.proc = None

    def dsn(self, dbname: str = "pgbouncer", user: str = "dbpulse", password: str | None = None) -> str:
        """A client DSN; by default the admin console as the stats_users role."""
        return f"postgresql://{user}:{password or USERS[user]}@127.0.0.1:{self.port}/{dbname}"
