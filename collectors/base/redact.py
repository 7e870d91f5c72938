"""Keep secrets out of logs, metrics, reports and error messages."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

_URI_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@", re.I)
_KV_PASSWORD = re.compile(r"(?P<key>password\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.I)

_known_secrets: set[str] = set()


def register_secret(secret: str | None) -> None:
    """Remember a secret (a password read from a file or env) so ``redact`` hides it anywhere."""
    if secret and len(secret) >= 3:
        _known_secrets.add(secret)


def register_url_secrets(url: str) -> None:
    """The password of a URL as written, percent-decoded, and as a lenient parser reads it
    (everything between the first ':' after the scheme and the last '@' of the authority)."""
    parts = urlsplit(url)
    register_secret(parts.password)
    if parts.password:
        register_secret(unquote(parts.password))
    userinfo, _, _ = parts.netloc.rpartition("@")
    if ":" in userinfo:
        raw = userinfo.split(":", 1)[1]
        register_secret(raw)
        register_secret(unquote(raw))


def register_dsn_secrets(dsn: str) -> None:
    """The password of a libpq URI or key=value string, as libpq reads it (percent-decoded, unquoted)."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        password = conninfo_to_dict(dsn).get("password")
    except Exception:  # an invalid DSN is reported by the config check, never echoed
        return
    register_secret(str(password) if password else None)


def redact(text: str) -> str:
    """Mask every registered secret, then passwords in URIs and ``password=...`` pairs."""
    for secret in sorted(_known_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URI_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _KV_PASSWORD.sub(lambda m: f"{m['key']}***", text)
