"""The ``postgres`` section: targets and what to read from each, used as is by the poller."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from collectors.base.redact import register_dsn_secrets
from collectors.base.settings import PollSettings, SecretTarget, Strict
from collectors.postgres.access import PasswordSource, target_name
from collectors.postgres.conninfo import dsn_problems
from collectors.postgres.discovery import DatabaseSelection


class PostgresTarget(SecretTarget):
    dsn: str
    expected_standbys: int | None = Field(None, ge=0, description="this primary's own count (overrides the section's)")
    databases: DatabaseSelection | None = Field(None, description="the cluster's other databases to watch too: "
                                                "auto, a list, or include/exclude patterns (collectors/postgres/"
                                                "discovery.py); unset: the DSN's database only")

    @field_validator("dsn")
    @classmethod
    def _connectable(cls, value: str) -> str:
        problems = dsn_problems(value)  # never echoes the DSN: it may hold a password
        if problems:
            raise ValueError("; ".join(problems))
        return value

    def derived_name(self) -> str:
        return target_name(self.dsn)

    def password(self) -> str | None:
        """The password from password_env / password_file (else libpq's own sources), registered as a secret."""
        return self.read_password("postgres", self.dsn, register_dsn_secrets)

    def password_source(self) -> PasswordSource:
        """What the pollers connect with: the password, read now (an unreadable password_file is refused at
        start); with password_file, the reader itself, so that the file is read again at each new connection
        and a rotated token (RDS IAM, Cloud SQL, Entra ID) is used once its refresher has written it."""
        password = self.password()
        return self.password if self.password_file is not None else password


class AppPool(Strict):
    """An application's server-side pool capacity (e.g. SQLAlchemy pool_size + max_overflow)."""

    application_name: str
    capacity: int = Field(gt=0)


class PostgresSettings(PollSettings):
    targets: list[PostgresTarget] = Field(default_factory=list)
    top_statements: int = Field(100, ge=1, le=10000)
    top_tables: int = Field(50, ge=1, le=10000)
    top_indexes: int = Field(100, ge=1, le=10000)
    top_applications: int = Field(20, ge=1, le=1000)
    statement_text_info: bool = Field(False, description="export dbpulse_pg_statement_info with query text")
    statement_text_length: int = Field(80, ge=10, le=1000)
    app_pools: list[AppPool] = Field(default_factory=list)
    size_interval: float = Field(300.0, ge=0, description="seconds between reads of table, index and database "
                                 "sizes (they cost a stat() per file) and of every table's and index's statistics "
                                 "(the top-K's are read every poll); 0 reads them every poll")
    maintenance_interval: float = Field(300.0, ge=0, description="seconds between the expensive health reads "
                                        "(autovacuum's thresholds, tables with the oldest frozen XID, bloat "
                                        "estimates); 0 reads them every poll")
    sequence_interval: float = Field(60.0, ge=0, description="seconds between reads of sequence usage (cheap; "
                                     "PostgresSequenceNearExhaustion waits for them); 0 reads them every poll")
    top_maintenance: int = Field(20, ge=1, le=10000, description="objects exported of each maintenance ranking: "
                                 "oldest tables, most used sequences, most bloated tables and indexes")
    expected_standbys: int | None = Field(None, ge=0, description="WAL senders (not base backups) each primary "
                                          "should have; fewer fires PostgresStandbysMissing. Unset: not checked")
    wait_sampling: Literal["auto", "pg_wait_sampling", "pg_stat_activity", "off"] = Field(
        "auto", description="how wait events are measured: auto uses pg_wait_sampling where it is installed and "
        "loaded, else samples pg_stat_activity (collectors/postgres/waits.py)")
    wait_sample_interval: float = Field(1.0, ge=0.1, le=60, description="seconds between pg_stat_activity wait "
                                        "samples (their own cadence, not the poll interval)")

    def expected_standbys_of(self, target: PostgresTarget) -> int | None:
        return target.expected_standbys if target.expected_standbys is not None else self.expected_standbys


_NAMED_URI = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)=(?P<dsn>postgres(?:ql)?://.*)$")


def target_from_flag(value: str) -> dict[str, Any]:
    """``--postgres [NAME=]DSN`` (and DBPULSE_POSTGRES): an optional target name before a URI."""
    match = _NAMED_URI.match(value)
    if match:
        return {"name": match["name"], "dsn": match["dsn"]}
    return {"dsn": value}
