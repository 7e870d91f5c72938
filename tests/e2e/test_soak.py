"""The healthy soak, shortened: `bench.soak` at 15 times the speed (24 scenario minutes in 96 s).

A primary and a streaming standby under pgbench, Redis under cache traffic, dbpulse watching the
three, a real Prometheus evaluating the shipped rules with every window and `for:` divided by 15
(autovacuum's naptime and the advisor 15 times as often; polls and scrapes every 2 s, not 1: see
bench.soak.MIN_POLL_SECONDS). No alert may be pending at any evaluation. The full-length run is
`python -m bench.soak` (docs/alerting.md).
"""

from __future__ import annotations

import pytest

from bench.soak import Params, SoakResult, run

# Alone: its zero poll errors and zero pending alerts are about dbpulse, not about sharing 2 cores with the other
# test workers (a standby poll past its 1.6 s timeout was seen under xdist beside `make install`).
pytestmark = [pytest.mark.slow, pytest.mark.alone]



@pytest.fixture(scope="module")
def soak() -> SoakResult:
    return run(Params(minutes=24, speedup=15), log=lambda *_: None)


def test_the_system_was_busy_healthy_and_watched(soak: SoakResult) -> None:
    e = soak.evidence
    assert set(e["source_up_min"].values()) == {1.0}, e["source_up_min"]
    assert set(e["poll_errors"].values()) == {0.0}, (e["poll_errors"], e["dbpulse_log_warnings"])
    assert e["transactions_per_second"]["primary"] > 0.5 * soak.params.tps
    assert e["transactions_per_second"]["standby"] > 0.5 * soak.params.standby_tps
    assert e["connected_standbys_min"]["primary"] == 1
    assert e["redis_commands_per_second"]["cache"] > 0.5 * soak.params.redis_ops
    assert e["redis_hit_ratio"]["cache"] > 0.95
    assert not e["load"]["redis_failures"]
    # The case the old autovacuum rule paged on: hot tables past their threshold most of the time,
    # vacuumed every naptime. Without it this soak would show nothing about the new rule.
    for table in ("pgbench_branches", "pgbench_tellers"):
        assert e["autovacuum_runs"][table] >= 5, e["autovacuum_runs"]
    assert max(e["old_autovacuum_condition_share"].values()) > 0.3, e["old_autovacuum_condition_share"]


def test_no_alert_goes_pending(soak: SoakResult) -> None:
    """Every alert, the advisor's N+1 included (pgbench's key lookups have no parent statement), at every
    evaluation."""
    assert [a.line() for a in soak.alerts] == []
