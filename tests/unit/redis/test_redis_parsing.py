"""INFO parsing and prefix grouping: table-driven, then fuzzed (nothing escapes as an exception)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.base.samples import OTHER
from collectors.redis.info import DbKeys, parse_info
from collectors.redis.prefixes import MAX_PREFIX_LENGTH, PrefixRules, auto_prefix
from collectors.redis.sampling import PrefixStats, top_prefixes

INFO = """# Server\r
redis_version:7.0.15\r
run_id:abc\r
# Memory\r
used_memory:1316568\r
mem_fragmentation_ratio:5.61\r
# Stats\r
keyspace_hits:12\r
keyspace_misses:nan\r
# Errorstats\r
errorstat_ERR:count=2\r
# Keyspace\r
db0:keys=3,expires=1,avg_ttl=2500\r
db12:keys=7,expires=0,avg_ttl=0,subexpiry=0\r
db3:garbage\r
"""


def test_info_fields_and_keyspace() -> None:
    info = parse_info(INFO.encode())
    assert info.fields["redis_version"] == "7.0.15"
    assert info.number("used_memory") == 1316568
    assert info.number("mem_fragmentation_ratio") == 5.61
    assert info.number("keyspace_hits") == 12
    assert info.number("keyspace_misses") is None  # not finite
    assert info.number("absent") is None
    assert info.keyspace == {0: DbKeys(3, 1, 2.5), 12: DbKeys(7, 0, None)}


@given(st.text() | st.binary().map(lambda b: b))
def test_info_parsing_never_raises(text: str | bytes) -> None:
    info = parse_info(text)
    for name in info.fields:
        info.number(name)


@given(st.dictionaries(st.from_regex(r"db[0-9]{1,12}", fullmatch=True), st.text(max_size=60)))
def test_keyspace_lines_never_raise(entries: dict[str, str]) -> None:
    parse_info("\n".join(f"{k}:{v}" for k, v in entries.items()))


@pytest.mark.parametrize(("key", "depth", "expected"), [
    ("cache:user:42", 2, "cache:user:*"),
    ("cache:user:42", 1, "cache:*"),
    ("user:42:cart", 2, "user:*:*"),
    ("session:5f3a9c2e11", 2, "session:*"),
    ("celery-task-meta-0b1e8f7c-2d3a-4c5b-9e8f-0a1b2c3d4e5f", 2, "celery-task-meta-*"),
    ("celery", 2, "celery"),
    ("_kombu.binding.celery", 2, "_kombu.binding.celery"),
    ("user123", 2, "user*"),
    ("12345", 2, "12345"),
    ("a:b:c:d", 3, "a:b:c:*"),
])
def test_auto_prefix(key: str, depth: int, expected: str) -> None:
    assert auto_prefix(key, depth) == expected


def test_configured_patterns_win_and_depth_zero_folds_the_rest() -> None:
    rules = PrefixRules(patterns=("cache:*:v2:*", "session:*"), depth=0)
    assert rules.prefix_of("cache:user:v2:42") == "cache:*:v2:*"
    assert rules.prefix_of("session:1") == "session:*"
    assert rules.prefix_of("other:1") == OTHER


@given(st.text(max_size=300), st.integers(min_value=0, max_value=8))
def test_auto_prefix_is_bounded_and_never_raises(key: str, depth: int) -> None:
    assert len(auto_prefix(key, depth)) <= MAX_PREFIX_LENGTH


def test_top_prefixes_folds_the_rest_into_other() -> None:
    stats = {f"p{i}": PrefixStats(sampled=i, without_ttl=i, with_ttl=0) for i in range(1, 6)}
    stats[OTHER] = PrefixStats(sampled=100, with_ttl=100, ttl_seconds_sum=1000.0)
    top = top_prefixes(stats, 2)
    assert list(top) == ["p5", "p4", OTHER]
    other = top[OTHER]
    assert other.sampled == 100 + 1 + 2 + 3
    assert other.without_ttl_ratio == pytest.approx(6 / 106)
    assert other.mean_ttl_seconds == 10.0
