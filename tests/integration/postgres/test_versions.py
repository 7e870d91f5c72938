"""Every supported major (13-18) on a real server: every version-banded query runs, the health
collectors read every area, the advisor plans (``EXPLAIN (GENERIC_PLAN)`` on 16+, ``PREPARE`` before).

One primary and one streaming standby per major, started one major at a time (module scope),
polled once each while the scenario's trouble is live; the tests below only look at what that
poll and the advisor's run returned, so six majors cost six server pairs, not six per test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from collectors.postgres import queries, waits
from collectors.postgres.poller import PostgresPoller
from collectors.postgres.snapshot import PostgresSnapshot
from harness.servers import SUPPORTED_MAJORS
from monitor.advisor.advisor import Advisor
from monitor.advisor.findings import AdviceReport
from monitor.advisor.settings import Thresholds
from tests.integration.postgres.health_scenario import Pair, live_trouble, pair
from tests.support import pg_poller


@dataclass
class Polled:
    major: str
    version_num: int
    primary: PostgresSnapshot
    standby: PostgresSnapshot
    bands: dict[tuple[str, str], str]  # (query, primary|standby) -> "ran" | "none" (view missing) | the error
    advice: AdviceReport
    plan_texts: list[str]  # the advisor's EXPLAIN and PREPARE texts, as pg_stat_statements recorded them
    truth: dict[str, float]

    @property
    def major_num(self) -> int:
        return int(self.major)


def run_every_band(conn: psycopg.Connection[Any], version_num: int) -> dict[str, str]:
    out = {}
    for query in queries.ALL:
        name = query.name
        sql = query.sql(version_num)
        if sql is None:
            out[name] = "none"
            continue
        try:
            params = {"text_length": 40, "limit": 5, "ids": [1], "every": False, "dbid": 0}
            conn.execute(sql.encode(), params).fetchall()
            out[name] = "ran"
        except psycopg.Error as exc:
            out[name] = f"{type(exc).__name__}: {exc}"
    return out


async def poll(poller: PostgresPoller) -> PostgresSnapshot:
    try:
        return await poller.poll()
    finally:
        await poller.close()


async def poll_both(p: Pair) -> tuple[PostgresSnapshot, PostgresSnapshot]:
    primary, standby = await asyncio.wait_for(asyncio.gather(
        poll(pg_poller(p.primary.dsn(), name="primary", maintenance_interval=0, expected_standbys=1)),
        poll(pg_poller(p.standby.dsn(), name="standby", maintenance_interval=0))), 60)
    return primary, standby


def advise(p: Pair) -> tuple[AdviceReport, list[str]]:
    settings = Thresholds(min_table_rows=100, unused_min_stats_age_seconds=0)
    report = Advisor(p.primary.dsn(), "versions", settings).run()
    with p.connect(p.primary) as conn:
        texts = [r[0] for r in conn.execute(
            "SELECT query FROM pg_stat_statements WHERE query LIKE 'EXPLAIN%' OR query LIKE 'PREPARE%'").fetchall()]
    return report, texts


@pytest.fixture(scope="module", params=SUPPORTED_MAJORS)
def polled(request: pytest.FixtureRequest) -> Iterator[Polled]:
    major = str(request.param)
    with pair(major) as p:
        with live_trouble(p):
            primary, standby = asyncio.run(poll_both(p))
        bands: dict[tuple[str, str], str] = {}
        for role, server in (("primary", p.primary), ("standby", p.standby)):
            with p.connect(server) as conn:
                bands |= {(name, role): result for name, result in run_every_band(conn, p.version_num).items()}
        advice, plan_texts = advise(p)
        yield Polled(major, p.version_num, primary, standby, bands, advice, plan_texts, p.truth)


def test_every_version_banded_query_runs(polled: Polled) -> None:
    failed = {key: result for key, result in polled.bands.items() if result not in ("ran", "none")}
    assert not failed, failed
    missing = sorted(name for (name, role), result in polled.bands.items() if result == "none" and role == "primary")
    expected = (["io"] if polled.major_num < 16 else []) + (["statements_reset"] if polled.major == "13" else [])
    assert missing == expected
    assert polled.primary.server_version.startswith(f"{polled.major}.")


def test_the_poll_read_every_area_without_an_error(polled: Polled) -> None:
    for snap in (polled.primary, polled.standby):
        assert snap.query_errors == {q.name: 0 for q in (*queries.ALL, *waits.ALL)}  # each counted from the start
        off = sorted(f for f, on in snap.features.items() if not on)
        expected = (["hypopg"] if polled.major != "15" else []) + (["io"] if polled.major_num < 16 else [])
        expected += ["wait_statements"] if polled.major == "13" else []  # no pg_stat_activity.query_id
        assert off == expected, (snap.target, off, snap.health and snap.health.problems)
    names = {s.name for s in polled.primary.samples()} | {s.name for s in polled.standby.samples()}
    assert not {n for n in health_metric_names() if n not in names} - version_only(polled.major_num)


def health_metric_names() -> set[str]:
    from collectors.base.catalogue import catalogue

    sections = ("replication", "replay", "wal_receiver", "database_conflicts", "frozen", "wraparound", "freeze",
                "autovacuum", "vacuum", "tables_autovacuum", "lock_", "archiver", "checkpoint", "buffers_written",
                "bgwriter", "wal_", "io_", "sequence_used", "bloat", "active_query", "in_recovery")
    return {n for n in catalogue() if n.startswith("dbpulse_pg_") and any(f"dbpulse_pg_{s}" in n for s in sections)}


def version_only(major: int) -> set[str]:
    """Metrics a version cannot have: pg_stat_wal (14+), pg_stat_io (16+)."""
    out = set()
    if major < 14:
        out |= {"dbpulse_pg_wal_records_total", "dbpulse_pg_wal_full_page_images_total",
                "dbpulse_pg_wal_buffers_full_total"}
    if major < 16:
        out |= {"dbpulse_pg_io_bytes_total", "dbpulse_pg_io_seconds_total", "dbpulse_pg_io_hits_total",
                "dbpulse_pg_io_evictions_total"}
    return out


def test_replication_from_both_sides(polled: Polled) -> None:
    primary, standby = polled.primary.health, polled.standby.health
    assert primary is not None and standby is not None
    rp, rs = primary.replication, standby.replication
    assert rp is not None and rs is not None
    assert not rp.in_recovery and rs.in_recovery
    (sender,) = rp.worst_senders()
    assert (rp.connected_standbys, rp.expected_standbys, rp.gone) == (1, 1, [])
    assert (sender.standby, sender.state) == ("standby", "streaming")
    assert (sender.replay_lag_bytes or 0) > (sender.flush_lag_bytes or 0) >= 0  # replay is paused, flushing is not
    assert rs.replay_paused is True and (rs.replay_backlog_bytes or 0) > 0 and rs.receiver_streaming == 1
    slots = {s.slot_name: s for s in rp.slots}
    assert slots["standby"].active and not slots["abandoned"].active and not slots["idle_logical"].active
    assert (slots["abandoned"].retained_bytes or 0) > 0 and slots["idle_logical"].slot_type == "logical"
    assert slots["idle_logical"].confirmed_lag_bytes is not None and slots["abandoned"].wal_status == "reserved"
    assert {c.datname for c in rs.conflicts} >= {"postgres"}


def test_vacuum_and_wraparound(polled: Polled) -> None:
    snap = polled.primary
    v = snap.health.vacuum if snap.health else None
    assert v is not None
    assert v.freeze_max_age == 200_000_000 and v.max_workers == 3
    assert v.naptime_seconds == 3600  # HEALTH_SETTINGS, in seconds whatever unit the setting is written in
    assert {d.datname for d in v.databases} >= {"postgres", "template0", "template1"}
    assert all(d.xid_age > 0 for d in v.databases)
    assert v.oldest_tables and v.oldest_tables[0].xid_age >= v.oldest_tables[-1].xid_age
    (vacuum,) = [r for r in v.running if r.relation == "slow"]
    assert vacuum.mode == "manual" and vacuum.heap_blks_total and (vacuum.running_seconds or 0) >= 1
    due = next(t for t in snap.tables if t.table == "due")
    # 10 + 0.01 x 1000 reltuples; 18 caps it at the table's autovacuum_vacuum_max_threshold (15)
    assert due.vacuum_threshold == (15 if polled.major_num >= 18 else 20) and due.dead_rows == 100 and due.vacuum_due
    assert v.vacuum_due >= 1 and v.autovacuum_disabled >= 2  # due; bloated and clean have it off


def test_locks_show_the_root_of_the_chain(polled: Polled) -> None:
    locks = polled.primary.health.locks if polled.primary.health else None
    assert locks is not None
    (root,) = locks.blockers
    # waiter2 queues behind waiter1 (a tuple lock), not behind the holder: only the walk finds the root
    assert (root.application_name, root.state) == ("holder", "idle in transaction")
    assert (root.blocked_directly, root.blocked_total) == (1, 2)
    assert sum(w.waiting for w in locks.waits) >= 2 and locks.longest_wait_seconds > 0
    assert {w.locktype for w in locks.waits} >= {"transactionid"}


def test_wal_checkpoints_archiver_and_io(polled: Polled) -> None:
    wal = polled.primary.health.wal if polled.primary.health else None
    assert wal is not None
    r = wal.row
    assert r.wal_bytes > 16 * 1024**2  # past the first segments (a switch happened)
    assert r.failed_count >= 1 and r.archived_count >= 1 and not wal.archiver_failing
    assert wal.pending_segments is not None and r.buffers_backend is not None
    assert (r.wal_records is not None) == (polled.major_num >= 14)
    if polled.major_num >= 16:
        assert any((io.read_bytes or 0) + (io.write_bytes or 0) + (io.extend_bytes or 0) > 0 for io in wal.io)
    else:
        assert wal.io == []


def test_sequences_count_the_columns_they_feed(polled: Polled) -> None:
    seqs = {s.sequence: s.used_ratio for s in (polled.primary.health.sequences or [])} if polled.primary.health else {}
    assert seqs["wide_seq"] == pytest.approx(2_000_000_001 / 2_147_483_647, rel=1e-6)  # bigint behind an int4
    assert seqs["tiny_id_seq"] == pytest.approx((100 - 1) / (32767 - 1), rel=1e-6)  # from its start, 1


def test_bloat_estimates_track_the_real_bloat(polled: Polled) -> None:
    bloat = polled.primary.health.bloat if polled.primary.health else None
    assert bloat is not None
    tables = {b.table: b for b in bloat.tables}
    indexes = {b.index: b for b in bloat.indexes}
    assert tables["bloated"].bloat_ratio == pytest.approx(polled.truth["bloated"], abs=0.10)
    assert indexes["bloated_n"].bloat_ratio == pytest.approx(polled.truth["bloated_n"], abs=0.10)
    assert indexes["bloated_pkey"].bloat_ratio == pytest.approx(polled.truth["bloated_pkey"], abs=0.10)
    assert (tables["clean"].bloat_ratio or 0) < 0.05 and (indexes["clean_pkey"].bloat_ratio or 0) < 0.10


def test_statement_depth_and_long_queries(polled: Polled) -> None:
    snap = polled.primary
    assert snap.track_planning and any(s.plan_seconds > 0 for s in snap.statements)
    assert any(s.temp_blks_written > 0 for s in snap.statements)
    assert any(s.wal_bytes > 0 for s in snap.statements)
    assert dict(snap.longest_active)["vacuumer"] >= 1


def test_attention_lists_the_trouble_worst_first(polled: Polled) -> None:
    items = polled.primary.attention
    problems = {(a.area, a.subject) for a in items}
    assert ("replication", "physical slot abandoned") in problems
    assert ("sequences", "sequence public.wide_seq") in problems
    assert any(a.area == "locks" and "holder" in a.subject for a in items)
    ranks = [health_rank(a.severity) for a in items]
    assert ranks == sorted(ranks)
    standby_items = {(a.area, a.problem) for a in polled.standby.attention}
    assert ("replication", "replay is paused") in standby_items


def health_rank(severity: str) -> int:
    return {"critical": 0, "warning": 1, "info": 2}[severity]


def test_the_advisor_plans_on_every_version(polled: Polled) -> None:
    report = polled.advice
    (finding,) = [f for f in report.findings if f.kind == "missing_index" and f.table == "public.orders"]
    assert report.verification.explains > 0
    generic = [t for t in polled.plan_texts if "GENERIC_PLAN" in t]
    prepared = [t for t in polled.plan_texts if t.startswith("PREPARE")]
    if polled.major_num >= 16:
        assert generic and not prepared
    else:
        assert prepared and not generic
    if polled.major == "15":  # HypoPG is installable here (Debian's postgresql-15-hypopg)
        assert report.verification.mode == "hypopg" and finding.verified == "hypopg"
    else:
        assert report.verification.mode == "heuristic" and finding.verified == "heuristic"
        (note,) = [n for n in report.notes if n.startswith("HypoPG verification unavailable")]
        assert ("GENERIC_PLAN" in note) == (polled.major_num >= 16)
        assert finding.cost_before and finding.cost_before > 0

