"""Keep secrets out of logs, metrics, reports and error messages."""

from __future__ import annotations

import re

_URI_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@", re.I)
_KV_PASSWORD = re.compile(r"(?P<key>password\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.I)

_known_secrets: set[str] = set()


def register_secret(secret: str | None) -> None:
    """Remember a secret (a password read from a file or env) so ``redact`` hides it anywhere."""
    if secret and len(secret) >= 3:
        _known_secrets.add(secret)


def redact(text: str) -> str:
    """Mask passwords in URIs, ``password=...`` pairs and every registered secret."""
    text = _URI_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _KV_PASSWORD.sub(lambda m: f"{m['key']}***", text)
    for secret in sorted(_known_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
