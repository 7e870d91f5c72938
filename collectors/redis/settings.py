"""The ``redis`` section: targets, queues, the key-sampling budget and what a poll reads, used as is by the poller."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import Field, field_validator

from collectors.base.redact import register_url_secrets
from collectors.base.settings import PollSettings, SecretTarget, safe_name
from collectors.redis.prefixes import PrefixRules


def parse_url(url: str) -> dict[str, Any]:
    """redis-py's own URL parser, imported on first use: a dbpulse without Redis targets never loads redis-py
    (6.6 MiB of RSS measured at start)."""
    from redis.asyncio.connection import parse_url as parse

    return dict(parse(url))


def target_name(url: str) -> str:
    """The ``target`` label of a Redis URL: ``host:port/db`` (or ``unix:path/db``), never credentials."""
    try:
        parts = parse_url(url)
    except Exception:
        return "redis"
    db = parts.get("db") or 0
    if "path" in parts:
        return safe_name(f"unix:{parts['path']}/{db}")
    return safe_name(f"{parts.get('host') or 'localhost'}:{parts.get('port') or 6379}/{db}")


class RedisTarget(SecretTarget):
    url: str = Field(description="redis://[[user]:password@]host[:port][/db], rediss://..., unix://path")
    username: str | None = Field(None, description="ACL user; overrides the URL's")
    queues: list[str] = Field(default_factory=list, description="list or stream keys of this target")

    @field_validator("url")
    @classmethod
    def _parseable(cls, value: str) -> str:
        try:
            parse_url(value)
        except Exception:
            # Never echo the URL: it may hold a password.
            raise ValueError("is not a valid redis://, rediss:// or unix:// URL") from None
        return value

    def derived_name(self) -> str:
        return target_name(self.url)

    def password(self) -> str | None:
        """The password from password_env / password_file (else the URL's), registered as a secret."""
        return self.read_password("redis", self.url, register_url_secrets)


class RedisSettings(PollSettings):
    targets: list[RedisTarget] = Field(default_factory=list)
    queues: list[str] = Field(default_factory=list, description="list or stream keys read on every target")
    sampling: bool = Field(True, description="sample keys with SCAN/PTTL for per-prefix TTL discipline")
    sample_budget_ms: float = Field(50.0, gt=0, le=5000, description="wall time per poll for sampling")
    sample_max_keys: int = Field(10_000, ge=1, le=1_000_000)
    scan_count: int = Field(200, ge=1, le=10_000, description="COUNT hint of each SCAN call")
    prefixes: list[str] = Field(default_factory=list, description="glob patterns, first match wins")
    prefix_depth: int = Field(2, ge=0, le=8, description="segments before ':' of automatic prefixes; 0: off")
    prefix_separator: str = Field(":", min_length=1, max_length=4)
    top_prefixes: int = Field(20, ge=1, le=1000)
    memory: bool = Field(True, description="MEMORY USAGE on the sampled keys: estimated bytes per prefix")
    memory_samples: int = Field(5, ge=0, le=1000, description=(
        "MEMORY USAGE SAMPLES: nested values read per aggregate key (Redis's default 5); 0 reads every one, "
        "exact but O(n) per key: a 100k-field hash blocks Redis for tens of milliseconds"))
    largest_keys: int = Field(3, ge=0, le=20, description="largest sampled keys per prefix shown in the UI")
    top_commands: int = Field(20, ge=1, le=500, description="commands exported (by total time); the rest summed")
    top_errors: int = Field(10, ge=1, le=200, description="error types exported (by count); the rest summed")
    slowlog_entries: int = Field(10, ge=0, le=128, description="newest slowlog entries shown in the UI")

    def prefix_rules(self, queues: Collection[str] = ()) -> PrefixRules:
        """How keys are grouped; ``queues`` (a target's queue keys) are exempt from the TTL check."""
        return PrefixRules(tuple(self.prefixes), self.prefix_depth, self.prefix_separator, frozenset(queues))

    def queues_of(self, target: RedisTarget) -> tuple[str, ...]:
        """The section's queues, then the target's own, each once."""
        return tuple(dict.fromkeys([*self.queues, *target.queues]))
