"""A real PgBouncer poll's samples (pools, clients by application, counters, the chain's link), served as
OpenMetrics: dbpulse's own writer gives, byte for byte, what prometheus_client's encoder gives."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest

from collectors.base.samples import Sample, families
from harness.pgbouncer import LocalPgBouncer
from monitor.web import openmetrics
from tests.integration.pgbouncer.test_pgbouncer_collector import holding, poll


class _Fixed:
    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples

    def collect(self):  # type: ignore[no-untyped-def]
        yield from families(self.samples)


def test_a_pgbouncer_poll_written_as_prometheus_client_writes_it(pgbouncer: LocalPgBouncer, fresh_db: str) -> None:
    dbname = fresh_db.rsplit("/", 1)[1]
    with holding(pgbouncer, dbname, 2, app='quotes-api "v2"\\eu'):  # an application name that needs escaping
        samples = poll(pgbouncer.dsn(), config_interval=0, detail_interval=0).samples()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(samples))
    ours = openmetrics.encode(samples)
    assert ours == generate_latest(registry)
    assert b'application_name="quotes-api \\"v2\\"\\\\eu"' in ours
