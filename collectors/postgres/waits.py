"""What active statements wait on: wait-event time per database and per top-K statement.

Two ways to measure it, chosen on every poll:

- ``pg_wait_sampling`` (installed in the target's database and preloaded): the
  extension samples every backend each ``pg_wait_sampling.profile_period``
  (10 ms) into ``pg_wait_sampling_profile`` (pid, event_type, event, queryid,
  count). Each poll reads the profile and adds its deltas since the previous
  read (count x period = seconds); dbpulse never resets it. The profile also
  samples idle sessions (``Client:ClientRead``) and background processes
  (``Activity:*``), which are not active time: both are left out, and so are
  the pids ``pg_stat_activity`` names as other than client backends and
  parallel workers, and dbpulse's own sessions. Without a
  ``pg_wait_sampling.sample_cpu`` setting (Debian's 1.1.4), or with it off, it
  samples only backends that wait: the
  active time that waits on nothing (CPU) then comes from the sampler below,
  so that shares are of active time whichever way the waits were measured.
  1.1.4 also takes the query identifier in its planner hook only: a statement
  run from a cached plan (a server-side prepared statement: psycopg and JDBC
  prepare one after 5 executions) is profiled under queryid 0. So with it the
  figures per statement come from that sampler too, where ``pg_stat_activity``
  names statements (14+); on 13 they are the profile's, cached plans missing.
- Otherwise ``pg_stat_activity`` is sampled by a task of its own, every
  ``postgres.wait_sample_interval`` seconds (1 s), on a connection of its own,
  independent of the poll interval: one grouped query per sample, never one per
  backend. Each active client backend (or parallel worker) not dbpulse's own is
  credited with the time since the previous sample under its wait event.

A backend that is active and waits on nothing runs on the CPU (or in a wait
PostgreSQL does not instrument): it is counted as ``CPU:CPU``.

Per-statement attribution needs a query identifier: ``pg_stat_activity.query_id``
(PostgreSQL 14+, ``compute_query_id`` on, or auto with pg_stat_statements
loaded) or ``pg_wait_sampling``'s ``queryid``. PostgreSQL 13 has neither in
``pg_stat_activity``: the time is per database only, and the feature
``wait_statements`` says so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import psycopg
from psycopg.rows import dict_row

from collectors.base.kept import close_now
from collectors.base.samples import OTHER, SampleList
from collectors.postgres.access import APPLICATION_NAME, PasswordSource, current_password, error_line, session_kwargs
from collectors.postgres.query import Query, fetch_counted

log = logging.getLogger("dbpulse.postgres")

CPU = "CPU"  # wait_event_type and wait_event of an active backend that waits on nothing
SAMPLER_APPLICATION_NAME = f"{APPLICATION_NAME}-sampler"  # the sampler's session, told apart from the poll's
FEW_SAMPLES = 20  # a statement seen active in fewer samples gets its shares called a hint (the pages)
RETRY_MAX = 30.0  # seconds: a failing sampler retries after 1, 2, 4... intervals, at most this long
STOP_GRACE = 1.0  # seconds stop() waits for the cancelled task (its session is closed without waiting)
UNKNOWN_DB = "(unknown)"  # a backend whose database was not seen (it ended before a read named it)
EVENTS_PER_STATEMENT = 12  # distinct wait events kept per statement; later new ones add up in (type, __other__)
_CLIENT_BACKENDS = "backend_type IN ('client backend', 'parallel worker')"
_NOT_OURS = f"pid <> pg_backend_pid() AND coalesce(application_name, '') NOT LIKE '{APPLICATION_NAME}%'"

# One sample of the active backends, grouped: its cost does not grow with a query per backend.
WAIT_ACTIVITY = Query("wait_activity", {
    130000: f"""
SELECT datname, coalesce(wait_event_type, '{CPU}') AS wait_event_type, coalesce(wait_event, '{CPU}') AS wait_event,
       NULL::bigint AS queryid, count(*) AS n
FROM pg_stat_activity
WHERE state = 'active' AND {_CLIENT_BACKENDS} AND {_NOT_OURS}
GROUP BY 1, 2, 3""",
    140000: f"""
SELECT datname, coalesce(wait_event_type, '{CPU}') AS wait_event_type, coalesce(wait_event, '{CPU}') AS wait_event,
       query_id AS queryid, count(*) AS n
FROM pg_stat_activity
WHERE state = 'active' AND {_CLIENT_BACKENDS} AND {_NOT_OURS}
GROUP BY 1, 2, 3, 4""",
})

# Whether pg_wait_sampling can be read here: created in this database and loaded (its settings exist only then),
# and whether pg_stat_activity computes query identifiers.
WAIT_SETUP = Query("wait_setup", {130000: """
SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_wait_sampling') AS wait_sampling_installed,
       current_setting('pg_wait_sampling.profile_period', true) AS profile_period,
       current_setting('pg_wait_sampling.profile_queries', true) AS profile_queries,
       current_setting('pg_wait_sampling.sample_cpu', true) AS sample_cpu,
       current_setting('compute_query_id', true) AS compute_query_id"""})

WAIT_PROFILE = Query("wait_profile", {130000: f"""
SELECT p.pid, p.event_type, p.event, p.queryid, p.count, a.datname
FROM pg_wait_sampling_profile p LEFT JOIN pg_stat_activity a ON a.pid = p.pid
WHERE p.pid <> pg_backend_pid()
  AND (a.pid IS NULL OR (a.backend_type IN ('client backend', 'parallel worker')
       AND coalesce(a.application_name, '') NOT LIKE '{APPLICATION_NAME}%'))
  AND coalesce(p.event_type, '') <> 'Activity'
  AND NOT (coalesce(p.event_type, '') = 'Client' AND coalesce(p.event, '') = 'ClientRead')"""})

ALL = (WAIT_ACTIVITY, WAIT_SETUP, WAIT_PROFILE)


@dataclass
class WaitTotals:
    """Wait-event seconds added up since sampling started: per database, and per query identifier."""

    databases: dict[tuple[str, str, str], float] = field(default_factory=dict)  # (datname, type, event)
    statements: dict[int, dict[tuple[str, str], float]] = field(default_factory=dict)  # queryid -> (type, event)
    seen: set[int] = field(default_factory=set)  # query identifiers sampled since the last keep_statements

    def add(self, datname: str, queryid: int | None, event_type: str, event: str, seconds: float) -> None:
        key = (datname, event_type, event)
        self.databases[key] = self.databases.get(key, 0.0) + seconds
        if queryid:  # 0 or NULL: no identifier (utility statements, PostgreSQL 13, compute_query_id off)
            self.seen.add(queryid)
            events = self.statements.setdefault(queryid, {})
            pair = (event_type, event)
            if pair not in events and len(events) >= EVENTS_PER_STATEMENT:
                pair = (event_type, OTHER)  # admitted once, kept: each series stays a counter
            events[pair] = events.get(pair, 0.0) + seconds

    def keep_statements(self, queryids: Iterable[int]) -> dict[int, dict[tuple[str, str], float]]:
        """The statements of ``queryids`` (the exported top-K), a copy. Memory stays bounded: those outside it
        and not sampled since the last call are forgotten (a statement still running is kept: it enters
        pg_stat_statements, and so the top-K, only when it ends)."""
        top = set(queryids)
        keep = top | self.seen
        self.statements = {q: e for q, e in self.statements.items() if q in keep}
        self.seen = set()
        return {q: dict(e) for q, e in self.statements.items() if q in top}


@dataclass(frozen=True)
class WaitRow:
    event_type: str
    event: str
    seconds: float
    share: float  # of the profile's time

    @property
    def name(self) -> str:
        return f"{self.event_type}:{self.event}"


def _rows(seconds: dict[tuple[str, str], float]) -> list[WaitRow]:
    total = sum(seconds.values())
    return [WaitRow(t, e, s, s / total if total else 0.0)
            for (t, e), s in sorted(seconds.items(), key=lambda kv: (-kv[1], kv[0]))]


@dataclass(frozen=True)
class WaitProfile:
    """The wait-event time one poll exports (counters since dbpulse started sampling this target)."""

    method: str  # pg_wait_sampling | pg_stat_activity
    statements_supported: bool  # time is attributed to statements (query identifiers available)
    reason: str | None  # why it is not, when it is not
    since: float  # when sampling started (epoch seconds)
    samples: int  # pg_stat_activity samples taken, or pg_wait_sampling profile reads
    databases: dict[tuple[str, str, str], float] = field(default_factory=dict)
    statements: dict[int, dict[tuple[str, str], float]] = field(default_factory=dict)  # the top-K's only
    read_at: float = field(default_factory=time.time)
    cpu_from: str = ""  # where CPU:CPU comes from when not from ``method`` (pg_wait_sampling without sample_cpu)
    statements_from: str = ""  # where the figures per statement come from when not from ``method``
    interval: float = 0.0  # the time one pg_stat_activity sample stands for; 0 for pg_wait_sampling's profile
    few_samples: ClassVar[int] = FEW_SAMPLES

    def statement_samples(self, queryid: int) -> int | None:
        """About how many of dbpulse's samples saw the statement active (a late sample stands for up to two
        intervals); None where the profile does not count samples (pg_wait_sampling's counts are its own)."""
        if not self.interval:
            return None
        return round(sum(self.statements.get(queryid, {}).values()) / self.interval)

    @property
    def span_seconds(self) -> float:
        """How long the counters have been adding up."""
        return max(0.0, self.read_at - self.since)

    def cluster(self) -> list[WaitRow]:
        """Every database's time added up, by wait event, the largest first."""
        out: dict[tuple[str, str], float] = {}
        for (_, t, e), s in self.databases.items():
            out[(t, e)] = out.get((t, e), 0.0) + s
        return _rows(out)

    def classes(self) -> list[WaitRow]:
        """Every database's time by wait_event_type."""
        out: dict[tuple[str, str], float] = {}
        for (_, t, _e), s in self.databases.items():
            out[(t, "")] = out.get((t, ""), 0.0) + s
        return _rows(out)

    def statement(self, queryid: int) -> list[WaitRow]:
        return _rows(self.statements.get(queryid, {}))

    @property
    def total_seconds(self) -> float:
        return sum(self.databases.values())

    def add_samples(self, out: SampleList, datname: str) -> None:
        out.add("dbpulse_pg_wait_sampler", 1, method=self.method)
        out.add("dbpulse_pg_wait_samples_total", self.samples)
        for (db, event_type, event), seconds in sorted(self.databases.items()):
            out.add("dbpulse_pg_wait_seconds_total", seconds, datname=db, wait_event_type=event_type,
                    wait_event=event)
        for queryid, events in sorted(self.statements.items()):
            for (event_type, event), seconds in sorted(events.items()):
                out.add("dbpulse_pg_statement_wait_seconds_total", seconds, datname=datname, queryid=str(queryid),
                        wait_event_type=event_type, wait_event=event)


class SamplerSession:
    """One sampler task's own connection: a task that outlives stop() (past STOP_GRACE) closes its own session
    when it ends, never the one of a task started since."""

    def __init__(self) -> None:
        self.conn: psycopg.AsyncConnection[dict[str, Any]] | None = None

    def close(self) -> None:
        """At once: nothing awaited, so neither a dead server nor a cancellation can hold it open."""
        conn, self.conn = self.conn, None
        if conn is not None:
            close_now(conn)


class ActivitySampler:
    """Samples pg_stat_activity every ``interval`` seconds on a connection of its own, in a task of its own.

    Every step is bounded: the connect (connect_timeout), the query (statement_timeout, and the sample's own
    timeout for a server that does not answer), the close (the socket is closed, nothing awaited)."""

    def __init__(self, target: str, dsn: str, password: PasswordSource, interval: float,
                 errors: dict[str, int]) -> None:
        self.target = target
        self.interval = interval
        self.totals = WaitTotals()
        self.samples = 0
        self.version = 0  # server_version_num, set by the poll before the task starts
        self.since = time.time()
        self._dsn = dsn
        self._password = password
        self._errors = errors
        self._task: asyncio.Task[None] | None = None
        self._session: SamplerSession | None = None  # the task's, for stop() to close without waiting for it
        self._last: float | None = None  # monotonic time of the previous sample
        self._failing = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, version: int) -> None:
        """Sampling in a task of the running event loop, unless it already is. The task is the poll's: it ends
        with the poll's loop (``asyncio.run`` cancels it) or with ``stop()`` (the poller's ``close()``), and its
        session with it."""
        self.version = version
        if self.running and self._task is not None and self._task.get_loop() is not asyncio.get_running_loop():
            self._close_session()  # a loop closed without cancelling its tasks: that task will never run again
            self._task = None
        if not self.running:
            self.since, self._last = time.time(), None
            self.totals, self.samples = WaitTotals(), 0
            self._session = session = SamplerSession()
            self._task = asyncio.create_task(self._loop(session), name=f"wait-sampler-{self.target}")

    async def stop(self) -> None:
        """Cancel the task and close its session, waiting at most STOP_GRACE seconds for the task to end."""
        task, self._task = self._task, None
        if task is not None and not task.done() and not task.get_loop().is_closed():  # cancel() would raise
            task.cancel()
            if task.get_loop() is asyncio.get_running_loop():
                await asyncio.wait({task}, timeout=STOP_GRACE)
        self._close_session()

    def _close_session(self) -> None:
        """Close the current task's session at once (``SamplerSession.close``)."""
        session, self._session = self._session, None
        if session is not None:
            session.close()

    async def _loop(self, session: SamplerSession) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        failures = 0
        try:
            while True:
                try:
                    # asyncio.timeout, not wait_for: Python 3.11's wait_for returns the result of a sample that
                    # ended just as the task was cancelled and drops the cancellation, and the task then
                    # samples on forever (asyncio.run's end, and a poller's close, waited on it: the CI hang).
                    async with asyncio.timeout(max(self.interval, 1.0)):
                        await self.sample_once(session)
                    self._report(None)
                    failures = 0
                except (TimeoutError, psycopg.Error, OSError) as exc:
                    self._report(error_line(exc))
                    session.close()
                    self._last = None  # the time in between is unknown: not credited to anyone
                    failures += 1
                now = loop.time()
                next_tick += self.interval
                if failures:  # a server that is down is not asked every interval
                    next_tick = now + min(self.interval * 2 ** (failures - 1), RETRY_MAX)
                elif next_tick < now:  # a slow sample: skip the missed ticks rather than catch up
                    next_tick = now + self.interval
                await asyncio.sleep(next_tick - now)
        finally:  # cancelled (stop(), or the end of the loop's asyncio.run): its own session goes with the task
            session.close()

    async def sample_once(self, session: SamplerSession) -> None:
        """One sample on ``session`` (the task's): every active backend credited with the time since the
        previous one."""
        if session.conn is None or session.conn.closed:
            kwargs = session_kwargs(max(self.interval, 1.0) * 0.9, SAMPLER_APPLICATION_NAME,
                                    current_password(self._password))
            session.conn = await psycopg.AsyncConnection.connect(self._dsn, row_factory=dict_row, **kwargs)
        rows, error = await fetch_counted(session.conn, WAIT_ACTIVITY, self.version, self._errors)
        now = time.monotonic()
        if rows is None:
            self._last = None
            raise psycopg.Error(error or "wait sample failed")
        # The first sample (or the first after a failure) stands for one interval; a late one for at most two.
        seconds = self.interval if self._last is None else min(now - self._last, 2 * self.interval)
        self._last = now
        self.samples += 1
        for r in rows:
            self.totals.add(r["datname"] or UNKNOWN_DB, r["queryid"], r["wait_event_type"], r["wait_event"],
                            seconds * int(r["n"]))

    def _report(self, problem: str | None) -> None:
        if problem is not None and not self._failing:
            log.warning("%s: sampling wait events failed (retrying, at most %g s apart): %s", self.target,
                        RETRY_MAX, problem)
        elif problem is None and self._failing:
            log.info("%s: sampling wait events again", self.target)
        self._failing = problem is not None


class WaitReader:
    """The poll's side: picks the method, reads pg_wait_sampling's deltas or the sampler's totals."""

    def __init__(self, target: str, dsn: str, password: PasswordSource, interval: float, method: str,
                 errors: dict[str, int]) -> None:
        self.target = target
        self.method = method  # auto | pg_wait_sampling | pg_stat_activity | off
        for query in ALL:
            errors.setdefault(query.name, 0)
        self._errors = errors
        self.sampler = ActivitySampler(target, dsn, password, interval, errors)
        self._profile_counts: dict[tuple[int, str, str, int], int] | None = None  # pg_wait_sampling's last read
        self._pid_db: dict[int, str] = {}  # pid -> datname, remembered for pids that ended since
        self._profile_totals = WaitTotals()
        self._profile_reads = 0
        self._profile_since = time.time()
        self._reported: tuple[str, str | None] | None = None

    async def close(self) -> None:
        await self.sampler.stop()

    async def read(self, conn: psycopg.AsyncConnection[dict[str, Any]], version: int, pgss_loaded: bool,
                   top: Iterable[int]) -> WaitProfile | None:
        """This poll's wait profile; ``None`` when sampling is off or its setup cannot be read."""
        if self.method == "off":
            return None
        top = list(top)
        rows, _ = await fetch_counted(conn, WAIT_SETUP, version, self._errors)
        if not rows:
            return None
        setup = rows[0]
        usable = bool(setup["wait_sampling_installed"]) and setup["profile_period"] is not None
        if self.method == "pg_wait_sampling" or (self.method == "auto" and usable):
            if not usable:
                self._report("pg_wait_sampling", "pg_wait_sampling is not usable: CREATE EXTENSION pg_wait_sampling "
                             "in the target's database, with pg_wait_sampling in shared_preload_libraries")
                return None
            return await self._read_profile(conn, version, setup, top, pgss_loaded)
        self.sampler.start(version)
        supported, reason = _activity_statements(version, setup["compute_query_id"], pgss_loaded)
        self._report("pg_stat_activity", reason)
        totals = self.sampler.totals
        return WaitProfile("pg_stat_activity", supported, reason, self.sampler.since, self.sampler.samples,
                           dict(totals.databases), totals.keep_statements(top), interval=self.sampler.interval)

    async def _read_profile(self, conn: psycopg.AsyncConnection[dict[str, Any]], version: int,
                            setup: dict[str, Any], top: list[int], pgss_loaded: bool) -> WaitProfile | None:
        rows, _ = await fetch_counted(conn, WAIT_PROFILE, version, self._errors)
        if rows is None:
            return None
        period = float(setup["profile_period"]) / 1000.0  # milliseconds
        counts: dict[tuple[int, str, str, int], int] = {}
        for r in rows:
            key = (int(r["pid"]), r["event_type"] or CPU, r["event"] or CPU, int(r["queryid"] or 0))
            counts[key] = counts.get(key, 0) + int(r["count"])
            if r["datname"] is not None:
                self._pid_db[key[0]] = r["datname"]
        previous = self._profile_counts
        if previous is not None:
            for key, count in counts.items():
                before = previous.get(key, 0)
                delta = count - before if count >= before else count  # a reset (or a reused pid) starts over
                if delta:
                    pid, event_type, event, queryid = key
                    datname = self._pid_db.get(pid, UNKNOWN_DB)
                    self._profile_totals.add(datname, queryid, event_type, event, delta * period)
        self._profile_counts = counts
        live = {key[0] for key in counts}
        self._pid_db = {pid: db for pid, db in self._pid_db.items() if pid in live}
        self._profile_reads += 1
        queries_on = str(setup["profile_queries"]).lower() in ("on", "true", "1", "all", "top")
        reason = None if queries_on else "pg_wait_sampling.profile_queries is off"
        totals = self._profile_totals
        databases, statements = dict(totals.databases), totals.keep_statements(top)
        if str(setup["sample_cpu"]).lower() in ("on", "true"):
            await self.sampler.stop()
            self._report("pg_wait_sampling", reason)
            return WaitProfile("pg_wait_sampling", queries_on, reason, self._profile_since, self._profile_reads,
                               databases, statements)
        # Without sample_cpu (1.1.4), or with it off, the extension samples only backends that wait: the active time
        # that waits on nothing (CPU:CPU) comes from the pg_stat_activity sampler, so that shares are of active time.
        # 1.1.4 also takes the queryid in its planner hook only (a statement run from a cached plan is profiled under
        # queryid 0): where pg_stat_activity names statements, the sampler's figures per statement are the whole ones.
        self.sampler.start(version)
        sampled = self.sampler.totals
        for (db, event_type, event), seconds in sampled.databases.items():
            if event_type == CPU:
                databases[(db, CPU, event)] = databases.get((db, CPU, event), 0.0) + seconds
        by_activity, _ = _activity_statements(version, setup["compute_query_id"], pgss_loaded)
        if by_activity:
            statements, queries_on, reason = sampled.keep_statements(top), True, None
        self._report("pg_wait_sampling", reason)
        return WaitProfile("pg_wait_sampling", queries_on, reason, self._profile_since, self._profile_reads,
                           databases, statements, cpu_from="pg_stat_activity",
                           statements_from="pg_stat_activity" if by_activity else "")

    def _report(self, method: str, reason: str | None) -> None:
        """One log line when the method or the reason changes."""
        if (method, reason) == self._reported:
            return
        if reason:
            log.info("%s: wait events sampled with %s; not per statement: %s", self.target, method, reason)
        else:
            log.info("%s: wait events sampled with %s, per statement", self.target, method)
        self._reported = (method, reason)


def _activity_statements(version: int, compute_query_id: str | None, pgss_loaded: bool) -> tuple[bool, str | None]:
    """Whether pg_stat_activity names the statement of each active backend, and why not when it does not."""
    if version < 140000:
        return False, "PostgreSQL 13 has no pg_stat_activity.query_id: wait time is per database only"
    setting = (compute_query_id or "").lower()
    if setting in ("on", "regress") or (setting == "auto" and pgss_loaded):
        return True, None
    return False, ("compute_query_id is off: set compute_query_id = on (or load pg_stat_statements with it at "
                   "auto) for wait time per statement")


def features(profile: WaitProfile | None) -> dict[str, bool]:
    """``wait_sampling``: wait events are measured; ``wait_statements``: and attributed to statements."""
    return {"wait_sampling": profile is not None,
            "wait_statements": profile is not None and profile.statements_supported}
