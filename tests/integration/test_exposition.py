"""/metrics bodies: the snapshot part is encoded once per poll (right after it, for the formats scraped before), the
process metrics read in the background; a scrape is served the body built beforehand, gzipped when asked."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics import exposition as openmetrics_encoder
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from monitor.core.scheduler import Scheduler
from monitor.web import exposition as exposition_module
from monitor.web import openmetrics
from monitor.web.app import make_app
from monitor.web.exposition import Exposition
from tests.support import pg_poller


async def test_snapshot_encoded_once_per_poll_and_valid_in_both_formats(fresh_db: str) -> None:
    scheduler = Scheduler([pg_poller(fresh_db)])
    exposition = Exposition(scheduler)
    encodes = 0
    original = exposition.collector.samples

    def counting_samples():  # type: ignore[no-untyped-def]  # read once by each encoding, in either format
        nonlocal encodes
        encodes += 1
        return original()

    exposition.collector.samples = counting_samples  # type: ignore[method-assign]
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


PROMETHEUS = ("application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
              "text/plain;version=0.0.4;q=0.3,*/*;q=0.2")


async def test_gzipped_body_decodes_to_the_plain_body_and_changes_after_a_poll(
        fresh_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exposition_module, "PROCESS_REFRESH", 3600.0)  # the process metrics read once: comparable
    scheduler = Scheduler([pg_poller(fresh_db)])
    exposition = Exposition(scheduler)
    try:
        await scheduler.poll_once(scheduler.states[0])
        gz = await exposition.serve(PROMETHEUS, "gzip")
        plain = await exposition.serve(PROMETHEUS, "")
        assert gz.headers["Content-Encoding"] == "gzip" and "Content-Encoding" not in plain.headers
        assert gz.headers["Content-Type"] == plain.headers["Content-Type"]
        assert gz.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
        assert gzip.decompress(gz.data) == plain.data
        assert len(gz.data) < len(plain.data) / 4
        assert plain.data.count(b"# EOF") == 1 and plain.data.endswith(b"# EOF\n")

        await scheduler.poll_once(scheduler.states[0])  # a poll ended: the bodies are built again in the background
        assert exposition.warming is not None
        await exposition.warming
        gz_after, plain_after = await exposition.serve(PROMETHEUS, "gzip"), await exposition.serve(PROMETHEUS, "")
        assert plain_after.data != plain.data
        assert gzip.decompress(gz_after.data) == plain_after.data
        polls = {f.name: f for f in parse_openmetrics(plain_after.data.decode())}["dbpulse_source_polls"]
        assert [s.value for s in polls.samples if s.name == "dbpulse_source_polls_total"] == [2]
    finally:
        await scheduler.stop()
        await exposition.close()


@pytest.mark.parametrize(("accept", "content_type"), [
    (PROMETHEUS, "application/openmetrics-text; version=1.0.0"),
    ("application/openmetrics-text; version=1.0.0", "application/openmetrics-text; version=1.0.0"),
    ("text/plain;version=0.0.4;q=0.3,*/*;q=0.2", "text/plain; version=0.0.4"),
    ("", "text/plain; version=0.0.4"),
])
async def test_the_format_follows_accept_over_http(fresh_db: str, accept: str, content_type: str) -> None:
    """Through the service's app: each Accept gets its format, gzipped only when asked, parseable as such."""
    scheduler = Scheduler([pg_poller(fresh_db)])
    exposition = Exposition(scheduler)
    server = TestServer(make_app(scheduler, exposition))
    await server.start_server()
    try:
        await scheduler.poll_once(scheduler.states[0])
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            for encoding in ("gzip", ""):
                async with session.get(server.make_url("/metrics"),
                                       headers={"Accept": accept, "Accept-Encoding": encoding}) as resp:
                    assert resp.status == 200
                    assert resp.headers["Content-Type"].startswith(content_type)
                    assert resp.headers.get("Content-Encoding", "") == encoding
                    raw = await resp.read()
                text = (gzip.decompress(raw) if encoding else raw).decode()
                parse = parse_openmetrics if content_type.startswith("application/openmetrics") \
                    else text_string_to_metric_families
                assert {"dbpulse_pg_up", "process_resident_memory_bytes"} <= {f.name for f in parse(text)}
    finally:
        await server.close()
        await scheduler.stop()


async def test_process_metrics_are_read_again_while_scraped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a poll, the body's process metrics are read again every PROCESS_REFRESH seconds, in the background."""
    monkeypatch.setattr(exposition_module, "PROCESS_REFRESH", 0.05)
    exposition = Exposition(Scheduler([]))
    try:
        first = await exposition.serve(PROMETHEUS, "gzip")
        await asyncio.sleep(0.3)
        again = await exposition.serve(PROMETHEUS, "gzip")
        assert again is not first and gzip.decompress(again.data).endswith(b"# EOF\n")
        assert not exposition.warming  # no poll: only the process part was read again
    finally:
        await exposition.close()


class _Reads(Collector):
    """A live collector that counts how often it is read (as the history counters are read with the process
    metrics)."""

    def __init__(self) -> None:
        self.reads = 0

    def collect(self) -> Iterator[Metric]:
        self.reads += 1
        yield GaugeMetricFamily("dbpulse_test_reads", "times read", value=self.reads)


async def test_after_an_idle_spell_the_first_scrape_reads_the_process_metrics_again() -> None:
    """No scrape for longer than IDLE_AFTER stops the background refresh; a poll meanwhile rebuilds the bodies
    with the process metrics last read. The next scrape must not be served those: it reads them first."""
    now = [1000.0]
    reads = _Reads()
    scheduler = Scheduler([])
    exposition = Exposition(scheduler, [reads], clock=lambda: now[0])
    try:
        first = await exposition.serve(PROMETHEUS, "")
        assert b"dbpulse_test_reads 1.0" in first.data and "Accept-Encoding" in first.headers["Vary"]
        assert exposition.refreshing is not None
        exposition.refreshing.cancel()  # what IDLE_AFTER without a scrape does
        now[0] += exposition_module.IDLE_AFTER + 60
        scheduler.bump()  # a poll ends while nobody scrapes: the bodies are rebuilt, the process part is old
        assert exposition.warming is not None
        await exposition.warming
        later = await exposition.serve(PROMETHEUS, "")
        assert b"dbpulse_test_reads 2.0" in later.data, later.data[-300:]
    finally:
        await exposition.close()


def _reads_in(body: bytes) -> float:
    line = next(line for line in body.splitlines() if line.startswith(b"dbpulse_test_reads "))
    return float(line.split()[1])


async def test_scrapes_further_apart_read_the_process_metrics_once_per_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scrapes 12 PROCESS_REFRESH apart (a Prometheus every 15 s, scaled down): the process metrics are read about
    once per gap, shortly before the next scrape, not every PROCESS_REFRESH; each scrape still gets them fresh."""
    monkeypatch.setattr(exposition_module, "PROCESS_REFRESH", 0.02)
    reads = _Reads()
    exposition = Exposition(Scheduler([]), [reads])
    try:
        bodies = [await exposition.serve(PROMETHEUS, "")]
        await asyncio.sleep(0.24)
        bodies.append(await exposition.serve(PROMETHEUS, ""))  # the gap is known from here on
        before, gaps = reads.reads, 6
        for _ in range(gaps):
            await asyncio.sleep(0.24)
            bodies.append(await exposition.serve(PROMETHEUS, ""))
        assert reads.reads - before <= 2 * gaps  # every PROCESS_REFRESH would be about 12 a gap
        seen = [_reads_in(b.data) for b in bodies[1:]]
        assert seen[-1] - seen[0] >= gaps - 2, seen  # still read again between scrapes
    finally:
        await exposition.close()


async def test_the_next_background_read_is_planned_before_the_next_scrape() -> None:
    """Scrapes every 15 s: the next read is due a PROCESS_REFRESH before the next scrape; once read for it, before
    the one after; scrapes that come quicker again go back to every PROCESS_REFRESH."""
    now = [1000.0]
    exposition = Exposition(Scheduler([]), clock=lambda: now[0])
    refresh = exposition_module.PROCESS_REFRESH
    try:
        await exposition.serve(PROMETHEUS, "")
        assert exposition._next_read_in() == refresh  # one scrape: no cadence known yet
        now[0] += 15
        await exposition.serve(PROMETHEUS, "")  # read on the spot: the last read is 15 s old
        assert exposition._next_read_in() == pytest.approx(15 - refresh)
        now[0] += 15 - refresh
        exposition._read_process()  # what the background read does then
        assert exposition._next_read_in() == pytest.approx(15)  # for the scrape after the next
        now[0] += refresh
        await exposition.serve(PROMETHEUS, "")
        now[0] += 0.5
        await exposition.serve(PROMETHEUS, "")  # scrapes close together: every PROCESS_REFRESH again
        assert exposition._next_read_in() == refresh
    finally:
        await exposition.close()


async def test_a_quicker_cadence_after_a_long_gap_is_followed_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a long gap the background read is planned far ahead; scrapes that come quicker again bring it
    forward (it does not wait out the plan made for the long gap)."""
    monkeypatch.setattr(exposition_module, "PROCESS_REFRESH", 0.05)
    reads = _Reads()
    exposition = Exposition(Scheduler([]), [reads])
    try:
        await exposition.serve(PROMETHEUS, "")
        await asyncio.sleep(1.0)
        await exposition.serve(PROMETHEUS, "")  # a 1 s gap: the next read planned 0.95 s ahead
        await asyncio.sleep(0.3)
        await exposition.serve(PROMETHEUS, "")  # a 0.3 s gap: the next read is due 0.25 s from here
        read = reads.reads
        await asyncio.sleep(0.4)  # before the 0.65 s the first plan had left
        assert reads.reads > read
    finally:
        await exposition.close()


async def test_openmetrics_written_directly_is_what_prometheus_client_writes(fresh_db: str) -> None:
    """A real PostgreSQL poll's samples (statement texts, table names, every metric kind the poller has): the
    OpenMetrics body Prometheus is served is, byte for byte, prometheus_client's encoding of the same snapshot."""
    scheduler = Scheduler([pg_poller(fresh_db)])
    exposition = Exposition(scheduler)
    try:
        await scheduler.poll_once(scheduler.states[0])
        theirs = openmetrics_encoder.generate_latest(exposition.snapshot)
        assert openmetrics.encode(exposition.collector.samples()) == theirs
        served = await exposition.serve(PROMETHEUS, "")
        assert served.data.startswith(theirs.removesuffix(b"# EOF\n"))
        assert served.data.count(b"# TYPE ") > 50
    finally:
        await scheduler.stop()
        await exposition.close()
