"""How dbpulse talks to PostgreSQL, for the collector and the advisor alike.

Every session is read-only, time-bounded and named (the design notes'
guarantees hold for every connection we make); a target has one name
everywhere (``run``, ``advise``, the UI, the metrics); error messages never
carry a password.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from psycopg.conninfo import conninfo_to_dict

from collectors.base.redact import redact, register_dsn_secrets
from collectors.base.settings import safe_name

APPLICATION_NAME = "dbpulse"
ADVISOR_APPLICATION_NAME = "dbpulse-advisor"
# Every statement dbpulse sends carries the tag of its component, so pg_stat_statements tells dbpulse's own
# statements from the application's (it has no application_name column): the collector's (statistics and
# health reads) and the advisor's (catalog reads, what-if plans, HypoPG calls; its prepared statement is
# named after the tag). The tag is a comment after the statement's first word: PostgreSQL 18 keeps no
# leading comment in pg_stat_statements' text.
COLLECTOR_TAG = "dbpulse_collector"
ADVISOR_TAG = "dbpulse_advisor"
# A tag in a pg_stat_statements text, in the first OWN_TAG_CHARS characters (where every statement dbpulse
# sends has it). One pattern for PostgreSQL's regular expressions and Python's; its group is the component.
OWN_STATEMENT_PATTERN = r"dbpulse_(advisor|collector)(?:[^a-zA-Z0-9_]|$)"
OWN_TAG_CHARS = 100
_FIRST_WORD = re.compile(r"^\s*[A-Za-z]+")

# pg_stat_statements records a statement prepared with SQL (``PREPARE q AS SELECT ...``) under the
# PREPARE's text: show and analyze the statement itself. The advisor's own wrappers ("PREPARE
# dbpulse_advisor AS ...", "EXPLAIN (GENERIC_PLAN) /* dbpulse_advisor */ ...") carry its tag, so the
# reader counts them as dbpulse's own (OWN_STATEMENT_PATTERN) and they never reach the application's list.
_WRAPPER = re.compile(
    r"^\s*(?:PREPARE\s+\w+(?:\s*\([^)]*\))?\s+AS\s+|EXPLAIN\s*(?:\([^)]*\))?\s*/\*\s*"
    + ADVISOR_TAG + r"\s*\*/\s*)",
    re.IGNORECASE,
)


def tagged(sql: str, tag: str = COLLECTOR_TAG) -> str:
    """``sql`` with ``/* tag */`` after its first word (unchanged if it carries a tag already)."""
    if re.search(OWN_STATEMENT_PATTERN, sql[:OWN_TAG_CHARS]):
        return sql
    return _FIRST_WORD.sub(lambda m: f"{m.group(0)} /* {tag} */", sql, count=1)


def own_component(text: str) -> str | None:
    """The dbpulse component (``advisor``, ``collector``) whose tag a statement text carries, else None."""
    found = re.search(OWN_STATEMENT_PATTERN, text[:OWN_TAG_CHARS])
    return found.group(1) if found else None


def unwrap_statement_text(text: str) -> str:
    """The statement inside a ``PREPARE name AS`` or the advisor's ``EXPLAIN`` wrapper."""
    return _WRAPPER.sub("", text, count=1)


def target_name(dsn: str) -> str:
    """The ``target`` label of a DSN: ``host:port/dbname``, never the user or password."""
    try:
        parts = conninfo_to_dict(dsn)
    except Exception:
        return "postgres"
    host = str(parts.get("host") or "localhost").split(",")[0]
    if host.startswith("/"):
        host = "localhost"
    port = str(parts.get("port") or "5432").split(",")[0]
    dbname = str(parts.get("dbname") or parts.get("user") or "postgres")
    return safe_name(f"{host}:{port}/{dbname}")


def error_line(exc: BaseException, dsn: str | None = None) -> str:
    """The first line of a driver error, with any password of ``dsn`` (or registered) masked."""
    if dsn is not None:
        register_dsn_secrets(dsn)
    lines = str(exc).strip().splitlines()
    return redact(lines[0] if lines else type(exc).__name__)


# A password as given (or None: libpq's own sources, PGPASSWORD and the passfile), or where to read it at each
# new connection: a password_file rewritten by a token refresher (RDS IAM, Cloud SQL and Azure Entra tokens
# last minutes) must be read when dbpulse connects, not once at start.
PasswordSource = str | None | Callable[[], str | None]


def current_password(source: PasswordSource) -> str | None:
    """The password to connect with now: ``source`` called if it is a reader."""
    return source() if callable(source) else source


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

