"""The Redis section of the web UI, served by a real ``dbpulse run`` watching real servers: commands with
their latency, the slowlog with command names only (never an argument), replication from both sides,
memory and the largest keys per prefix (escaped), persistence, and what an old version cannot show."""

from __future__ import annotations

import re
import time

import redis

from harness.servers import LocalRedis
from tests.integration.redis.plant import every_redis_metric
from tests.support import DbpulseProcess

SECRET = "secret-argument-4711"
MARKUP_KEY = "big:<img src=x onerror=alert(1)>"


def _page(svc: DbpulseProcess, *needles: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    body = ""
    while time.monotonic() < deadline:
        status, raw = svc.get("/")
        body = raw.decode()
        if status == 200 and all(n in body for n in needles):
            return body
        time.sleep(0.3)
    missing = [n for n in needles if n not in body]
    raise AssertionError(f"{missing} not on the page within {timeout} s:\n{body[:4000]}\n{svc.log}")


def test_redis_section_shows_depth_and_never_an_argument() -> None:
    with LocalRedis(server="redis-7.0") as primary, LocalRedis(server="redis-6.0") as old, \
            every_redis_metric(primary) as replica:
        app = redis.Redis.from_url(primary.url())
        app.config_set("slowlog-log-slower-than", "0")  # every command into the slowlog, with its arguments
        app.set("session:1", SECRET)
        app.set(MARKUP_KEY, "x" * 5000)
        app.set("small:1", "x")
        app.config_set("slowlog-log-slower-than", "10000")
        app.close()
        with DbpulseProcess("--redis", f"cache={primary.url()}", "--redis", f"copy={replica.url()}",
                            "--redis", f"old={old.url()}", "--interval", "1") as svc:
            page = _page(svc, "Commands by total time", "replica of", "config|set", "latencystats</b>")
    assert SECRET not in page
    cache = page[page.index('id="redis-cache"'):page.index('id="redis-copy"')]
    assert "Slowlog" in cache and '<span class="mono">set</span>' in cache  # the SET, by name only
    assert re.search(r"<th class=\"num\">p99</th>", cache)  # 7.0: latency percentiles per command
    assert f"127.0.0.1:{replica.port}" in cache  # the primary lists its replica
    assert "&lt;img src=x onerror=alert(1)&gt;" in cache and "<img" not in page  # a key name is text
    assert "Key prefixes (sampled): TTL discipline and memory" in cache
    assert "RDB: last save" in cache
    copy = page[page.index('id="redis-copy"'):page.index('id="redis-old"')]
    assert f"replica of <span class=\"mono\">127.0.0.1:{primary.port}</span>" in copy
    old_part = page[page.index('id="redis-old"'):]
    assert "not read here" in old_part and "errorstats</b>" in old_part and "latencystats</b>" in old_part
