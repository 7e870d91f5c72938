"""``dbpulse advise`` over SQL nobody here wrote: PostgreSQL's own regression suite (tests/corpus/).

Grouping sets, aggregates in ORDER BY, window functions, row comparisons, partitioned tables, system
columns, JSON operators: every statement and candidate the parser, HypoPG or the planner refuses is
dropped and counted, the run always ends in a report, and every CREATE INDEX it prints is built for real.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest

from harness.regress_corpus import load
from harness.servers import LocalPostgres
from tests.integration.advisor.conftest import new_database


@pytest.fixture(scope="module")
def regression_dsn() -> Iterator[str]:
    """A server of its own: the suite creates roles and a tablespace, which outlive a database."""
    server = LocalPostgres()
    server.start()
    try:
        dsn = new_database(server, "regression")
        load(server, "regression")
        yield dsn
    finally:
        server.cleanup()


def _advise(dsn: str, *flags: str) -> dict:  # type: ignore[type-arg]
    done = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "advise", "--postgres", dsn, "--format", "json",
         "--min-table-rows", "0", "--unused-min-stats-age", "0", *flags],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    report: dict = json.loads(done.stdout)  # type: ignore[type-arg]
    return report


def _statements(report: dict) -> tuple[list[str], list[str]]:  # type: ignore[type-arg]
    texts = [f["ddl"] for f in report["findings"] if f.get("ddl")]
    texts += [step for a in report["plan"]["actions"] for step in a["steps"]]
    unique = list(dict.fromkeys(texts))
    return [t for t in unique if t.startswith("CREATE")], [t for t in unique if t.startswith("DROP")]


@pytest.mark.parametrize("flags", [(), ("--no-hypopg",)], ids=["hypopg", "no-hypopg"])
def test_every_printed_statement_runs_on_the_regression_suite(regression_dsn: str, flags: tuple[str, ...]) -> None:
    report = _advise(regression_dsn, *flags)
    summary = report["summary"]
    assert summary["statements_analyzed"] > 1000, summary
    assert summary["statements_skipped"] > 100, summary  # counted with their reasons, never fatal
    # ROLLUP(...), count(DISTINCT ...), ctid, (a, b) and the like never reach the server as index keys.
    assert not any(k in d.lower() for d in _statements(report)[0] for k in ("rollup(", "cube(", "count(", "ctid"))

    creates, drops = _statements(report)
    assert len(creates) >= 3, report["findings"]
    missing = [f for f in report["findings"] if f["kind"] == "missing_index"]
    column_sets = [(f["table"], frozenset(f["columns"])) for f in missing]
    assert len(column_sets) == len(set(column_sets)), "the same columns advised twice in another order"

    built: list[str] = []
    with psycopg.connect(regression_dsn, autocommit=True) as conn:
        try:
            known = ("SELECT indexrelid::regclass::text FROM pg_index WHERE indexrelid NOT IN "
                     "(SELECT inhrelid FROM pg_inherits)")  # a partition's index goes with its parent's
            for ddl in creates:  # as printed: CONCURRENTLY where the table allows it
                before = {r[0] for r in conn.execute(known).fetchall()}
                conn.execute(ddl)  # type: ignore[arg-type]
                built += [r[0] for r in conn.execute(known).fetchall() if r[0] not in before]
            for ddl in drops:  # each one would succeed (checked inside a transaction that is rolled back)
                with conn.transaction(force_rollback=True):
                    conn.execute(ddl.replace("DROP INDEX CONCURRENTLY", "DROP INDEX"))  # type: ignore[arg-type]
        finally:
            for name in built:
                conn.execute(f"DROP INDEX IF EXISTS {name}")  # type: ignore[arg-type]
    assert built, creates
