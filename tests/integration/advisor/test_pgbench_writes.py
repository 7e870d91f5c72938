"""pgbench without primary keys, advised as the least-privilege role the README documents (pg_monitor + SELECT).

Every pgbench transaction runs ``UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2``: without
an index on ``aid`` it reads the whole table. EXPLAIN of an UPDATE needs UPDATE privilege, which that role does
not have, so the advisor plans the UPDATE through its read side (the SELECT of the same table and predicate),
and the index on ``aid`` it advises counts the UPDATE among the statements it serves. The initial load (a COPY
of 1,000,000 rows, in pg_stat_statements' window) is charged as writes, and the lookups still outweigh it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

import psycopg

from harness.servers import LocalPostgres
from monitor.advisor import Advisor

ROLE, PASSWORD = "dbpulse_pgbench", "pgbench-pw"
TRANSACTIONS_PER_CLIENT = 10  # a count, not a duration: the same workload on a loaded machine


def _pgbench(server: LocalPostgres, dsn: str, *args: str) -> None:
    """The real pgbench of the harness's PostgreSQL (a version cache holding only the server has none: PATH's)."""
    exe = server.bin / "pgbench"
    found = str(exe) if exe.exists() else shutil.which("pgbench")
    assert found, f"pgbench not found in {server.bin} nor on PATH"
    done = subprocess.run([found, *args, dsn], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_pgbench_without_keys_gets_an_aid_index_that_serves_its_updates(fresh_db: str,
                                                                        pg_server: LocalPostgres) -> None:
    _pgbench(pg_server, fresh_db, "-i", "-I", "dtgv", "-s", "10", "-q")  # drop, tables, generate, vacuum: no keys
    _pgbench(pg_server, fresh_db, "-n", "-c", "2", "-t", str(TRANSACTIONS_PER_CLIENT))
    with psycopg.connect(fresh_db, autocommit=True) as conn:  # the README's role
        conn.execute(f"DROP ROLE IF EXISTS {ROLE}")  # type: ignore[arg-type]
        conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")  # type: ignore[arg-type]
        conn.execute(f"GRANT pg_monitor TO {ROLE}")  # type: ignore[arg-type]
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {ROLE}")  # type: ignore[arg-type]
        conn.execute(f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {ROLE}")  # type: ignore[arg-type]
        conn.execute("SELECT pg_stat_force_next_flush()")
        denied = conn.execute("SELECT has_table_privilege(%s, 'pgbench_accounts', 'UPDATE')", (ROLE,)).fetchone()
    assert denied == (False,)  # the role cannot EXPLAIN the UPDATE itself
    dsn = pg_server.dsn(fresh_db.rsplit("/", 1)[1], user=ROLE, password=PASSWORD)
    try:
        done = subprocess.run([sys.executable, "-m", "monitor.cli", "advise", "--postgres", dsn, "--format", "json"],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode in (0, 1), done.stderr[-2000:]  # 1: findings to act on
        report: dict[str, Any] = json.loads(done.stdout)
        pages = Advisor(dsn, "pgbench").run().statement_plans  # what the statement pages show
    finally:
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {ROLE}")  # type: ignore[arg-type]
            conn.execute(f"DROP ROLE {ROLE}")  # type: ignore[arg-type]

    creates = [n for a in report["plan"]["actions"] for n in a.get("creates", [])]
    (aid,) = [n for n in creates if n["table"] == "public.pgbench_accounts"]
    assert aid["columns"] == ["aid"], creates
    served = {s["query"] for s in aid["statements"]}
    assert "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2" in served, served
    assert "SELECT abalance FROM pgbench_accounts WHERE aid = $1" in served, served
    assert not any("abalance" in n["columns"] for n in creates)
    # no privilege problem, and the UPDATE's plan says how it was made
    assert not [s for s in report["skipped"] if s["category"] in ("privilege", "write")], report["skipped"]
    assert not any("lack of privilege" in n for n in report["notes"]), report["notes"]
    assert any("read_side" in n and "SELECT privilege covers" in n for n in report["notes"]), report["notes"]
    update = next(s for s in aid["statements"] if s["query"].startswith("UPDATE"))
    assert "Seq Scan on pgbench_accounts" in update["plan_before_text"], update
    assert "Index" in update["plan_after_text"] and update["cost_after"] < update["cost_before"] / 10, update
    page = pages[update["queryid"]]
    assert page.startswith("Planned through its read side: SELECT "), page
    assert "WHERE aid = $2" in page.splitlines()[0], page
