"""A rotated password reaches dbpulse without a restart, on a real server: managed clouds' IAM / Entra ID
tokens last minutes, and a refresher rewrites a file with the new one.

- ``password_file``: read again at each new connection, by the statistics poller and the advisor, both made
  as ``dbpulse run`` makes them (``pollers``). Rotating the role's password without the file fails the next
  connection: the file is what is used, not a password remembered from the start.
- libpq's ``passfile`` (in the DSN, or PGPASSFILE): libpq reads it at each connection itself.

A session keeps working after its password changed (PostgreSQL checks passwords only when one connects): the
new one is needed only when dbpulse reconnects, which is forced here by ending its sessions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from collectors.postgres.poller import PostgresPoller, pollers
from collectors.postgres.settings import PostgresSettings
from harness.servers import LocalPostgres
from monitor.advisor.poller import AdvisorPoller
from monitor.advisor.poller import pollers as advisor_pollers
from monitor.advisor.settings import AdvisorSettings

ROLE = "dbpulse_rotating"


@pytest.fixture
def role(pg_server: LocalPostgres) -> Iterator[str]:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD 'token-1'".encode())
        conn.execute(f"GRANT pg_monitor TO {ROLE}".encode())
    yield ROLE
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        end_sessions(conn)
        conn.execute(f"DROP ROLE {ROLE}".encode())


def end_sessions(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = %s",
                       (ROLE,)).fetchone()
    return int(row[0]) if row else 0


def rotate(pg_server: LocalPostgres, password: str) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"ALTER ROLE {ROLE} PASSWORD '{password}'".encode())


def reconnect(pg_server: LocalPostgres) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        assert end_sessions(conn) >= 1  # dbpulse's kept session was there, and is gone


async def poll_after_reconnect(poller: PostgresPoller) -> Any:
    """The poll after dbpulse's session was ended: the first finds it broken (and drops it), the next connects."""
    try:
        return await poller.poll()
    except psycopg.OperationalError:
        return await poller.poll()


def settings_for(dsn: str, **target: Any) -> PostgresSettings:
    return PostgresSettings.model_validate({"interval": 5, "timeout": 4, "targets": [
        {"name": "rotating", "dsn": dsn, **target}]})


def test_a_rewritten_password_file_is_read_at_the_next_connection(pg_server: LocalPostgres, role: str,
                                                                  tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("token-1\n")
    settings = settings_for(pg_server.dsn(user=role), password_file=str(token))
    (poller,) = pollers(settings)
    assert isinstance(poller, PostgresPoller)
    (advisor,) = advisor_pollers(AdvisorSettings(interval=60), {"postgres": settings})
    assert isinstance(advisor, AdvisorPoller)

    async def scenario() -> None:
        try:
            assert (await poller.poll()).server_version
            rotate(pg_server, "token-2")
            token.write_text("token-2\n")
            assert (await poller.poll()).server_version  # the open session goes on
            reconnect(pg_server)
            assert (await poll_after_reconnect(poller)).server_version  # connected with token-2
            assert (await advisor.poll()).report.target == "rotating"  # the advisor's own connection too
            rotate(pg_server, "token-3")  # the file still holds token-2
            reconnect(pg_server)
            with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
                await poll_after_reconnect(poller)
            token.write_text("token-3\n")
            assert (await poller.poll()).server_version
        finally:
            await poller.close()

    asyncio.run(scenario())


def test_libpq_reads_its_passfile_at_each_connection(pg_server: LocalPostgres, role: str, tmp_path: Path) -> None:
    passfile = tmp_path / "pgpass"

    def write(password: str) -> None:
        passfile.write_text(f"127.0.0.1:{pg_server.port}:*:{role}:{password}\n")
        passfile.chmod(0o600)  # libpq ignores a passfile others may read

    write("token-1")
    (poller,) = pollers(settings_for(f"{pg_server.dsn(user=role)}?passfile={passfile}"))
    assert isinstance(poller, PostgresPoller)

    async def scenario() -> None:
        try:
            assert (await poller.poll()).server_version
            rotate(pg_server, "token-2")
            write("token-2")
            reconnect(pg_server)
            assert (await poll_after_reconnect(poller)).server_version
        finally:
            await poller.close()

    asyncio.run(scenario())
