"""How every dbpulse session to PostgreSQL is opened: read-only, time-bounded, named.

Shared by the collector and the advisor so the guarantees in the design notes
(read-only, ``statement_timeout`` shorter than the poll interval, a short
``lock_timeout``, ``application_name``) hold for every connection we make.
"""

from __future__ import annotations

import re
from typing import Any

APPLICATION_NAME = "dbpulse"

# pg_stat_statements keeps the text it saw first for a queryid. After a reset,
# that can be the advisor's what-if wrapper around an application statement
# ("PREPARE dbpulse_advisor_7 AS SELECT ...", "EXPLAIN (GENERIC_PLAN) ... SELECT ...")
# while the counters are the application's: show and analyze the statement itself.
_WRAPPER = re.compile(
    r"^\s*(?:PREPARE\s+\w+(?:\s*\([^)]*\))?\s+AS\s+|EXPLAIN\s*(?:\([^)]*\))?\s*/\*\s*dbpulse_advisor\s*\*/\s*)",
    re.IGNORECASE,
)


def unwrap_statement_text(text: str) -> str:
    """The statement inside a ``PREPARE name AS`` or the advisor's ``EXPLAIN`` wrapper."""
    return _WRAPPER.sub("", text, count=1)


def session_kwargs(
    timeout_seconds: float,
    application_name: str = APPLICATION_NAME,
    password: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``psycopg.connect`` / ``AsyncConnection.connect``.

    ``statement_timeout`` is the poll timeout; ``lock_timeout`` is at most one
    second so a statistics query never queues behind the application's locks.
    """
    statement_ms = max(100, int(timeout_seconds * 1000))
    lock_ms = min(1000, statement_ms)
    options = (
        f"-c default_transaction_read_only=on -c statement_timeout={statement_ms} "
        f"-c lock_timeout={lock_ms} -c idle_in_transaction_session_timeout={statement_ms * 2}"
    )
    kwargs: dict[str, Any] = {
        "application_name": application_name,
        "options": options,
        "connect_timeout": max(1, int(timeout_seconds)),
        "autocommit": True,
    }
    if password is not None:
        kwargs["password"] = password
    return kwargs
