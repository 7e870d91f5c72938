"""/metrics bodies: the snapshot part is encoded once per poll (right after it, for the formats scraped before),
process metrics on every scrape."""

from __future__ import annotations

import asyncio

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from monitor.core.scheduler import Scheduler
from monitor.web.exposition import Exposition
from tests.support import pg_poller


async def test_snapshot_encoded_once_per_poll_and_valid_in_both_formats(fresh_db: str) -> None:
    scheduler = Scheduler([pg_poller(fresh_db)])
    exposition = Exposition(scheduler)
    encodes = 0
    original = exposition.snapshot.collect

    def counting_collect():  # type: ignore[no-untyped-def]
        nonlocal encodes
        encodes += 1
        return original()

    exposition.snapshot.collect = counting_collect  # type: ignore[method-assign]
    try:
        await scheduler.poll_once(scheduler.states[0])
        text, text_type = await exposition.render("")
        again = (await asyncio.gather(*(exposition.render("") for _ in range(5))))[0][0]
        assert encodes == 1
        assert text_type.startswith("text/plain")
        names = {f.name for f in text_string_to_metric_families(text.decode())}
        assert {"dbpulse_pg_up", "dbpulse_source_up", "process_resident_memory_bytes"} <= names
        assert again[:200] == text[:200]

        om, om_type = await exposition.render("application/openmetrics-text; version=1.0.0")
        assert om_type.startswith("application/openmetrics-text")
        assert om.count(b"# EOF") == 1 and om.endswith(b"# EOF\n")
        assert {"dbpulse_pg_up", "process_resident_memory_bytes"} <= {f.name for f in parse_openmetrics(om.decode())}

        await scheduler.poll_once(scheduler.states[0])  # a new poll: both formats scraped before are encoded again
        assert exposition.warming is not None
        await exposition.warming
        assert encodes == 4
        await exposition.render("")
        await exposition.render("application/openmetrics-text; version=1.0.0")
        assert encodes == 4  # the scrapes after the poll were served from the cache
    finally:
        await scheduler.stop()
        await exposition.close()
