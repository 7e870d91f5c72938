"""Benchmark: what dbpulse's pg_stat_activity wait sampler costs, at 1 s with 100 active backends.

A throwaway PostgreSQL 15 (Debian's, with pg_wait_sampling preloaded so its
collector runs in the same server: the peer) gets ``--backends`` sessions
that stay active (``pg_sleep``), each running a statement of its own query
identifier (a worst case for the sampler: one row per backend per sample).
dbpulse's sampler (``collectors/postgres/waits.ActivitySampler``, the code the
poller runs) samples every ``--interval`` seconds for ``--seconds``, in this
process, alone on its event loop. Measured over that window:

- the sampler's own CPU: this process's CPU time (the load runs in another
  process and sleeps in the server);
- database time: the CPU of the sampler's backend (``/proc/<pid>/stat``) and
  the execution time pg_stat_statements recorded for its query;
- the peer, in the same run: the CPU of pg_wait_sampling's collector process
  (it samples every backend each 10 ms, its default ``profile_period``).

Target: the sampler (client and backend) at most 1 % of one core.

Usage: .venv/bin/python -m bench.wait_sampler [--backends 100] [--seconds 60] [--interval 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import common
from collectors.postgres.waits import ActivitySampler
from harness.servers import LocalPostgres

DEBIAN_15 = Path("/usr/lib/postgresql/15/bin")
TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (a PostgreSQL backend on this machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def load(dsn: str, backends: int) -> subprocess.Popen[bytes]:
    """A process holding ``backends`` sessions active in pg_sleep, each a statement of its own queryid."""
    code = f"""
import asyncio, psycopg
async def one(i):
    conn = await psycopg.AsyncConnection.connect({dsn!r}, autocommit=True, application_name="load")
    await conn.execute("SELECT pg_sleep(86400)" + ", 1" * i)
async def main():
    await asyncio.gather(*(one(i) for i in range({backends})))
asyncio.run(main())
"""
    return subprocess.Popen([sys.executable, "-c", code])


def wait_active(dsn: str, backends: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'load' "
                               "AND state = 'active'").fetchone()
            if row is not None and row[0] >= backends:
                return
            time.sleep(0.2)
    raise RuntimeError(f"{backends} active backends not there within {timeout} s")


def pgss_ms(conn: psycopg.Connection[Any]) -> tuple[float, int]:
    row = conn.execute("SELECT coalesce(sum(total_exec_time), 0), coalesce(sum(calls), 0) FROM pg_stat_statements "
                       "WHERE query LIKE %s AND query LIKE %s", ("%dbpulse_collector%", "%wait_event_type%")).fetchone()
    assert row is not None
    return float(row[0]), int(row[1])


async def measure(dsn: str, interval: float, seconds: float, collector_pid: int) -> dict[str, Any]:
    sampler = ActivitySampler("bench", dsn, None, interval, {})
    sampler.start(150000)
    await asyncio.sleep(interval * 3)  # connected, warmed up
    session = sampler._session  # the running task's own connection
    assert session is not None and session.conn is not None
    backend = session.conn.info.backend_pid
    with psycopg.connect(dsn, autocommit=True) as conn:
        ms0, calls0 = pgss_ms(conn)
        cpu0, wall0, samples0 = time.process_time(), time.monotonic(), sampler.samples
        backend0, peer0 = proc_cpu_seconds(backend), proc_cpu_seconds(collector_pid)
        await asyncio.sleep(seconds)
        cpu1, wall1, samples1 = time.process_time(), time.monotonic(), sampler.samples
        backend1, peer1 = proc_cpu_seconds(backend), proc_cpu_seconds(collector_pid)
        ms1, calls1 = pgss_ms(conn)
    rows = sum(len(e) for e in sampler.totals.statements.values())
    await sampler.stop()
    window = wall1 - wall0
    client, server, peer = cpu1 - cpu0, backend1 - backend0, peer1 - peer0
    return {
        "window_seconds": round(window, 2),
        "samples": samples1 - samples0,
        "statements_seen": len(sampler.totals.statements),
        "statement_events": rows,
        "sampler_cpu_seconds": round(client, 4),
        "sampler_backend_cpu_seconds": round(server, 4),
        "sampler_query_ms_per_sample": round((ms1 - ms0) / max(1, calls1 - calls0), 3),
        "sampler_query_calls": calls1 - calls0,
        "sampler_share_of_one_core": round((client + server) / window, 5),
        "peer_pg_wait_sampling_collector_cpu_seconds": round(peer, 4),
        "peer_share_of_one_core": round(peer / window, 5),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3, help="windows of --seconds each; the median is reported")
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument("--no-docs", action="store_true", help="accepted for the smoke test; docs are written by hand")
    args = parser.parse_args(argv)
    server = LocalPostgres(preload=("pg_stat_statements", "pg_wait_sampling"),
                           settings={"max_connections": str(args.backends + 20)})
    server.bin = DEBIAN_15
    server.start()
    proc = None
    try:
        dsn = server.dsn()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            row = conn.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_wait_sampling collector'"
                               ).fetchone()
            assert row is not None, "pg_wait_sampling's collector is not running"
            collector_pid = int(row[0])
        proc = load(dsn, args.backends)
        wait_active(dsn, args.backends)
        rounds = [asyncio.run(measure(dsn, args.interval, args.seconds, collector_pid)) for _ in range(args.rounds)]
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        server.cleanup()
    keys = [k for k, v in rounds[0].items() if isinstance(v, float)]
    result = {**rounds[0], **{k: common.median([r[k] for r in rounds]) for k in keys}}
    result["rounds"] = rounds
    payload = {"versions": {"dbpulse": common.dbpulse_version(), "postgresql": "15 (Debian)",
                            "pg_wait_sampling": "1.1.4 (Debian)"},
               "backends": args.backends, "interval_seconds": args.interval, "median_of_rounds": args.rounds, **result,
               "target_share_of_one_core": 0.01}
    common.write_result("wait_sampler", payload, args.results_dir)
    common.print_table(["", "CPU s (median)", "share of one core"], [
        ["dbpulse sampler (client + backend)", result["sampler_cpu_seconds"] + result["sampler_backend_cpu_seconds"],
         f"{result['sampler_share_of_one_core'] * 100:.3f} %"],
        ["pg_wait_sampling collector (10 ms)", result["peer_pg_wait_sampling_collector_cpu_seconds"],
         f"{result['peer_share_of_one_core'] * 100:.3f} %"]])
    return payload


if __name__ == "__main__":
    main()
