"""The PgBouncer benchmark still runs (a tiny mode): dbpulse's side is measured, the admin commands it sends
are counted on the wire, and the peer is measured or its failure to run is recorded."""

from __future__ import annotations

import json
from pathlib import Path

from bench import pgbouncer_poll


def test_pgbouncer_bench(tmp_path: Path) -> None:
    r = pgbouncer_poll.main(["--databases", "2", "--clients", "2", "--polls", "4", "--results-dir", str(tmp_path)])
    assert json.loads((tmp_path / "pgbouncer_poll.json").read_text())["benchmark"] == "pgbouncer_poll"
    ours = r["dbpulse"]
    # six SHOW commands a poll, SHOW VERSION and SHOW CONFIG once in the five polls (config_interval 60 s)
    assert ours["admin_commands_per_poll"] == (6 * 5 + 2) / 5
    assert ours["series"] > 0 and ours["exposition_bytes"] > 0
    peer = r["peer"]
    assert peer["runs"] or peer["why"]
