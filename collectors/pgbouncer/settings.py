"""The ``pgbouncer`` section: PgBouncers (each a target) whose admin console dbpulse reads."""

from __future__ import annotations

from typing import Any

from psycopg.conninfo import conninfo_to_dict
from pydantic import Field, field_validator

from collectors.base.redact import register_dsn_secrets
from collectors.base.settings import PollSettings, SecretTarget, named_url, safe_name

ADMIN_DATABASE = "pgbouncer"  # PgBouncer's virtual database: the admin console


def dsn_parts(dsn: str) -> dict[str, str]:
    """libpq's reading of ``dsn``; raises ValueError with a message that never quotes the DSN (it may
    hold a password)."""
    try:
        return {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    except Exception:  # psycopg.ProgrammingError: libpq's text may quote the password
        raise ValueError("is not a valid PostgreSQL connection string or URI") from None


class PgBouncerTarget(SecretTarget):
    dsn: str = Field(description="libpq URI or key=value string of the admin console (database pgbouncer)")
    applications: dict[str, str] = Field(default_factory=dict, description="health target -> the PgBouncer "
                                         "database its pool connects to, for the pool chain (an application whose "
                                         "application_name is its health target's name is matched without it)")

    @field_validator("dsn")
    @classmethod
    def _admin_console(cls, value: str) -> str:
        parts = dsn_parts(value)
        dbname = parts.get("dbname")
        if dbname != ADMIN_DATABASE:
            named = f"names database {dbname!r}" if dbname else "names no database"
            raise ValueError(f"{named}: dbpulse reads PgBouncer's admin console, database {ADMIN_DATABASE!r} "
                             f"(e.g. postgresql://dbpulse@host:6432/{ADMIN_DATABASE})")
        port = parts.get("port", "")
        if port and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError(f'invalid port number: "{port}"')
        return value

    def derived_name(self) -> str:
        """``host:port``: the database is always the admin console's."""
        parts = dsn_parts(self.dsn)
        host = parts.get("host", "localhost").split(",")[0]
        if host.startswith("/"):
            host = "localhost"
        port = parts.get("port", "5432").split(",")[0]  # libpq's default when the DSN gives none
        return safe_name(f"{host}:{port}")

    def password(self) -> str | None:
        """The password from password_env / password_file (else libpq's own sources), registered as a secret."""
        return self.read_password("pgbouncer", self.dsn, register_dsn_secrets)


class PgBouncerSettings(PollSettings):
    targets: list[PgBouncerTarget] = Field(default_factory=list)
    top_applications: int = Field(20, ge=1, le=1000, description="application_name values exported by name in "
                                  "the client and server counts; the rest are summed as __other__")
    top_pools: int = Field(100, ge=1, le=10000, description="pools (database, user) exported by name, busiest "
                           "first; the rest are summed as __other__")
    config_interval: float = Field(60.0, ge=0, description="seconds between reads of SHOW CONFIG, DATABASES and "
                                   "LISTS (pool_size, limits, PAUSE/DISABLE: they change on RELOAD, SET or an "
                                   "admin command); 0 reads them every poll")
    detail_interval: float = Field(30.0, ge=0, description="seconds between reads of SHOW CLIENTS and SERVERS (the "
                                   "counts by application_name); 0 reads them every poll. SHOW POOLS and STATS "
                                   "are read every poll")


def target_from_flag(value: str) -> dict[str, Any]:
    """``--pgbouncer [NAME=]DSN``: an optional target name before a URI."""
    return named_url(value, "dsn")
