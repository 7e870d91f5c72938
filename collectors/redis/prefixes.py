"""Grouping keys into a bounded set of prefixes.

A key is labelled by the first configured glob pattern it matches; otherwise
(when ``depth`` > 0) by its first ``depth`` segments before ``:``, with id-like
segments (numbers, hex, UUIDs) replaced by ``*`` so that ``user:42:cart`` and
``user:43:cart`` share ``user:*:*``. Keys without a separator lose a trailing id
(``celery-task-meta-<uuid>`` -> ``celery-task-meta-*``). Everything else, and
every prefix beyond the top-K, is folded into ``__other__`` by the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from collectors.base.samples import OTHER

_ID = re.compile(r"^(?:\d+|[0-9a-fA-F]{8,}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})$")
_TRAILING_ID = re.compile(r"(?:[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}|[0-9a-fA-F]{8,}|\d+)$")
MAX_PREFIX_LENGTH = 64


@dataclass(frozen=True)
class PrefixRules:
    patterns: tuple[str, ...] = ()
    depth: int = 2
    separator: str = ":"
    queues: frozenset[str] = frozenset()  # configured queue keys: exempt from the TTL check

    def prefix_of(self, key: str) -> str:
        for pattern in self.patterns:
            if fnmatchcase(key, pattern):
                return pattern
        if self.depth <= 0:
            return OTHER
        return auto_prefix(key, self.depth, self.separator)


def auto_prefix(key: str, depth: int, separator: str = ":") -> str:
    parts = key.split(separator)
    if len(parts) == 1:
        match = _TRAILING_ID.search(key)
        prefix = key[: match.start()] + "*" if match and match.start() > 0 else key
    else:
        head = ["*" if _ID.match(p) else p for p in parts[:-1][:depth]]
        prefix = separator.join([*head, "*"])
    return prefix[:MAX_PREFIX_LENGTH]
