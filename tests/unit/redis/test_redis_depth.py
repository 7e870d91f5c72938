"""Commandstats, latencystats, errorstats, replicas, slowlog and latency replies as each version writes them;
top-K folding; feature states and their one log line. The real servers are in tests/integration/redis/."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.base.samples import OTHER
from collectors.redis.commands import latency_quantiles, quantile, top_commands, top_errors
from collectors.redis.diagnostics import command_name, config_value, parse_latency_latest, parse_slowlog
from collectors.redis.features import RECHECK_SECONDS, Features
from collectors.redis.info import CommandStat, ReplicaLine, parse_info
from collectors.redis.sampling import KeySample, PrefixStats, estimate

INFO_60 = """# Server\r
redis_version:6.0.9\r
redis_mode:standalone\r
# Replication\r
role:master\r
connected_slaves:1\r
slave0:ip=127.0.0.1,port=44145,state=online,offset=70,lag=0\r
slave_read_only:1\r
master_repl_offset:1070\r
# Commandstats\r
cmdstat_get:calls=2,usec=2,usec_per_call=1.00\r
cmdstat_client:calls=4,usec=9,usec_per_call=2.25\r
# Keyspace\r
db0:keys=3,expires=1,avg_ttl=2500\r
"""

INFO_VALKEY = """# Server\r
redis_version:7.2.4\r
server_name:valkey\r
valkey_version:9.1.2\r
server_mode:standalone\r
# Replication\r
role:master\r
slave0:ip=::1,port=6380,state=wait_bgsave,offset=0,lag=1,type=replica\r
# Commandstats\r
cmdstat_get:calls=2,usec=3,usec_per_call=1.50,rejected_calls=1,failed_calls=0\r
cmdstat_client|list:calls=1,usec=20,usec_per_call=20.00,rejected_calls=0,failed_calls=0\r
cmdstat_lpush:calls=1,usec=5,usec_per_call=5.00,rejected_calls=0,failed_calls=1\r
# Errorstats\r
errorstat_ERR:count=8\r
errorstat_WRONGTYPE:count=1\r
# Latencystats\r
latency_percentiles_usec_get:p50=1.003,p99=2.007,p99.9=2.007\r
latency_percentiles_usec_client|list:p50=20.095,p99=20.095,p99.9=20.095\r
latency_percentiles_usec_lpush:\r
# Cluster Info\r
# Keyspace\r
db0:keys=1,expires=0,avg_ttl=0,keys_with_volatile_items=0\r
"""


def test_redis_60_commandstats_have_no_error_counts_and_no_errorstats_section() -> None:
    info = parse_info(INFO_60)
    assert info.commands["get"] == CommandStat("get", 2, 2, None, None)
    assert info.commands["client"].calls == 4
    assert "errorstats" not in info.sections and "latencystats" not in info.sections
    assert info.errors == {} and info.latency == {}
    assert info.replicas == (ReplicaLine("127.0.0.1:44145", "online", 70, 0),)
    assert "slave_read_only" in info.fields and "slave0" not in info.fields  # a field, not a replica
    assert (info.server, info.version, info.mode) == ("redis", "6.0.9", "standalone")


def test_valkey_reports_its_own_version_mode_and_replica_type() -> None:
    info = parse_info(INFO_VALKEY.encode())
    assert (info.server, info.version, info.mode) == ("valkey", "9.1.2", "standalone")
    assert info.commands["get"] == CommandStat("get", 2, 3, 1, 0)
    assert info.commands["client|list"].usec == 20
    assert info.errors == {"ERR": 8, "WRONGTYPE": 1}
    assert info.latency["get"] == {"p50": 1.003, "p99": 2.007, "p99.9": 2.007}
    assert info.latency["lpush"] == {}  # percentiles configured to none: the key without a value
    assert info.replicas == (ReplicaLine("::1:6380", "wait_bgsave", 0, 1),)
    assert {"errorstats", "latencystats", "cluster info"} <= info.sections
    assert info.keyspace[0].keys == 1


@pytest.mark.parametrize(("percentile", "label"), [
    ("p50", "0.5"), ("p99", "0.99"), ("p99.9", "0.999"), ("p100", "1"), ("p0", "0"),
    ("p101", None), ("x50", None), ("p", None), ("pNaN", None), ("p1e400", None),
])
def test_quantile_labels(percentile: str, label: str | None) -> None:
    assert quantile(percentile) == label


def test_top_commands_by_time_fold_the_rest_with_exact_totals() -> None:
    commands = {f"c{i}": CommandStat(f"c{i}", calls=i, usec=10 * i, rejected_calls=1, failed_calls=i % 2)
                for i in range(1, 8)}
    top = top_commands(commands, 3)
    assert [c.command for c in top] == ["c7", "c6", "c5", OTHER]
    assert top[-1] == CommandStat(OTHER, 1 + 2 + 3 + 4, 10 * (1 + 2 + 3 + 4), 4, 2)
    assert sum(c.calls for c in top) == sum(c.calls for c in commands.values())
    # 6.0 has no rejected/failed counts: the aggregate must not invent zeros for them.
    old = {f"c{i}": CommandStat(f"c{i}", calls=i, usec=i) for i in range(1, 5)}
    assert top_commands(old, 2)[-1] == CommandStat(OTHER, 3, 3, None, None)
    assert top_commands(old, 10) == sorted(old.values(), key=lambda c: -c.usec)  # no __other__ when all fit


def test_latency_quantiles_only_for_exported_commands() -> None:
    info = parse_info(INFO_VALKEY)
    top = top_commands(info.commands, 1)  # client|list (20 usec), then __other__
    assert latency_quantiles(info.latency, top) == {"client|list": {"0.5": 20.095e-6, "0.99": 20.095e-6,
                                                                    "0.999": 20.095e-6}}


def test_top_errors_fold_the_rest() -> None:
    assert top_errors({"ERR": 8, "WRONGTYPE": 1, "NOPERM": 3}, 2) == [("ERR", 8), ("NOPERM", 3), (OTHER, 1)]
    assert top_errors({"ERR": 8}, 2) == [("ERR", 8)]


@pytest.mark.parametrize(("argv", "name"), [
    ([b"SET", b"user:42:email", b"alice@example.com"], "set"),
    ([b"CONFIG", b"SET", b"requirepass", b"hunter2"], "config|set"),
    ([b"DEBUG", b"SLEEP", b"0.2"], "debug|sleep"),
    ([b"OBJECT", b"ENCODING", b"secret-key"], "object|encoding"),
    ([b"CLIENT", b"user data here"], "client"),  # not a subcommand name: left out
    ([b"GET"], "get"),
    ([b"<script>", b"x"], "?"),
    ([], "?"),
])
def test_slowlog_keeps_the_command_name_never_an_argument(argv: list[bytes], name: str) -> None:
    assert command_name(argv) == name


def test_slowlog_and_latency_replies() -> None:
    slow = parse_slowlog([
        [3, 1796183268, 200142, [b"SET", b"user:42:email", b"alice@example.com"], b"127.0.0.1:59566", b"worker-1"],
        [2, 1796183267, 15000, [b"KEYS", b"*"]],  # 6.x-era entry without address and name
        ["junk"], [1, "not-a-time", 1, []],
    ])
    assert [(e.id, e.command, e.duration_seconds, e.client_name) for e in slow] == [
        (3, "set", 0.200142, "worker-1"), (2, "keys", 0.015, "")]
    assert "alice" not in repr(slow) and "user:42" not in repr(slow)
    events = parse_latency_latest([[b"command", 1796183268, 200, 250],  # Redis
                                   [b"fork", 1796183269, 3, 5, 8, 2],  # Valkey adds sum and count
                                   [b"bad"], [b"x", b"y", 1, 2]])
    assert [(e.event, e.timestamp, e.latest_seconds, e.max_seconds) for e in events] == [
        ("command", 1796183268, 0.2, 0.25), ("fork", 1796183269, 0.003, 0.005)]
    assert parse_slowlog(None) == [] and parse_latency_latest(b"x") == []


def test_config_get_in_both_protocols() -> None:
    assert config_value([b"slowlog-max-len", b"128"]) == "128"
    assert config_value({b"slowlog-max-len": b"128"}) == "128"
    assert config_value([]) is None


@given(st.lists(st.one_of(st.binary(max_size=20), st.integers(), st.none()), max_size=8))
def test_reply_parsers_never_raise(row: list[object]) -> None:
    parse_slowlog([row])
    parse_latency_latest([row])
    command_name([x for x in row if isinstance(x, bytes)])


def test_a_feature_is_logged_once_when_it_changes_and_a_refused_one_is_retried_later(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    f = Features("cache", clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="dbpulse.redis")
    for _ in range(3):  # the same finding every poll: one line
        f.set("latencystats", False, "needs Redis 7.0")
    assert [r.message for r in caplog.records] == ["cache: latencystats disabled: needs Redis 7.0"]
    assert f.usable("latencystats")  # read from INFO at no cost: never held back

    caplog.clear()
    assert f.usable("slowlog")  # not known yet: try
    f.failed("slowlog", "SLOWLOG", RuntimeError("NOPERM"), "grant +slowlog|get")
    assert caplog.records[0].levelno == logging.WARNING and "grant +slowlog|get" in caplog.records[0].message
    assert not f.usable("slowlog")  # each try costs an error reply on the server: not every poll
    now[0] += RECHECK_SECONDS
    assert f.usable("slowlog")
    f.failed("slowlog", "SLOWLOG", RuntimeError("NOPERM"), "grant +slowlog|get")
    assert len(caplog.records) == 1  # still refused, same reason: no new line
    assert not f.usable("slowlog")
    f.restarted()
    assert f.usable("slowlog")  # a restarted server may have a new ACL
    f.set("slowlog", True)
    assert caplog.records[-1].message == "cache: slowlog is available again"
    assert {name: s.enabled for name, s in f.snapshot().items()} == {"latencystats": False, "slowlog": True}


def test_memory_per_prefix_is_the_mean_size_times_the_estimated_keys() -> None:
    sample = KeySample(sampled=100, complete=False, prefixes={
        "small:*": PrefixStats(sampled=80, without_ttl=80, memory_keys=80, memory_bytes=80 * 60.0,
                               largest=[(61.0, "small:1"), (70.0, "small:2")]),
        "big:*": PrefixStats(sampled=20, with_ttl=20, ttl_seconds_sum=200.0, memory_keys=19, memory_bytes=19 * 1100.0,
                             largest=[(1200.0, "big:9")]),
    })
    out = estimate(sample, dbsize=10_000, k=5, keep=3)
    assert out["small:*"].keys == 8000 and out["small:*"].memory_bytes == pytest.approx(8000 * 60)
    assert out["big:*"].keys == 2000 and out["big:*"].memory_bytes == pytest.approx(2000 * 1100)
    assert out["big:*"].mean_ttl_seconds == 10
    assert out["small:*"].largest == (("small:2", 70.0), ("small:1", 61.0))  # biggest first
    folded = estimate(sample, dbsize=10_000, k=1, keep=2)
    assert set(folded) == {"small:*", OTHER} and folded[OTHER].largest == (("big:9", 1200.0),)
    assert estimate(KeySample(), 10, 5, 3) == {}


def test_a_prefix_without_memory_readings_has_no_estimate() -> None:
    sample = KeySample(sampled=10, complete=True, prefixes={"a:*": PrefixStats(sampled=10)})
    assert estimate(sample, 10, 5, 3)["a:*"].memory_bytes is None
