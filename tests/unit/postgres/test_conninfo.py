"""DSN checks without connecting, held against libpq itself: what they reject, libpq rejects with the same
words when it connects; what they accept, libpq tries to connect with (a closed loopback port answers
"Connection refused", so nothing leaves the machine)."""

from __future__ import annotations

import psycopg
import pytest

from collectors.postgres.conninfo import CHOICES, INTEGERS, TLS_BOUNDS, TLS_VERSIONS, dsn_problems
from harness.servers import free_port


def libpq_error(dsn: str) -> str:
    """libpq's (or psycopg's) reason for not connecting to ``dsn``: every DSN here is one that fails."""
    with pytest.raises(psycopg.Error) as info:
        psycopg.connect(dsn, autocommit=True).close()
    return str(info.value)


@pytest.fixture(scope="module")
def closed() -> str:
    """host and port of a loopback port nothing listens on."""
    return f"host=127.0.0.1 port={free_port()}"


BAD = [
    ("postgresql://127.0.0.1:notaport/db", 'invalid integer value "notaport" for connection option "port"'),
    ("host=127.0.0.1 port=99999", 'invalid port number: "99999"'),
    ("host=127.0.0.1 port=0", 'invalid port number: "0"'),
    ("host=127.0.0.1,127.0.0.1 port=5432,5433,5434", "could not match 3 port numbers to 2 hosts"),
    ("host=a hostaddr=127.0.0.1,127.0.0.1 port=5432", "could not match 1 host names with 2 hostaddr values"),
    ("{closed} sslmode=bogus", 'invalid sslmode value: "bogus"'),
    ("postgresql://127.0.0.1:{port}/db?sslmode=bogus", 'invalid sslmode value: "bogus"'),
    ("{closed} gssencmode=x", 'invalid gssencmode value: "x"'),
    ("{closed} channel_binding=x", 'invalid channel_binding value: "x"'),
    ("{closed} target_session_attrs=x", 'invalid target_session_attrs value: "x"'),
    ("{closed} load_balance_hosts=x", 'invalid load_balance_hosts value: "x"'),
    ("{closed} sslnegotiation=x", 'invalid sslnegotiation value: "x"'),
    ("{closed} sslcertmode=x", 'invalid sslcertmode value: "x"'),
    ("{closed} min_protocol_version=3.1", 'invalid min_protocol_version value: "3.1"'),
    ("{closed} ssl_min_protocol_version=TLSv9", 'invalid "ssl_min_protocol_version" value: "TLSv9"'),
    ("{closed} keepalives=x", 'invalid integer value "x" for connection option "keepalives"'),
    ("{closed} keepalives_idle=", 'invalid integer value "" for connection option "keepalives_idle"'),
    ("{closed} tcp_user_timeout=1x", 'invalid integer value "1x" for connection option "tcp_user_timeout"'),
    ("{closed} require_auth=x", 'invalid require_auth value: "x"'),
    ("{closed} require_auth=md5,!password",
     'negative require_auth method "!password" cannot be mixed with non-negative methods'),
    ("{closed} require_auth=!md5,password", 'require_auth method "password" cannot be mixed with negative methods'),
    ("{closed} require_auth=md5,md5", 'require_auth method "md5" is specified more than once'),
    ("{closed} ssl_min_protocol_version=TLSv1.3 ssl_max_protocol_version=TLSv1.2",
     "invalid SSL protocol version range"),
    ("{closed} min_protocol_version=3.2 max_protocol_version=3.0",
     '"min_protocol_version" is greater than "max_protocol_version"'),
]


@pytest.mark.parametrize(("template", "message"), BAD)
def test_rejected_as_libpq_rejects_it(template: str, message: str, closed: str) -> None:
    dsn = template.format(closed=closed, port=closed.rsplit("=", 1)[1])
    assert dsn_problems(dsn) == [message]
    assert message in libpq_error(dsn)


def test_connect_timeout_is_a_whole_number(closed: str) -> None:
    """psycopg reads connect_timeout itself, in its own words; both refuse."""
    assert dsn_problems(f"{closed} connect_timeout=abc") == [
        'invalid integer value "abc" for connection option "connect_timeout"']
    assert "connect_timeout" in libpq_error(f"{closed} connect_timeout=abc")


def good_options() -> list[str]:
    options = [f"{option}={value}" for option, values in CHOICES.items() for value in values]
    options += [f"{bound}={version}" for bound in TLS_BOUNDS for version in TLS_VERSIONS]
    options += [f"{option}=5" for option in INTEGERS]
    options += ["require_auth=scram-sha-256,password", "require_auth=!md5,!password", "require_auth=none"]
    return options


@pytest.mark.parametrize("option", good_options())
def test_accepted_as_libpq_accepts_it(option: str, closed: str) -> None:
    dsn = f"{closed} {option}"
    # Rules across options, and defaults that may come from the environment, stay libpq's: give what they want.
    if option == "sslnegotiation=direct":
        dsn += " sslmode=require"
    if option.startswith("ssl_max_protocol_version"):
        dsn += " ssl_min_protocol_version=TLSv1"  # its default minimum is TLSv1.2
    if option.startswith("max_protocol_version"):
        dsn += " min_protocol_version=3.0"
    assert dsn_problems(dsn) == []
    error = libpq_error(dsn)
    # It got as far as connecting; with gssencmode=require, as far as looking for Kerberos credentials.
    assert "Connection refused" in error or "GSSAPI encryption required but no credential cache" in error, error


def test_an_empty_port_is_the_default_one() -> None:
    assert dsn_problems("host=127.0.0.1 port=") == []
    assert dsn_problems("host=a,b port=,6432") == []


def test_syntax_errors_never_quote_a_value() -> None:
    """libpq's parse errors may quote a value, e.g. a password: only the keyword-naming ones are passed on."""
    assert dsn_problems("host=h password=s3 cr3t") == ["is not a valid PostgreSQL connection string or URI"]
    assert dsn_problems("shop=postgresql://u@h/db") == ['invalid connection option "shop"']
    assert dsn_problems("postgresql://h/db?bogus=1") == ['invalid URI query parameter: "bogus"']
