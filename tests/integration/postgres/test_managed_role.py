"""The managed-cloud profile on every supported major (13-18): a role with exactly ``pg_monitor``, and one
with ``pg_monitor`` plus the ``SELECT``s the README's role section grants and no more, run every collector
(primary and standby, every health area's read, the maintenance reads each poll) and the advisor (the
library and ``dbpulse advise``) with **no permission error**: none counted in ``dbpulse_pg_query_errors_total``,
none in dbpulse's log, and none in the server's log (where the server records every statement a role was
refused, whichever part of dbpulse sent it and whether or not dbpulse swallowed the error).

Where pg_monitor alone is not enough (sequences' usage and the bloat estimates read what only SELECT shows),
the feature is off with its reason, never an error. The cloud admin databases (``cloud.ADMIN_DATABASES``), made
here as RDS makes ``rdsadmin`` (CONNECT revoked from PUBLIC), appear in no metric.

``test_a_planted_superuser_call_is_caught`` plants superuser-only calls (``pg_stat_file``, ``pg_ls_dir``) in a
collector query and in an advisor query and checks that the same checks report both: the main tests can fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from collectors.postgres import cloud, queries
from collectors.postgres.poller import PostgresPoller
from collectors.postgres.query import Query
from collectors.postgres.snapshot import PostgresSnapshot
from harness.servers import SUPPORTED_MAJORS, LocalPostgres
from monitor.advisor import catalog as advisor_catalog
from monitor.advisor.advisor import Advisor
from monitor.advisor.findings import AdviceReport
from monitor.advisor.settings import Thresholds
from tests.integration.postgres.health_scenario import Pair, live_trouble, one, pair, wait_for
from tests.support import pg_poller

PASSWORD = "cloud-role-pw"
MONITOR_ONLY = "dbpulse_monitor_only"
DOCUMENTED = "dbpulse_documented"
READ_ALL_DATA = "dbpulse_read_all_data"  # the README's one-line alternative on PostgreSQL 14+
POLLS = 3
# The README's role section, word for word in effect: pg_monitor, SELECT on the tables and on the sequences.
GRANTS = {
    MONITOR_ONLY: ("GRANT pg_monitor TO {role}",),
    DOCUMENTED: ("GRANT pg_monitor TO {role}", "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}",
                 "GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"),
    READ_ALL_DATA: ("GRANT pg_monitor TO {role}", "GRANT pg_read_all_data TO {role}"),
}


def roles_of(version_num: int) -> list[str]:
    return [r for r in GRANTS if r != READ_ALL_DATA or version_num >= 140000]
# Every server log line carries the SQLSTATE, the role and the application (the prefix set below).
LOG_PREFIX = "'%m [%p] %e %u@%d app=%a '"
_LOG_LINE = re.compile(r"^\S+ \S+ \S+ \[\d+\] (?P<state>\w{5}) (?P<role>[^@ ]*)@\S* app=(?P<app>\S*) "
                       r"(?P<level>ERROR|FATAL):\s+(?P<message>.*)$")
PERMISSION_STATES = ("42501",)  # insufficient_privilege: "permission denied ...", "must be superuser ..."
_PERMISSION_WORDS = ("permission denied", "must be superuser", "insufficient privilege", "42501")


@dataclass
class ServerError:
    server: str
    state: str
    role: str
    app: str
    message: str


@dataclass
class RoleRun:
    role: str
    primary: list[PostgresSnapshot]
    standby: list[PostgresSnapshot]
    advice: list[AdviceReport]
    cli: subprocess.CompletedProcess[str]
    log_records: list[str]  # dbpulse's own WARNING and ERROR lines
    server_errors: list[ServerError]


@dataclass
class Managed:
    major: str
    pair: Pair
    runs: dict[str, RoleRun]

    @property
    def major_num(self) -> int:
        return int(self.major)


def set_log_prefix(server: LocalPostgres) -> None:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f"ALTER SYSTEM SET log_line_prefix = {LOG_PREFIX}".encode())
        conn.execute("SELECT pg_reload_conf()")
        wait_for("the new log_line_prefix", lambda: "%e" in str(one(conn, "SHOW log_line_prefix")))


def server_errors(server: LocalPostgres, name: str, start: int, roles: tuple[str, ...]) -> list[ServerError]:
    """The ERROR and FATAL lines the server logged since byte ``start`` for sessions of ``roles``."""
    with server.logfile.open("rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    out = []
    for line in text.splitlines():
        m = _LOG_LINE.match(line)
        if m and m["role"] in roles:
            out.append(ServerError(name, m["state"], m["role"], m["app"], m["message"]))
    return out


def log_size(server: LocalPostgres) -> int:
    return server.logfile.stat().st_size


def make_admin_databases(p: Pair) -> None:
    """The cloud admin databases as the providers make them: present, and not open to other roles."""
    with p.connect(p.primary) as conn:
        for name in cloud.ADMIN_DATABASES:
            conn.execute(f"CREATE DATABASE {name}".encode())
            conn.execute(f"REVOKE CONNECT ON DATABASE {name} FROM PUBLIC".encode())


def make_roles(p: Pair) -> None:
    roles = roles_of(p.version_num)
    with p.connect(p.primary) as conn:
        for role in roles:
            conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'".encode())
            for grant in GRANTS[role]:
                conn.execute(grant.format(role=role).encode())
    with p.connect(p.standby) as conn:
        wait_for("the roles and grants on the standby", lambda: one(
            conn, "SELECT count(*) FROM pg_roles WHERE rolname = ANY(%s)", (roles,)) == len(roles)
            and one(conn, f"SELECT has_sequence_privilege('{DOCUMENTED}', 'wide_seq', 'SELECT')"))


async def poll_times(poller: PostgresPoller, times: int) -> list[PostgresSnapshot]:
    try:
        return [await poller.poll() for _ in range(times)]
    finally:
        await poller.close()


def role_dsn(server: LocalPostgres, role: str) -> str:
    return server.dsn(user=role, password=PASSWORD)


def every_read_each_poll() -> dict[str, Any]:
    return {"maintenance_interval": 0, "sequence_interval": 0, "size_interval": 0}


async def poll_both(p: Pair, role: str, times: int) -> tuple[list[PostgresSnapshot], list[PostgresSnapshot]]:
    primary = pg_poller(role_dsn(p.primary, role), name=f"{role}-primary", expected_standbys=1,
                        **every_read_each_poll())
    standby = pg_poller(role_dsn(p.standby, role), name=f"{role}-standby", **every_read_each_poll())
    return await asyncio.wait_for(asyncio.gather(poll_times(primary, times), poll_times(standby, times)), 120)


def run_cli(dsn: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return subprocess.run([str(Path(sys.executable).parent / "dbpulse"), "advise", "--postgres", f"managed={dsn}",
                           "--format", "json", "--min-table-rows", "100"],
                          capture_output=True, text=True, timeout=300, env=env, check=False)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.levelname} {record.getMessage()}")


def run_roles(p: Pair) -> dict[str, RoleRun]:
    """Both roles' polls while the trouble is live (lock waits, paused replay, a running VACUUM), then their
    advisor runs; each role's log lines are those naming its targets."""
    roles = roles_of(p.version_num)
    starts = {"primary": log_size(p.primary), "standby": log_size(p.standby)}
    handler = _Lines()
    dbpulse_log = logging.getLogger("dbpulse")
    dbpulse_log.addHandler(handler)
    try:
        with live_trouble(p):
            polled = {role: asyncio.run(poll_both(p, role, POLLS)) for role in roles}
        advice = {role: [advisor.run(), advisor.run()] for role, advisor in (
            (role, Advisor(role_dsn(p.primary, role), role, Thresholds(min_table_rows=100,
                                                                       unused_min_stats_age_seconds=0)))
            for role in roles)}
    finally:
        dbpulse_log.removeHandler(handler)
    cli = {role: run_cli(role_dsn(p.primary, role)) for role in roles}
    runs = {}
    for role in roles:
        errors = [e for name, server in (("primary", p.primary), ("standby", p.standby))
                  for e in server_errors(server, name, starts[name], (role,))]
        lines = [line for line in handler.lines if role in line]
        runs[role] = RoleRun(role, *polled[role], advice[role], cli[role], lines, errors)
    return runs


@pytest.fixture(scope="module", params=SUPPORTED_MAJORS)
def managed(request: pytest.FixtureRequest) -> Iterator[Managed]:
    major = str(request.param)
    with pair(major) as p:
        make_admin_databases(p)
        make_roles(p)
        for server in (p.primary, p.standby):
            set_log_prefix(server)
        yield Managed(major, p, run_roles(p))


def permission_problems(run: RoleRun) -> list[str]:
    """Every sign of a permission error in a run: counted query errors, dbpulse's log, the server's log, the
    advisor's notes and the CLI's output."""
    out = []
    for snap in (*run.primary, *run.standby):
        out += [f"{snap.target}: {q} failed {n}x" for q, n in snap.query_errors.items() if n]
    out += [line for line in run.log_records if any(w in line.lower() for w in _PERMISSION_WORDS)]
    out += [f"{e.server} {e.app} {e.state}: {e.message}" for e in run.server_errors
            if e.state in PERMISSION_STATES or any(w in e.message.lower() for w in _PERMISSION_WORDS)]
    notes = [n for report in run.advice for n in report.notes]
    out += [f"advisor note: {n}" for n in notes if "must be superuser" in n or "permission denied for function" in n]
    out += [f"dbpulse advise: {line}" for line in run.cli.stderr.splitlines()
            if any(w in line.lower() for w in _PERMISSION_WORDS)]
    return out


def documented_roles(managed: Managed) -> list[RoleRun]:
    return [run for role, run in managed.runs.items() if role != MONITOR_ONLY]


def test_the_documented_roles_have_no_permission_error(managed: Managed) -> None:
    for run in documented_roles(managed):
        assert permission_problems(run) == [], run.role
        assert run.cli.returncode == 0, run.cli.stderr
        # Not one statement of the collector refused to the role for any reason.
        assert [e for e in run.server_errors if e.app == "dbpulse"] == [], run.role


def version_features_off(major: int) -> list[str]:
    return (["hypopg"] if major != 15 else []) + (["io"] if major < 16 else [])


def test_the_documented_roles_read_every_area(managed: Managed) -> None:
    assert len(documented_roles(managed)) == (2 if managed.major_num >= 14 else 1)
    for run in documented_roles(managed):
        for snap in (run.primary[-1], run.standby[-1]):
            off = sorted(f for f, on in snap.features.items() if not on)
            assert off == version_features_off(managed.major_num), (snap.target, snap.health and snap.health.problems)
        health = run.primary[-1].health
        assert health is not None and health.locks.blockers  # the lock reads ran: someone waited
        assert health.wal is not None and health.wal.pending_segments is not None  # pg_ls_archive_statusdir()
        assert health.sequences and health.bloat and health.bloat.tables
        standby = run.standby[-1].health
        assert standby is not None and standby.replication is not None and standby.replication.receiver is not None
        report = run.advice[-1]
        assert [f for f in report.findings if f.kind == "missing_index" and f.table == "public.orders"], run.role
        # Only the superuser's own statements (pg_switch_wal(), pg_reload_conf() ...) are beyond the role.
        refused = {s.query: s.reason for s in report.skipped if s.category == "privilege"}
        assert refused and all("EXECUTE on function" in reason for reason in refused.values()), refused


def test_pg_monitor_alone_turns_features_off_with_their_reason(managed: Managed) -> None:
    """Without SELECT, sequences and bloat are off, with the grant to make in the reason; the advisor lists what
    it could not plan and why (unplannable, reason privilege); no error anywhere."""
    run = managed.runs[MONITOR_ONLY]
    assert permission_problems(run) == []
    assert run.cli.returncode == 0, run.cli.stderr
    for snap in (run.primary[-1], run.standby[-1]):
        off = sorted(f for f, on in snap.features.items() if not on)
        assert off == sorted(["bloat", "sequences", *version_features_off(managed.major_num)]), snap.target
        assert snap.health is not None
        for feature in ("bloat", "sequences"):
            assert "SELECT" in str(snap.health.problems[feature])
    report = run.advice[-1]
    assert not [f for f in report.findings if f.kind == "missing_index" and f.table == "public.orders"]
    assert any("SELECT on table" in s.reason for s in report.skipped if s.category == "privilege")


# Wraparound is the whole cluster's: an admin database's XID age stays (cloud.py says why).
WRAPAROUND = {"dbpulse_pg_database_frozen_age", "dbpulse_pg_database_wraparound_ratio"}


def test_cloud_admin_databases_are_in_no_metric_but_wraparound(managed: Managed) -> None:
    admin = set(cloud.ADMIN_DATABASES)
    for run in managed.runs.values():
        for snap in (run.primary[-1], run.standby[-1]):
            named = {s.name for s in snap.samples() if set(s.labels) & admin}
            assert named == WRAPAROUND, snap.target  # they exist, and are seen only there
            assert snap.databases and not {d.datname for d in snap.databases} & admin
            assert snap.health and snap.health.replication
            assert not {c.datname for c in snap.health.replication.conflicts} & admin


# --- the checks above can fail: plant superuser-only calls and see them reported -------------------------------

PLANTED_COLLECTOR = Query(queries.FROZEN_AGES.name, {
    130000: "SELECT 'postgres' AS datname, 1::float8 AS xid_age, 1::float8 AS mxid_age FROM pg_stat_file('PG_VERSION')",
}, feature=queries.FROZEN_AGES.feature)
PLANTED_ADVISOR = "SELECT /* dbpulse_advisor */ count(*), now() FROM pg_ls_dir('.')"


def test_a_planted_superuser_call_is_caught(managed: Managed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queries, "FROZEN_AGES", PLANTED_COLLECTOR)
    monkeypatch.setattr(advisor_catalog, "STATS_RESET_SQL", PLANTED_ADVISOR)
    p = managed.pair
    starts = {"primary": log_size(p.primary), "standby": log_size(p.standby)}
    primary, standby = asyncio.run(poll_both(p, DOCUMENTED, 1))
    with contextlib.suppress(psycopg.Error):  # the catalog read fails: the run with it
        Advisor(role_dsn(p.primary, DOCUMENTED), "managed", Thresholds(min_table_rows=100)).run()
    errors = [e for name, server in (("primary", p.primary), ("standby", p.standby))
              for e in server_errors(server, name, starts[name], (DOCUMENTED,))]
    run = RoleRun(DOCUMENTED, primary, standby, [], subprocess.CompletedProcess([], 0, "", ""), [], errors)
    found = permission_problems(run)
    assert f"{DOCUMENTED}-primary: frozen_ages failed 1x" in found
    assert f"{DOCUMENTED}-standby: frozen_ages failed 1x" in found
    assert any("dbpulse " in f and "pg_stat_file" in f for f in found), found
    assert any("dbpulse-advisor" in f and "pg_ls_dir" in f for f in found), found
    assert primary[0].features["wraparound"] is False
