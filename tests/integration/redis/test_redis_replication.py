"""A primary and a replica on real servers, the link cut three ways: the replica frozen while the primary
takes writes (lag in bytes and seconds), then dropped by the primary, then the primary gone."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from collectors.base.samples import Sample
from collectors.redis.poller import RedisPoller
from harness.servers import LocalRedis
from tests.support import redis_poller

from .conftest import MATRIX, quiet_client, wait_until

PRIMARY = {"repl-diskless-sync-delay": "0", "repl-timeout": "3", "repl-ping-replica-period": "1"}


def metrics(samples: list[Sample], name: str) -> dict[tuple[str, ...], float]:
    return {s.labels[1:]: s.value for s in samples if s.name == name}


def one(samples: list[Sample], name: str) -> float | None:
    return metrics(samples, name).get(())


async def poll(p: RedisPoller) -> list[Sample]:
    return (await p.poll()).samples()


@pytest.mark.parametrize("server", MATRIX)
async def test_replica_link_cut_reports_link_status_and_lag(server: str,
                                                            start_redis: Callable[..., LocalRedis]) -> None:
    primary = start_redis(server, extra=PRIMARY)
    replica = start_redis(server, replica_of=primary)
    app = quiet_client(primary)
    on_primary = redis_poller(primary.url(), name="r", sampling=False)
    on_replica = redis_poller(replica.url(), name="r", sampling=False)
    name = f"127.0.0.1:{replica.port}"
    try:
        await app.set("k", "v")

        async def caught_up() -> bool:  # online, acknowledged (a known offset) and nothing outstanding
            return metrics(await poll(on_primary), "dbpulse_redis_replica_lag_bytes").get((name,)) == 0

        await wait_until(caught_up, what="the replica to acknowledge everything")
        samples = await poll(on_primary)
        assert one(samples, "dbpulse_redis_connected_replicas") == 1
        assert metrics(samples, "dbpulse_redis_replica_online") == {(name,): 1}
        assert (metrics(samples, "dbpulse_redis_replica_lag_seconds")[(name,)]) <= 2
        assert one(samples, "dbpulse_redis_master_link_up") is None  # a primary has no link of its own
        samples = await poll(on_replica)
        assert one(samples, "dbpulse_redis_master_link_up") == 1
        last_io = one(samples, "dbpulse_redis_master_last_io_seconds")
        assert last_io is not None and 0 <= last_io <= 3
        assert one(samples, "dbpulse_redis_master_sync_in_progress") == 0
        assert one(samples, "dbpulse_redis_connected_replicas") == 0

        # The replica stops (frozen): the primary keeps writing, the replica acknowledges nothing.
        assert replica.proc is not None
        replica.proc.send_signal(signal.SIGSTOP)
        await app.mset({f"w:{i}": "x" * 2000 for i in range(100)})  # about 200 kB of replication stream

        async def lagging() -> bool:
            samples = await poll(on_primary)
            lag_bytes = metrics(samples, "dbpulse_redis_replica_lag_bytes").get((name,), 0)
            return lag_bytes >= 200_000 and metrics(samples, "dbpulse_redis_replica_lag_seconds")[(name,)] >= 1

        await wait_until(lagging, timeout=3, what="lag in bytes and seconds before repl-timeout drops it")

        async def dropped() -> bool:  # after repl-timeout the primary stops listing it: no "down" state
            samples = await poll(on_primary)
            return one(samples, "dbpulse_redis_connected_replicas") == 0 and not metrics(
                samples, "dbpulse_redis_replica_lag_bytes")

        await wait_until(dropped, what="the primary to drop the silent replica")

        replica.proc.send_signal(signal.SIGCONT)

        async def back() -> bool:
            return one(await poll(on_replica), "dbpulse_redis_master_link_up") == 1

        await wait_until(back, what="the replica to reconnect")
        await wait_until(caught_up, what="the replica to catch up")

        # The primary goes away: the replica says so at once, and keeps its role.
        primary.stop()
        samples = await poll(on_replica)
        assert one(samples, "dbpulse_redis_master_link_up") == 0
        assert one(samples, "dbpulse_redis_master_last_io_seconds") is None  # -1 while down: unknown
        assert metrics(samples, "dbpulse_redis_info")[(replica.version.text, "standalone", "slave",
                                                        replica.version.product)] == 1
    finally:
        if replica.proc is not None:
            replica.proc.send_signal(signal.SIGCONT)
        await on_primary.close()
        await on_replica.close()
        await app.aclose()
