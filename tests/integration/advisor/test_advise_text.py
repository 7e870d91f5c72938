"""``dbpulse advise`` on the demo's database, as an engineer reads it in a terminal (issue 24, "Measured" 2).

The demo's schema and seed (demo/app.py), without the demo's reset, so the set-up's utility statements
(CREATE TABLE, CREATE INDEX, ANALYZE, BEGIN ...) are in pg_stat_statements as in the report that listed
38 of them; then the demo application under its load generator for a few seconds. The text must read as
printed: no Markdown escapes, utility statements counted by type and never listed, human sizes, no "0.0 ms",
no "100% less", no "then" before a first column. On a terminal (a pseudo-terminal here) the text is the
default and coloured, without colour under NO_COLOR; into a pipe the default stays Markdown.

Timings, costs and queryids differ from run to run, so this test holds the output to those rules and to its
structure; the exact layout is held by the snapshot of tests/unit/advisor/test_terminal_report.py. The
output is kept in artifacts/advise-demo.txt.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pty
import re
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest

from demo import app as demo_app
from demo.load import run_load
from harness.servers import LocalPostgres, LocalRedis, free_port
from tests.integration.advisor.conftest import new_database
from tests.web.chromium import ARTIFACTS

# The demo's scaled thresholds (demo/stack.py): its statistics are seconds old, not weeks.
THRESHOLDS = ("--min-table-rows", "2000", "--n-plus-one-min-calls", "200", "--slow-mean-seconds", "0.01")
COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|9[0-7]|38;[0-9;]*)m")  # a foreground colour (bold is no colour)
ENV = {k: v for k, v in os.environ.items() if not k.startswith("DBPULSE_") and k not in ("NO_COLOR", "COLUMNS")}
_counter = itertools.count()


@pytest.fixture(scope="module")
def demo_db(pg_server: LocalPostgres, redis_server: LocalRedis) -> Iterator[str]:
    name = f"demo_text_{next(_counter)}"
    dsn = new_database(pg_server, name)
    sizes = demo_app.create_schema(dsn, scale=0.15)
    asyncio.run(_drive(dsn, redis_server.url(), sizes, seconds=6.0))
    yield dsn
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


async def _drive(dsn: str, redis_url: str, sizes: dict[str, int], seconds: float) -> None:
    port = free_port()
    runner = await demo_app.serve(dsn, redis_url, "127.0.0.1", port)
    stop = asyncio.Event()
    try:
        load = asyncio.create_task(run_load(f"http://127.0.0.1:{port}", stop, clients=3, sizes=sizes))
        await asyncio.sleep(seconds)
        stop.set()
        stats = await load
        assert stats.total > 50, stats
    finally:
        await runner.cleanup()


def advise(dsn: str, *extra: str) -> str:
    result = subprocess.run([sys.executable, "-m", "monitor.cli", "advise", "--postgres", f"demo={dsn}", *THRESHOLDS,
                             *extra], capture_output=True, text=True, env=ENV, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def advise_on_a_terminal(dsn: str, **env: str) -> str:
    """Run it with its output on a pseudo-terminal, as in an engineer's shell."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "advise", "--postgres", f"demo={dsn}",
                             *THRESHOLDS, "--no-hypopg"], stdout=follower, stderr=subprocess.PIPE,
                            env={**ENV, **env})
    os.close(follower)
    out = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert proc.wait(300) == 0, proc.stderr.read() if proc.stderr else ""
    return out.decode()


def test_the_text_report_on_the_demo_database_reads_as_printed(demo_db: str) -> None:
    text = advise(demo_db, "--format", "text")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "advise-demo.txt").write_text(text)
    assert text.startswith("dbpulse index advice: demo\n")
    assert "\\" not in text, [line for line in text.splitlines() if "\\" in line]
    assert "\x1b[" not in text  # a pipe gets no escape codes
    # the plan: a table of the actions, then each with its DDL and the statements it serves
    assert re.search(r"^Plan: \d+ action\(s\), run in this order", text, re.M), text[:3000]
    assert re.search(r"^#\s+action\s+index\s+saves per hour\s+statements$", text, re.M)
    assert re.search(r"^1\. create public\.\w+ \([\w, ]+\)$", text, re.M), text[:3000]
    assert re.search(r"^     CREATE INDEX CONCURRENTLY ON public\.\w+ \([\w, ]+\);$", text, re.M)
    # utility statements of the set-up: counted by type, none of them listed
    utility = re.search(r"^utility statements \(no index to advise\), by type: (.*?)$(?=\n\S*\n|\nnot planned|\n*\Z)",
                        text, re.M | re.S)
    assert utility is not None, text[-3000:]
    counts = " ".join(utility.group(1).split())
    assert re.search(r"\bCREATE TABLE 7\b", counts) and re.search(r"\bCREATE INDEX \d+", counts), counts
    assert "other" not in counts  # a leading comment does not hide the type
    rest = text.replace(utility.group(0), "")
    listed = [line for line in rest.splitlines() if re.search(r"CREATE (TABLE|INDEX ix_)|ANALYZE|^\s*BEGIN", line)]
    assert not listed, listed
    # numbers for people
    assert not re.search(r"\d{5,} bytes|\bbytes\b", text)
    assert re.search(r"size \d+\.\d (kB|MB) \(HypoPG's estimate", text)
    assert "0.0 ms" not in text and "100% less" not in text
    assert not re.search(r"column order: then\b", text)


def test_a_terminal_gets_text_by_default_coloured_unless_no_color(demo_db: str) -> None:
    coloured = advise_on_a_terminal(demo_db, TERM="xterm-256color")
    plain = COLOUR.sub("", coloured)
    assert re.sub(r"\x1b\[[0-9;]*m", "", plain).startswith("dbpulse index advice: demo")
    assert COLOUR.search(coloured), coloured[:2000]
    assert "\\" not in coloured
    assert not COLOUR.search(advise_on_a_terminal(demo_db, TERM="xterm-256color", NO_COLOR="1"))
    # into a pipe, without --format: Markdown, as before (scripts and files keep what they had)
    assert advise(demo_db, "--no-hypopg").startswith("# dbpulse index advice: demo")
