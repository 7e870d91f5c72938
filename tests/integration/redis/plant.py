"""What makes every Redis metric appear, for the tests that check a real scrape against the catalogue."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import redis
from redis.exceptions import ResponseError

from collectors.redis.poller import quiet_handshake
from harness.servers import LocalRedis

# A busy loop: about 20 ms here, well over the 1 ms latency-monitor-threshold set below on any machine.
# (A loop on TIME would never end: from 7.0 a script sees the time frozen at its start.)
BUSY = "local x = 0 for i = 1, 2000000 do x = x + i end return 1"


@contextlib.contextmanager
def every_redis_metric(primary: LocalRedis, timeout: float = 20) -> Iterator[LocalRedis]:
    """A replica of ``primary`` with its link up (the replication metrics of both sides) and, on the
    primary, a latency spike, slowlog entries, a rejected and a failed call (commands, errors, latency)."""
    client = redis.Redis.from_url(primary.url(), **quiet_handshake())
    client.config_set("repl-diskless-sync-delay", "0")
    replica = LocalRedis(replica_of=primary, password=primary.password)
    replica.start()
    try:
        with redis.Redis.from_url(replica.url(), **quiet_handshake()) as on_replica:
            deadline = time.monotonic() + timeout
            while on_replica.info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise TimeoutError(f"replica of {primary.url()} not linked within {timeout} s")
                time.sleep(0.1)
        client.config_set("latency-monitor-threshold", "1")
        client.config_set("slowlog-log-slower-than", "10000")
        client.eval(BUSY, 0)
        client.set("planted:string", "v")
        with contextlib.suppress(ResponseError):
            client.execute_command("GET")  # rejected: wrong number of arguments
        with contextlib.suppress(ResponseError):
            client.lpush("planted:string", "x")  # failed: WRONGTYPE
        client.close()
        yield replica
    finally:
        replica.cleanup()
