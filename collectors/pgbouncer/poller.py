"""PgBouncer poller: one admin-console connection per target, time-bounded, self-healing.

The admin console (the virtual database ``pgbouncer``) speaks only the simple query protocol and
knows no ``SET``: commands are sent without parameters (psycopg then uses the simple protocol) on an
autocommit connection with no startup ``options``. It has no ``statement_timeout`` either: the poll
is bounded by the scheduler's deadline and ``connect_timeout``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.rows import dict_row

from collectors.base.kept import KeptConnectionPoller
from collectors.base.poller import Poller
from collectors.base.redact import redact, register_dsn_secrets
from collectors.pgbouncer.settings import PgBouncerSettings, PgBouncerTarget
from collectors.pgbouncer.snapshot import (
    ADMIN_DATABASE,
    Database,
    PgBouncerSnapshot,
    Pool,
    client_connections,
    count_connections,
    fold_pools,
    prepared_statements,
    stats_counters,
)

log = logging.getLogger("dbpulse.pgbouncer")

APPLICATION_NAME = "dbpulse"
COMMANDS = ("POOLS", "STATS", "DATABASES", "LISTS", "CONFIG", "CLIENTS", "SERVERS", "VERSION")
# How often each command is sent (the rest: every poll). What changes only on RELOAD, SET, PAUSE or DISABLE
# (SHOW DATABASES, CONFIG) and PgBouncer's internal lists are read at config_interval; the per-application
# counts (SHOW CLIENTS, SERVERS) at detail_interval. SHOW POOLS and STATS (the waits, the counters) every poll.
# At the defaults (15 s, 60 s, 30 s): 4 x 2 + 2 x 2 + 3 = 15 commands a minute, against the 16 of
# prometheus-pgbouncer-exporter's 4 commands a scrape at a 15 s scrape interval (docs/benchmarks.md).
SLOW_COMMANDS = {"DATABASES": "config_interval", "LISTS": "config_interval", "CONFIG": "config_interval",
                 "CLIENTS": "detail_interval", "SERVERS": "detail_interval"}
CONFIG_KEYS = ("max_client_conn", "default_pool_size", "pool_mode")

_LOGIN_HINT = ("the role must be in PgBouncer's stats_users (or admin_users), with its password in auth_file "
               "(or found by auth_query)")
_LOGIN_FAILURE = re.compile(r"password authentication failed|not allowed|no such user|SASL authentication failed",
                            re.IGNORECASE)


def pollers(settings: PgBouncerSettings) -> list[Poller]:
    """One poller per PgBouncer."""
    return [PgBouncerPoller(target, settings, target.password()) for target in settings.targets]


def error_line(exc: BaseException) -> str:
    """The first line of a driver error, with every registered password masked."""
    lines = str(exc).strip().splitlines()
    return redact(lines[0] if lines else type(exc).__name__)


class PgBouncerConnectError(ConnectionError):
    """The admin console refused or did not answer; the message says why, never with a password."""


class PgBouncerPoller(KeptConnectionPoller[PgBouncerSnapshot]):
    source = "pgbouncer"
    up_metric = "dbpulse_pgbouncer_up"

    def __init__(self, target: PgBouncerTarget, settings: PgBouncerSettings, password: str | None = None) -> None:
        super().__init__(target, settings)
        self.settings = settings
        self._dsn = target.dsn
        self.applications = dict(target.applications)
        register_dsn_secrets(target.dsn)
        self._password = password
        self._version: str | None = None  # read once per connection
        # A slower command's last rows and when they were read (monotonic); emptied on every new connection,
        # so a restarted or reconfigured PgBouncer is read in full at once.
        self._kept_rows: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self.clock: Callable[[], float] = time.monotonic
        # Every counter exists from the start (at 0), so rate() works from the first error.
        self._errors: dict[str, int] = dict.fromkeys((c.lower() for c in COMMANDS), 0)

    async def _connect(self) -> psycopg.AsyncConnection[dict[str, Any]]:
        """A new admin-console connection; what was read once per connection is read again on it."""
        self._version = None
        self._kept_rows.clear()
        kwargs: dict[str, Any] = {"application_name": APPLICATION_NAME, "autocommit": True,
                                  "connect_timeout": max(1, int(self.timeout)), "row_factory": dict_row}
        if self._password is not None:
            kwargs["password"] = self._password
        try:
            return await psycopg.AsyncConnection.connect(self._dsn, **kwargs)
        except psycopg.OperationalError as exc:
            reason = error_line(exc)
            hint = f" ({_LOGIN_HINT})" if _LOGIN_FAILURE.search(str(exc)) else ""
            raise PgBouncerConnectError(f"cannot connect to the PgBouncer admin console: {reason}{hint}") from None

    async def _show(self, conn: psycopg.AsyncConnection[dict[str, Any]], command: str) -> list[dict[str, Any]] | None:
        """``SHOW <command>``: its rows, or None when PgBouncer refused it (counted, the poll goes on)."""
        try:
            cur = await conn.execute(f"SHOW {command}", prepare=False)
            return await cur.fetchall()
        except psycopg.Error as exc:
            if conn.broken or conn.closed:
                raise
            self._errors[command.lower()] = self._errors.get(command.lower(), 0) + 1
            log.warning("%s: SHOW %s failed: %s", self.target, command, error_line(exc))
            return None

    async def _read(self, conn: psycopg.AsyncConnection[dict[str, Any]]) -> PgBouncerSnapshot:
        pool_rows = await self._show(conn, "POOLS")
        if pool_rows is None:
            raise RuntimeError("SHOW POOLS failed: the role may not be in stats_users")
        stats = await self._show(conn, "STATS") or []
        kept = {str(r.get("name")) for r in self._kept_rows.get("DATABASES", (0.0, []))[1]}
        new_database = any(str(r.get("database")) not in kept for r in pool_rows)  # e.g. one made by a "*" entry
        databases = await self._show_every(conn, "DATABASES", now=new_database)
        lists = await self._show_every(conn, "LISTS")
        clients = await self._show_every(conn, "CLIENTS", now=new_database)  # and who its clients are
        servers = await self._show_every(conn, "SERVERS", now=new_database)
        config = {str(r["key"]): str(r["value"]) for r in await self._show_every(conn, "CONFIG")
                  if r.get("key") in CONFIG_KEYS}
        if self._version is None:
            rows = await self._show(conn, "VERSION")
            self._version = _version(rows[0]) if rows else None
        pools = sorted((Pool.from_row(r) for r in pool_rows if r.get("database") != ADMIN_DATABASE),
                       key=lambda p: (-p.busy, p.database, p.user))
        top = self.settings.top_pools
        return PgBouncerSnapshot(
            target=self.target,
            version=self._version or "",
            pools=pools[:top],
            pools_other=fold_pools(pools[top:]),
            stats={str(r["database"]): stats_counters(r) for r in stats if r.get("database") != ADMIN_DATABASE},
            databases=[Database.from_row(r) for r in databases if r.get("name") != ADMIN_DATABASE],
            lists={str(r["list"]): int(r["items"]) for r in lists},
            max_client_conn=_config_int(config, "max_client_conn"),
            default_pool_size=_config_int(config, "default_pool_size"),
            default_pool_mode=config.get("pool_mode", ""),
            client_connections=client_connections(pool_rows),
            clients=count_connections(clients, self.settings.top_applications),
            servers=count_connections(servers, self.settings.top_applications),
            server_prepared_statements=prepared_statements(servers),
            command_errors=dict(self._errors),
            applications=self.applications,
        )

    async def _show_every(self, conn: psycopg.AsyncConnection[dict[str, Any]], command: str,
                          now: bool = False) -> list[dict[str, Any]]:
        """``SHOW <command>`` at its cadence (``SLOW_COMMANDS``): the rows last read while they are younger than
        it (unless ``now``), else read now. A refused command is tried again at the next poll; its last rows
        stand meanwhile."""
        when = self.clock()
        every = float(getattr(self.settings, SLOW_COMMANDS[command]))
        kept = self._kept_rows.get(command)
        if kept is not None and when - kept[0] < every and not now:
            return kept[1]
        rows = await self._show(conn, command)
        if rows is None:
            return kept[1] if kept else []
        self._kept_rows[command] = (when, rows)
        return rows


def _version(row: dict[str, Any]) -> str:
    """``PgBouncer 1.18.0`` (or ``1.18.0`` alone, as some builds say) -> ``1.18.0``."""
    text = str(next(iter(row.values()), ""))
    match = re.search(r"\d+(?:\.\d+)+", text)
    return match.group(0) if match else text[:32]


def _config_int(config: dict[str, str], key: str) -> int | None:
    value = config.get(key)
    return int(value) if value is not None and value.strip().isdigit() else None

