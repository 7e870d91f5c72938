"""A throwaway PgBouncer per test (fresh statistics), in front of the session's PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from collectors.pgbouncer.poller import PgBouncerPoller
from collectors.pgbouncer.settings import PgBouncerSettings, PgBouncerTarget
from harness.pgbouncer import LocalPgBouncer
from harness.servers import LocalPostgres


@pytest.fixture
def pgbouncer(pg_server: LocalPostgres) -> Iterator[LocalPgBouncer]:
    """PgBouncer 1.18 (Debian's) in transaction mode, pool_size 2."""
    with LocalPgBouncer(pg_server) as server:
        yield server


def bouncer_poller(dsn: str, name: str = "bouncer", interval: float = 5, timeout: float = 2.5,
                   password: str | None = None, **settings: Any) -> PgBouncerPoller:
    return PgBouncerPoller(PgBouncerTarget(name=name, dsn=dsn),
                           PgBouncerSettings(interval=interval, timeout=timeout, **settings), password)
