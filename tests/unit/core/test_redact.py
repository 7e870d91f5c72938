from __future__ import annotations

import pytest

from collectors.base.redact import redact, register_dsn_secrets, register_secret, register_url_secrets


@pytest.mark.parametrize("text", [
    "postgresql://app:Canary-7731@db:5432/x failed",
    "redis://:Canary-7731@cache:6379/0",
    "rediss://user:Canary-7731@cache/0",
    "host=db password=Canary-7731 dbname=x",
    "host=db password='Canary-7731' dbname=x",
])
def test_password_forms_are_masked(text: str) -> None:
    assert "Canary-7731" not in redact(text)


def test_registered_secrets_are_masked_anywhere() -> None:
    register_secret("from-a-file-9931")
    assert redact("auth failed with from-a-file-9931 for user x") == "auth failed with *** for user x"


def test_text_without_secrets_is_unchanged() -> None:
    assert redact("connection to 127.0.0.1:5432 refused") == "connection to 127.0.0.1:5432 refused"


@pytest.mark.parametrize("url", [
    "redis://:s3cr@tpass-771@cache:6379/0",  # a raw '@' in the password
    "redis://user:p%40ssw0rd-772@cache/0",  # percent-encoded; the client uses p@ssw0rd-772
    "http://admin:h%3Ar%3Ad-773@app:8000",
])
def test_url_passwords_are_masked_in_every_spelling(url: str) -> None:
    register_url_secrets(url)
    from urllib.parse import unquote

    password = url.split("://", 1)[1].rpartition("@")[0].split(":", 1)[1]
    for text in (url, f"error: auth failed ({unquote(password)})", unquote(url)):
        out = redact(text)
        assert password not in out and unquote(password) not in out, out


@pytest.mark.parametrize(("dsn", "password"), [
    ("postgresql://app:p%40ss-w0rd-881@db/x", "p@ss-w0rd-881"),
    ("host=db user=app password='it\\'s-882 quoted' dbname=x", "it's-882 quoted"),
])
def test_dsn_passwords_are_masked_as_libpq_reads_them(dsn: str, password: str) -> None:
    register_dsn_secrets(dsn)
    assert password not in redact(f"authentication failed, tried {password!s}")
