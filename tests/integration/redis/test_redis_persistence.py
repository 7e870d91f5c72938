"""Persistence on real servers: a failing RDB save (its directory removed: that stops root too, where a
chmod would not), the MISCONF state in which PING itself fails (up, refusing writes: not down), a failing
AOF rewrite, and a failing AOF write (a full tmpfs, where the machine lets us mount one)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from collectors.base.samples import Sample
from harness.servers import LocalRedis, find_redis_server, redis_version
from tests.support import redis_poller

from .conftest import MATRIX, quiet_client, wait_until


def one(samples: list[Sample], name: str) -> float | None:
    return {(s.name, s.labels): s.value for s in samples}.get((name, ("r",)))


async def persistence(client: aioredis.Redis) -> dict[str, object]:
    return dict(await client.info("persistence"))


@pytest.mark.parametrize("server", MATRIX)
async def test_failing_rdb_save_shows_as_failed_and_misconf_as_up_refusing_writes(
        server: str, start_redis: Callable[..., LocalRedis], tmp_path: Path) -> None:
    # 7.0+ protect `dir` from CONFIG SET unless told at start (6.x refuse the option).
    protected = {"enable-protected-configs": "local"} if redis_version(find_redis_server(server)).at_least(7) else {}
    s = start_redis(server, extra=protected)
    app = quiet_client(s)
    p = redis_poller(s.url(), sampling=False)
    try:
        await app.set("k", "v")
        await app.bgsave()
        await wait_until(lambda: _saved(app, "ok"), what="a first save")
        samples = (await p.poll()).samples()
        assert one(samples, "dbpulse_redis_rdb_last_save_ok") == 1
        saved_at = one(samples, "dbpulse_redis_rdb_last_save_timestamp_seconds")

        shutil.rmtree(s.datadir)  # the server's working directory is gone: the next save cannot open its file
        await app.set("k2", "v")
        await app.bgsave()
        await wait_until(lambda: _saved(app, "err"), what="the save to fail")
        samples = (await p.poll()).samples()
        assert one(samples, "dbpulse_redis_up") == 1
        assert one(samples, "dbpulse_redis_rdb_last_save_ok") == 0
        assert one(samples, "dbpulse_redis_rdb_last_save_timestamp_seconds") == saved_at  # the last good one
        assert (one(samples, "dbpulse_redis_rdb_changes_since_last_save") or 0) >= 1
        assert one(samples, "dbpulse_redis_writes_refused") == 0  # no save points: writes still work

        # With a save point, a failed save stops writes, and PING too: up, refusing writes, not down.
        await app.config_set("save", "3600 1")
        with pytest.raises(ResponseError, match=r"^MISCONF"):
            await app.set("k3", "v")
        snap = await p.poll()
        samples = snap.samples()
        assert one(samples, "dbpulse_redis_up") == 1
        assert one(samples, "dbpulse_redis_writes_refused") == 1
        assert one(samples, "dbpulse_redis_rdb_last_save_ok") == 0
        assert one(samples, "dbpulse_redis_ping_seconds") is not None
        assert one(samples, "dbpulse_redis_uptime_seconds") is not None  # INFO is read as usual

        # Repaired (re-creating the old path would not do: the server's cwd is the removed directory).
        fixed = tmp_path / "fixed"
        fixed.mkdir()
        await app.config_set("dir", str(fixed))
        await app.bgsave()
        await wait_until(lambda: _saved(app, "ok"), what="the repaired save")
        samples = (await p.poll()).samples()
        assert one(samples, "dbpulse_redis_writes_refused") == 0
        assert one(samples, "dbpulse_redis_rdb_last_save_ok") == 1
    finally:
        with contextlib.suppress(ResponseError):
            await app.config_set("save", "")  # else a server that cannot save refuses to shut down
        await p.close()
        await app.aclose()


async def _saved(client: aioredis.Redis, status: str) -> bool:
    info = await persistence(client)
    return info["rdb_bgsave_in_progress"] == 0 and info["rdb_last_bgsave_status"] == status


@pytest.mark.parametrize("server", MATRIX)
async def test_failing_aof_rewrite_shows_as_failed(server: str, start_redis: Callable[..., LocalRedis]) -> None:
    s = start_redis(server, extra={"appendonly": "yes"})
    app = quiet_client(s)
    p = redis_poller(s.url(), sampling=False)
    try:
        await app.set("k", "v")
        samples = (await p.poll()).samples()
        assert one(samples, "dbpulse_redis_aof_enabled") == 1
        assert one(samples, "dbpulse_redis_aof_last_write_ok") == 1
        shutil.rmtree(s.datadir)
        with contextlib.suppress(ResponseError):  # 7.0+ refuse at once; 6.x start and the child fails
            await app.bgrewriteaof()

        async def failed() -> bool:
            info = await persistence(app)
            return info["aof_rewrite_in_progress"] == 0 and info["aof_last_bgrewrite_status"] == "err"

        await wait_until(failed, what="the rewrite to fail")
        samples = (await p.poll()).samples()
        assert one(samples, "dbpulse_redis_aof_last_rewrite_ok") == 0
        assert one(samples, "dbpulse_redis_aof_rewrite_in_progress") == 0
        assert one(samples, "dbpulse_redis_up") == 1
    finally:
        await p.close()
        await app.aclose()


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 512 kB tmpfs, or a skip where mounting is not allowed (it needs CAP_SYS_ADMIN)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


async def test_failing_aof_write_refuses_writes_but_is_up(start_redis: Callable[..., LocalRedis],
                                                          tiny_tmpfs: Path) -> None:
    s = start_redis("redis-7.0", extra={"appendonly": "yes", "dir": str(tiny_tmpfs)})
    app = quiet_client(s)
    p = redis_poller(s.url(), sampling=False)
    try:
        with pytest.raises(ResponseError, match=r"^MISCONF"):
            for i in range(40):  # 60 kB each into 512 kB: the disk fills
                await app.set(f"k{i}", "x" * 60_000)
        samples = (await p.poll()).samples()
        assert one(samples, "dbpulse_redis_up") == 1
        assert one(samples, "dbpulse_redis_writes_refused") == 1
        assert one(samples, "dbpulse_redis_aof_last_write_ok") == 0
    finally:
        await p.close()
        await app.aclose()
