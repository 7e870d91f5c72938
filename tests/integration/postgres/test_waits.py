"""What statements wait on, against real servers (collectors/postgres/waits.py).

- A real lock wait (one session holds a row lock, another updates the row) shows up as
  ``Lock:transactionid``, per database on every supported major (13-18, pg_stat_activity sampled) and per
  statement where PostgreSQL names it (14+); 13 says why not through the ``wait_statements`` feature.
- pg_wait_sampling on 15 (Debian's package, preloaded in a server of this module only): the same lock wait,
  from the extension's profile deltas.
- Real I/O waits from a cold cache: a table hundreds of times the size of ``shared_buffers`` (128 kB here),
  its files evicted from the OS page cache (fsync, then ``posix_fadvise(DONTNEED)``) before each sequential
  scan, so every block is read from disk: ``IO:DataFileRead`` on the scan, with both methods.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from collectors.postgres import waits
from collectors.postgres.snapshot import PostgresSnapshot
from collectors.postgres.waits import SAMPLER_APPLICATION_NAME, ActivitySampler
from harness.servers import SUPPORTED_MAJORS, LocalPostgres
from tests.support import DbpulseProcess, pg_poller

UPDATE = "UPDATE accounts SET balance = balance + 1 WHERE id = 1"
SCAN = "SELECT count(*) FROM big WHERE pad <> ''"
DEBIAN_15 = Path("/usr/lib/postgresql/15/bin")


def wait_sampling_server(**settings: str) -> LocalPostgres:
    """Debian's PostgreSQL 15 (the one pg_wait_sampling is packaged for) with the extension preloaded."""
    if not (DEBIAN_15.parent / "lib" / "pg_wait_sampling.so").exists():
        pytest.skip("postgresql-15-pg-wait-sampling is not installed (scripts/setup.sh installs it)")
    server = LocalPostgres(preload=("pg_stat_statements", "pg_wait_sampling"), settings=settings)
    server.bin = DEBIAN_15
    return server


@contextmanager
def running(server: LocalPostgres, *extensions: str) -> Iterator[str]:
    server.start()
    try:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            for extension in ("pg_stat_statements", *extensions):
                conn.execute(f"CREATE EXTENSION {extension}")
        yield server.dsn()
    finally:
        server.cleanup()


@contextmanager
def lock_wait(dsn: str) -> Iterator[int]:
    """One session holds a row lock, another waits for it with UPDATE; yields the UPDATE's queryid."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int)")
        conn.execute("INSERT INTO accounts VALUES (1, 0)")
        conn.execute(UPDATE)  # once, so pg_stat_statements (and the top-K) has it before it waits
        queryid = int(conn.execute("SELECT queryid FROM pg_stat_statements WHERE query LIKE 'UPDATE accounts%'"
                                   ).fetchone()[0])  # type: ignore[index]
    holder = psycopg.connect(dsn)
    holder.execute(UPDATE)  # holds the row lock until it commits

    def wait() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(UPDATE)

    waiter = threading.Thread(target=wait)
    waiter.start()
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for _ in range(100):  # until the waiter waits
                if conn.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                ).fetchone() == (1,):
                    break
                threading.Event().wait(0.05)
        yield queryid
    finally:
        holder.commit()
        holder.close()
        waiter.join(10)


def sampled(dsn: str, seconds: float, method: str = "auto", while_running: object = None) -> PostgresSnapshot:
    """Two polls ``seconds`` apart, wait events sampled every 0.1 s in between; the second poll's snapshot."""

    async def run() -> PostgresSnapshot:
        poller = pg_poller(dsn, interval=10, timeout=8, wait_sampling=method, wait_sample_interval=0.1)
        try:
            await poller.poll()
            await asyncio.sleep(seconds)
            return await poller.poll()
        finally:
            await poller.close()

    return asyncio.run(run())


def metric(snap: PostgresSnapshot, name: str, **labels: str) -> float:
    """The sum of a metric's samples matching ``labels`` in the snapshot's samples."""
    from collectors.base.catalogue import spec

    names = spec(name).labels
    return sum(s.value for s in snap.samples() if s.name == name
               and all(s.labels[names.index(k)] == v for k, v in labels.items()))


@pytest.mark.parametrize("major", SUPPORTED_MAJORS)
def test_a_lock_wait_on_every_major(major: str) -> None:
    with running(LocalPostgres(version=major)) as dsn, lock_wait(dsn) as queryid:
        snap = sampled(dsn, 2.0, method="pg_stat_activity")
    waits = snap.waits
    assert waits is not None and waits.method == "pg_stat_activity"
    db_lock = metric(snap, "dbpulse_pg_wait_seconds_total", datname="postgres", wait_event_type="Lock",
                     wait_event="transactionid")
    assert 1.0 < db_lock < 4.0, waits.databases  # about the 2 s between the polls, estimated from samples
    assert metric(snap, "dbpulse_pg_wait_sampler", method="pg_stat_activity") == 1
    statement_lock = metric(snap, "dbpulse_pg_statement_wait_seconds_total", queryid=str(queryid),
                            wait_event_type="Lock", wait_event="transactionid")
    if major == "13":
        assert snap.features["wait_statements"] is False
        assert waits.reason is not None and "query_id" in waits.reason
        assert statement_lock == 0
    else:
        assert snap.features["wait_statements"] is True
        assert statement_lock == pytest.approx(db_lock)
    assert snap.features["wait_sampling"] is True


def test_a_lock_wait_with_pg_wait_sampling() -> None:
    with running(wait_sampling_server(), "pg_wait_sampling") as dsn, lock_wait(dsn) as queryid:
        snap = sampled(dsn, 2.0)
    waits = snap.waits
    assert waits is not None and waits.method == "pg_wait_sampling"
    assert snap.features["wait_statements"] is True
    db_lock = metric(snap, "dbpulse_pg_wait_seconds_total", datname="postgres", wait_event_type="Lock",
                     wait_event="transactionid")
    assert 1.0 < db_lock < 4.0, waits.databases  # the extension samples every 10 ms
    # Debian's 1.1.4 has no sample_cpu and takes the queryid in its planner hook only: per statement (and the CPU),
    # the pg_stat_activity sampler's figures
    assert (waits.cpu_from, waits.statements_from) == ("pg_stat_activity", "pg_stat_activity")
    assert 1.0 < metric(snap, "dbpulse_pg_statement_wait_seconds_total", queryid=str(queryid),
                        wait_event_type="Lock") < 4.0
    # the session holding the lock is idle in transaction: its ClientRead is not active time
    assert not any(e == "ClientRead" for (_, _, e) in waits.databases)


def evict(conn: psycopg.Connection[tuple[object, ...]], datadir: Path, table: str) -> None:
    """Drop the table's blocks from the OS page cache: written out (the harness runs with fsync off), then
    POSIX_FADV_DONTNEED; shared_buffers (128 kB) holds almost none of them."""
    conn.execute("CHECKPOINT")
    relative = conn.execute("SELECT pg_relation_filepath(%s)", (table,)).fetchone()[0]  # type: ignore[index]
    first = datadir / str(relative)
    for path in [first, *sorted(first.parent.glob(first.name + ".*"))]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


@contextmanager
def cold_scans(dsn: str, datadir: Path) -> Iterator[int]:
    """Sequential scans of a table far beyond shared_buffers, each from a cold OS cache, in a thread;
    yields the scan's queryid."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE big (id int, pad text)")
        conn.execute("INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 200000) g")  # ~50 MB
        conn.execute("SET max_parallel_workers_per_gather = 0")
        conn.execute(SCAN)
        queryid = int(conn.execute("SELECT queryid FROM pg_stat_statements WHERE query LIKE 'SELECT count(*) FROM big%'"
                                   ).fetchone()[0])  # type: ignore[index]
    stop = threading.Event()

    def scan() -> None:
        # psycopg prepares the scan server-side after 5 executions: pg_wait_sampling 1.1.4 profiles its cached plan
        # under queryid 0, so its figures per statement come from pg_stat_activity samples
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SET max_parallel_workers_per_gather = 0")
            while not stop.is_set():
                evict(conn, datadir, "big")
                conn.execute(SCAN)

    thread = threading.Thread(target=scan)
    thread.start()
    try:
        yield queryid
    finally:
        stop.set()
        thread.join(60)


@pytest.mark.parametrize("method", ["pg_wait_sampling", "pg_stat_activity"])
def test_io_waits_from_a_cold_cache(method: str, tmp_path: Path) -> None:
    server = wait_sampling_server(shared_buffers="128kB")
    extensions = ("pg_wait_sampling",) if method == "pg_wait_sampling" else ()
    with running(server, *extensions) as dsn, cold_scans(dsn, server.datadir) as queryid:
        snap = sampled(dsn, 4.0, method=method)
        page = served_page(dsn, f"/statements/shop/{queryid}", "IO:DataFileRead", method, tmp_path)
    assert f"measured with {method}" in page
    waits = snap.waits
    assert waits is not None and waits.method == method
    read = metric(snap, "dbpulse_pg_statement_wait_seconds_total", queryid=str(queryid), wait_event_type="IO",
                  wait_event="DataFileRead")
    assert read > 0, waits.statements.get(queryid)
    assert metric(snap, "dbpulse_pg_wait_seconds_total", datname="postgres", wait_event_type="IO",
                  wait_event="DataFileRead") > 0
    # the scan also runs on the CPU between reads: with pg_wait_sampling 1.1.4 (no sample_cpu) that time comes
    # from the pg_stat_activity sampler, so that shares are of active time with both methods
    assert metric(snap, "dbpulse_pg_statement_wait_seconds_total", queryid=str(queryid), wait_event_type="CPU") > 0
    assert waits.cpu_from == waits.statements_from == ("pg_stat_activity" if method == "pg_wait_sampling" else "")


def served_page(dsn: str, path: str, needle: str, method: str, tmp_path: Path) -> str:
    """A page of dbpulse (as a process, wait events sampled every 0.2 s) once it shows ``needle``."""
    config = tmp_path / "dbpulse.yaml"
    config.write_text(f"postgres:\n  wait_sample_interval: 0.2\n  wait_sampling: {method}\n")
    with DbpulseProcess("--config", str(config), "--postgres", f"shop={dsn}", "--interval", "1") as svc:
        return svc.wait_for_page(path, needle, timeout=30)


def served_pages(dsn: str, queryid: int, tmp_path: Path) -> tuple[str, str, dict[str, float]]:
    """dbpulse as a process while the lock wait lasts: the statement page, the main page, the wait metrics."""
    config = tmp_path / "dbpulse.yaml"
    config.write_text("postgres:\n  wait_sample_interval: 0.2\n")
    with DbpulseProcess("--config", str(config), "--postgres", f"shop={dsn}", "--interval", "1") as svc:
        statement = svc.wait_for_page(f"/statements/shop/{queryid}", "Lock:transactionid", timeout=30)
        main = svc.wait_for_page("/", "Lock:transactionid", timeout=15)
        metrics = {dict(k).get("wait_event", ""): v for k, v in
                   svc.metrics().get("dbpulse_pg_statement_wait_seconds_total", {}).items()
                   if dict(k).get("queryid") == str(queryid)}
    return statement, main, metrics


def test_the_statement_page_and_main_page_show_a_lock_wait(fresh_db: str, tmp_path: Path) -> None:
    with lock_wait(fresh_db) as queryid:
        statement, main, metrics = served_pages(fresh_db, queryid, tmp_path)
    assert 'id="statement-waits"' in statement and "measured with pg_stat_activity" in statement
    assert re.search(r'id="statement-wait-samples">seen active in about \d+ samples?', statement), statement
    assert "What active sessions wait on" in main
    assert metrics.get("transactionid", 0) > 0


def test_the_statement_page_with_pg_wait_sampling(tmp_path: Path) -> None:
    with running(wait_sampling_server(), "pg_wait_sampling") as dsn, lock_wait(dsn) as queryid:
        statement, _, metrics = served_pages(dsn, queryid, tmp_path)
    assert "measured with pg_wait_sampling" in statement and 'id="statement-wait-samples"' not in statement
    assert metrics.get("transactionid", 0) > 0


def test_postgres_13_says_why_there_is_no_statement_profile(tmp_path: Path) -> None:
    with running(LocalPostgres(version="13")) as dsn, lock_wait(dsn) as queryid:
        config = tmp_path / "dbpulse.yaml"
        config.write_text("postgres:\n  wait_sample_interval: 0.2\n")
        with DbpulseProcess("--config", str(config), "--postgres", f"shop={dsn}", "--interval", "1") as svc:
            page = svc.wait_for_page(f"/statements/shop/{queryid}", 'id="waits-not-per-statement"', timeout=30)
            svc.wait_for("dbpulse_pg_feature_enabled", 0, feature="wait_statements")
    assert "PostgreSQL 13 has no pg_stat_activity.query_id" in page


def test_a_reset_of_pg_wait_samplings_profile_keeps_the_counters_counting() -> None:
    """Someone else resets the profile (dbpulse never does): the counts drop, and what was counted since the reset
    is added, so the exported counters keep growing."""

    async def run(dsn: str) -> list[float]:
        poller = pg_poller(dsn, interval=10, timeout=8)
        seconds = []
        try:
            for reset in (False, False, True, False):
                if reset:
                    with psycopg.connect(dsn, autocommit=True) as conn:
                        conn.execute("SELECT pg_wait_sampling_reset_profile()")
                snap = await poller.poll()
                seconds.append(metric(snap, "dbpulse_pg_wait_seconds_total", wait_event_type="Lock"))
                await asyncio.sleep(1.5)
        finally:
            await poller.close()
        return seconds

    with running(wait_sampling_server(), "pg_wait_sampling") as dsn, lock_wait(dsn):
        first, before, after, later = asyncio.run(run(dsn))
    assert first == 0  # the first read is the baseline
    assert 1.0 < before < 2.5
    # the reset came right before the third read: what the profile counted since (a few ms) is added
    assert before <= after < before + 0.5
    assert after + 1.0 < later < after + 2.5  # and from there on, deltas from the reset profile


def sampler_sessions(dsn: str) -> int:
    """The wait sampler's sessions on the database of ``dsn``."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                           "AND datname = current_database()", (SAMPLER_APPLICATION_NAME,)).fetchone()
    return int(row[0]) if row else 0


def gone(dsn: str) -> bool:
    """No sampler session left (a backend ends a moment after its client closed the socket)."""
    for _ in range(100):
        if sampler_sessions(dsn) == 0:
            return True
        time.sleep(0.1)
    return False


def test_a_sampler_whose_event_loop_ends_is_cancelled_with_it_and_closes_its_session(fresh_db: str) -> None:
    """Tests poll from many asyncio.run calls; each ends by cancelling its tasks, the sampler's too, and waits
    for them. With a sample ending just as that cancel came, Python 3.11's asyncio.wait_for (which the sampler
    used) returned the sample and dropped the cancellation: the task sampled on and asyncio.run never returned
    (the CI hang in test_replication). Samples back to back (interval 1 ms) and loops ended at random moments
    make that moment likely: the loop, the old code hung within a few runs. Every run must end, and the
    sampler's session must not outlive its loop's task."""
    with psycopg.connect(fresh_db) as conn:
        version = conn.info.server_version
    sampler = ActivitySampler("loops", fresh_db, None, 0.001, {})
    chance = random.Random(25)
    samples = 0

    async def sample_a_moment(seconds: float) -> None:
        sampler.start(version)
        await asyncio.sleep(seconds)

    def runs() -> None:
        nonlocal samples
        for _ in range(150):
            asyncio.run(sample_a_moment(chance.uniform(0.0, 0.03)))
            samples += sampler.samples

    worker = threading.Thread(target=runs, daemon=True)
    worker.start()
    worker.join(300)  # bounded so that a hang fails here; the runs take a few seconds
    assert not worker.is_alive(), "an asyncio.run never returned: the sampler's task outlived its cancellation"
    assert samples > 0
    asyncio.run(sampler.stop())  # drops the last task: a connect it cancelled half way is freed with it
    assert not sampler.running and gone(fresh_db)


def started(dsn: str, name: str, interval: float) -> tuple[ActivitySampler, Callable[[], Awaitable[None]]]:
    """A sampler on ``dsn``, and a coroutine function that starts it in the running loop and returns once it
    has sampled."""
    with psycopg.connect(dsn) as conn:
        version = conn.info.server_version
    sampler = ActivitySampler(name, dsn, None, interval, {})

    async def sample_a_while() -> None:
        sampler.start(version)
        while sampler.samples == 0:
            await asyncio.sleep(0.05)

    return sampler, sample_a_while


def test_a_sampler_used_from_one_event_loop_then_another_neither_hangs_nor_leaks(fresh_db: str) -> None:
    """Each asyncio.run is a new event loop (tests poll that way): sampling goes on in the new one, and stop()
    from a third ends it and leaves no session behind."""
    sampler, sample_a_while = started(fresh_db, "loops", 0.1)
    asyncio.run(sample_a_while())
    first = sampler.samples

    async def again_then_stop() -> None:
        await asyncio.wait_for(sample_a_while(), 20)
        await asyncio.wait_for(sampler.stop(), 20)

    asyncio.run(again_then_stop())
    assert first >= 1 and sampler.samples >= 1 and not sampler.running
    assert gone(fresh_db)


def sampler_pids(dsn: str) -> set[int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s "
                            "AND datname = current_database()", (SAMPLER_APPLICATION_NAME,)).fetchall()
    return {int(r[0]) for r in rows}


class SlowToStop(ActivitySampler):
    """A sampler whose first task, once it has sampled, stays in its sample past stop()'s grace, deaf to
    cancellation until released (a server or a loop too slow to let it end in time: not something a test can
    make a real server do on cue), and then ends as a cancelled task does."""

    def __init__(self, dsn: str) -> None:
        super().__init__("slow", dsn, None, 0.2, {})
        self.hang = True
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def sample_once(self, *args: Any) -> None:
        await super().sample_once(*args)
        if not self.hang:
            return
        self.hang = False
        self.entered.set()
        cancelled = False
        while not self.release.is_set():
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                cancelled = True
        if cancelled:
            raise asyncio.CancelledError


def test_a_task_that_outlives_stop_closes_only_its_own_session(fresh_db: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """stop() gives up on a task after STOP_GRACE and start() begins another (the poll does so when
    sample_cpu changes): the old task, ending later, must not close the new task's session."""
    monkeypatch.setattr(waits, "STOP_GRACE", 0.1)
    with psycopg.connect(fresh_db) as conn:
        version = conn.info.server_version
    sampler = SlowToStop(fresh_db)

    async def scenario() -> tuple[set[int], set[int]]:
        sampler.start(version)
        await asyncio.wait_for(sampler.entered.wait(), 30)
        old = sampler._task
        assert old is not None
        await sampler.stop()  # gives up after the grace: the old task lives on
        assert not old.done()
        sampler.start(version)
        while sampler.samples < 2:
            await asyncio.sleep(0.05)
        while len(before := await asyncio.to_thread(sampler_pids, fresh_db)) != 1:  # the old one's ends
            await asyncio.sleep(0.05)
        sampler.release.set()
        await asyncio.wait({old}, timeout=30)
        assert old.done()
        done = sampler.samples
        while sampler.samples < done + 3:  # the new task samples on, on its own session
            await asyncio.sleep(0.05)
        after = await asyncio.to_thread(sampler_pids, fresh_db)
        await sampler.stop()
        return before, after

    before, after = asyncio.run(scenario())
    assert after == before, "the old task closed the new task's session: it reconnected"
    assert gone(fresh_db)


def test_stop_after_the_tasks_loop_was_closed_without_cancelling_it(fresh_db: str) -> None:
    """A loop closed without cancelling its tasks (not asyncio.run's way): stop() from another loop must not
    raise (cancel() on that task would), and it closes the session."""
    sampler, sample_a_while = started(fresh_db, "closed", 0.2)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(sample_a_while(), 30))
    finally:
        loop.close()
    assert sampler.running
    asyncio.run(sampler.stop())
    assert not sampler.running and gone(fresh_db)
