"""The scheduler adds a source's joined samples (the pool chain's ratios) to its poll's own, from the other
targets' latest links; a join that fails leaves the poll up with its own samples."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest

from collectors.base.chain import Link
from collectors.base.samples import Sample
from collectors.health.body import PoolBlock
from collectors.health.snapshot import HealthSnapshot
from collectors.pgbouncer.poller import PgBouncerPoller
from collectors.pgbouncer.settings import PgBouncerSettings, PgBouncerTarget
from collectors.pgbouncer.snapshot import Database, PgBouncerSnapshot, Pool
from collectors.registry import source
from monitor.core import joined
from monitor.core.history import History
from monitor.core.scheduler import SourceState


def bouncer_snapshot() -> PgBouncerSnapshot:
    return PgBouncerSnapshot(
        target="edge", version="1.18.0", pools=[Pool("shop", "app", {"active": 2, "waiting": 0}, {"active": 2})],
        pools_other=None, stats={}, databases=[Database("shop", "db", 5432, "shop", "", 4, 0, "", 0, 2, False, False)],
        lists={}, max_client_conn=100, default_pool_size=4, clients=[], servers=[], client_connections=2,
        applications={"api": "shop"})


def states() -> list[Any]:
    """An application whose pool (3 of 10 checked out) leads to database shop: an up health target."""
    class HealthPoller:
        source, target = "health", "api"

    pool = PoolBlock(size=5, max_overflow=5, checked_out=3, checked_in=2, overflow=0)
    app = SourceState(HealthPoller(), History(2, ()), snapshot=HealthSnapshot("api", [], {}, {}, {"pool": pool}),
                      up=True)  # type: ignore[arg-type]
    bouncer = PgBouncerPoller(PgBouncerTarget(name="edge", dsn="host=b dbname=pgbouncer"), PgBouncerSettings())
    return [app, SourceState(bouncer, History(2, ()))]


def ratios(samples: Sequence[Sample]) -> dict[str, float]:
    return {s.labels[3]: s.value for s in samples if s.name == "dbpulse_pgbouncer_chain_saturation_ratio"}


def test_the_join_reads_the_up_targets_links() -> None:
    got = joined.joined_samples("pgbouncer", bouncer_snapshot(), states())
    assert ratios(got) == {"app_pool": 0.3, "pgbouncer_clients": 0.02, "pgbouncer_pool": 0.5}
    down = states()
    down[0].up = False  # a target that failed its last poll tells nothing
    assert "app_pool" not in ratios(joined.joined_samples("pgbouncer", bouncer_snapshot(), down))
    assert joined.joined_samples("redis", bouncer_snapshot(), states()) == []  # not its type, no join


def test_a_failing_join_is_logged_and_adds_nothing(monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    def broken(snap: PgBouncerSnapshot, links: Sequence[Link]) -> list[Sample]:
        raise ValueError("no such link")

    spec = source("pgbouncer")
    assert spec is not None
    monkeypatch.setattr(joined, "source", lambda name: dataclasses.replace(spec, joined_samples=broken))
    assert joined.joined_samples("pgbouncer", bouncer_snapshot(), states()) == []
    assert "joining the other targets' links failed: ValueError('no such link')" in caplog.text
