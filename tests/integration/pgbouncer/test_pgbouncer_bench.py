"""The PgBouncer benchmark still runs (a tiny mode): dbpulse's side is measured, the admin commands it sends
are counted on the wire, and the peer is measured or its failure to run is recorded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bench import pgbouncer_poll


def test_pgbouncer_bench(tmp_path: Path) -> None:
    r = pgbouncer_poll.main(["--databases", "2", "--clients", "2", "--polls", "4", "--minutes", "1",
                             "--scrapes", "3", "--prometheus-seconds", "3", "--results-dir", str(tmp_path)])
    assert json.loads((tmp_path / "pgbouncer_poll.json").read_text())["benchmark"] == "pgbouncer_poll"
    ours = r["dbpulse"]
    # the timed polls send all seven SHOW commands; SHOW VERSION once in the five polls
    assert ours["admin_commands_per_poll"] == (7 * 5 + 1) / 5
    # at the defaults: POOLS and STATS every 15 s, CLIENTS and SERVERS every 30 s, DATABASES, LISTS, CONFIG every 60 s
    assert ours["admin_commands_per_minute"]["dbpulse_at_15s"] == 4 * 2 + 2 * 2 + 3
    assert ours["admin_commands_per_minute"]["dbpulse_at_60s"] == 7
    assert ours["series"] > 0 and ours["exposition_bytes"] > 0
    # dbpulse's service over HTTP, scraped as Prometheus scrapes: OpenMetrics, gzipped
    http = r["scrape_over_http"]
    assert http["dbpulse"]["content_type"].startswith("application/openmetrics-text")
    assert http["dbpulse"]["content_encoding"] == "gzip" and http["dbpulse"]["series"] > ours["series"]
    # the Python client's own share: its CPU a scrape, and its time against a prebuilt copy of the reply
    assert http["dbpulse"]["client_cpu_ms_per_scrape"] > 0 and http["dbpulse"]["client_floor"]["ms_median"] > 0
    prometheus = http["prometheus"]
    assert prometheus["runs"] == (shutil.which("prometheus") is not None), prometheus
    if prometheus["runs"]:  # a real Prometheus scraped dbpulse and the prebuilt copy of its reply: its own timing
        for side in ("dbpulse", "dbpulse_reply"):
            assert prometheus[side]["scrapes"] > 0 and prometheus[side]["failed"] == 0
            assert prometheus[side]["ms_median"] > 0 and prometheus[side]["series"] == http["dbpulse"]["series"]
    peer = r["peer"]
    assert peer["runs"] or peer["why"]
    if peer["runs"]:  # its four SHOW commands a scrape (LISTS, STATS, POOLS, DATABASES)
        assert peer["admin_commands_per_scrape"] == 4
        assert http["peer"]["series"] > 0 and http["ratios"]["median"] is not None
        assert ours["admin_commands_per_minute"]["peer_at_15s"] == 16
