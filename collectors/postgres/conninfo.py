"""Is a DSN one libpq will connect with? Checked without connecting.

libpq's own parser (``conninfo_to_dict``: ``PQconninfoParse``) checks the syntax and
the keywords, but a port of ``notaport`` or ``99999`` and an ``sslmode`` of ``bogus``
pass it: libpq rejects those values only when it connects. The checks below are the
ones libpq makes then, with its wording, so that ``check-config`` fails where ``run``
would (``tests/unit/postgres/test_conninfo.py`` holds them against libpq itself). Rules that
combine options (``sslnegotiation=direct`` wants a strict ``sslmode``, which may come from
``PGSSLMODE``) stay libpq's, at connect time.
"""

from __future__ import annotations

import re

from psycopg.conninfo import conninfo_to_dict

# Options whose value libpq checks against a fixed set when it connects (fe-connect.c, connectOptions2).
CHOICES: dict[str, tuple[str, ...]] = {
    "sslmode": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    "gssencmode": ("disable", "prefer", "require"),
    "channel_binding": ("disable", "prefer", "require"),
    "target_session_attrs": ("any", "read-write", "read-only", "primary", "standby", "prefer-standby"),
    "load_balance_hosts": ("disable", "random"),
    "sslnegotiation": ("postgres", "direct"),
    "sslcertmode": ("disable", "allow", "require"),
    "min_protocol_version": ("3.0", "3.2", "latest"),
    "max_protocol_version": ("3.0", "3.2", "latest"),
}
AUTH_METHODS = ("password", "md5", "gss", "sspi", "scram-sha-256", "oauth", "none")
# libpq quotes these names in its message, and an empty value means "no bound".
TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
TLS_BOUNDS = ("ssl_min_protocol_version", "ssl_max_protocol_version")
# Whole numbers, parsed when a connection is made (parse_int_param).
INTEGERS = ("connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
            "tcp_user_timeout")

_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")
# libpq parse errors that name only a keyword, never a value (a value may be a password).
_SAFE_PARSE_ERROR = re.compile(r'^(invalid connection option "[^"]*"|invalid URI query parameter: "[^"]*")$')


def _parse_error(exc: Exception) -> str:
    text = str(exc).strip()
    if _SAFE_PARSE_ERROR.match(text):
        return text
    return "is not a valid PostgreSQL connection string or URI"  # libpq's text may quote the password


def _port_problems(ports: str) -> list[str]:
    problems = []
    for port in ports.split(","):
        if not port:
            continue  # the default port
        if not _INTEGER.match(port):
            problems.append(f'invalid integer value "{port}" for connection option "port"')
        elif not 1 <= int(port) <= 65535:
            problems.append(f'invalid port number: "{port.strip()}"')
    return problems


def _range_problems(parts: dict[str, str]) -> list[str]:
    """A lower bound above the upper one, when the DSN gives both (a default may come from the environment)."""
    problems = []
    low, high = (parts.get(option) for option in TLS_BOUNDS)
    if low in TLS_VERSIONS and high in TLS_VERSIONS and TLS_VERSIONS.index(low) > TLS_VERSIONS.index(high):
        problems.append("invalid SSL protocol version range")
    versions = CHOICES["min_protocol_version"]
    low, high = parts.get("min_protocol_version"), parts.get("max_protocol_version")
    if low in versions and high in versions and versions.index(low) > versions.index(high):
        problems.append('"min_protocol_version" is greater than "max_protocol_version"')
    return problems


def _require_auth_problems(value: str) -> list[str]:
    """libpq's reading of ``require_auth``: known methods, all negated (``!md5``) or none, each once."""
    negated = value.startswith("!")
    seen: set[str] = set()
    for method in value.split(",") if value else []:
        if method.startswith("!") != negated:
            return [f'negative require_auth method "{method}" cannot be mixed with non-negative methods'
                    if not negated else f'require_auth method "{method}" cannot be mixed with negative methods']
        if method.removeprefix("!") not in AUTH_METHODS:
            return [f'invalid require_auth value: "{method.removeprefix("!")}"']
        if method in seen:
            return [f'require_auth method "{method}" is specified more than once']
        seen.add(method)
    return []


def _count_problems(parts: dict[str, str]) -> list[str]:
    hosts = parts.get("host") or parts.get("hostaddr") or ""
    count = hosts.count(",") + 1
    problems = []
    if parts.get("host") and parts.get("hostaddr") and parts["hostaddr"].count(",") + 1 != count:
        problems.append(f"could not match {count} host names with {parts['hostaddr'].count(',') + 1} hostaddr values")
    ports = parts.get("port") or ""
    if ports.count(",") and ports.count(",") + 1 != count:
        problems.append(f"could not match {ports.count(',') + 1} port numbers to {count} hosts")
    return problems


def dsn_problems(dsn: str) -> list[str]:
    """Why libpq would refuse ``dsn``, in libpq's words; empty when it would try to connect.

    The messages quote keywords and the values of the options checked here, never a password.
    """
    try:
        parts = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    except Exception as exc:  # psycopg.ProgrammingError: libpq's parse error
        return [_parse_error(exc)]
    problems = _port_problems(parts.get("port", "")) + _count_problems(parts)
    problems += _require_auth_problems(parts.get("require_auth", ""))
    for option, choices in CHOICES.items():
        if option in parts and parts[option] not in choices:
            problems.append(f'invalid {option} value: "{parts[option]}"')
    for option in TLS_BOUNDS:
        if parts.get(option) and parts[option] not in TLS_VERSIONS:
            problems.append(f'invalid "{option}" value: "{parts[option]}"')
    problems += _range_problems(parts)
    for option in INTEGERS:
        if option in parts and not _INTEGER.match(parts[option]):
            problems.append(f'invalid integer value "{parts[option]}" for connection option "{option}"')
    return problems
