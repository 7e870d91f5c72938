"""dbpulse's own OpenMetrics writer (monitor/web/openmetrics.py) writes, byte for byte, what prometheus_client's
encoder writes for the same samples: escaping, float formatting, counters' names, label order, families in order
of first appearance; and Prometheus' Accept headers negotiate a content type it writes."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics import exposition as om

from collectors.base.samples import Sample, families
from monitor.web import openmetrics

ODD_VALUES = ['plain', 'quote " inside', "back\\slash", "new\nline", "ünïcødé ✓", "", "trailing\\", '\\"\n']
ODD_NUMBERS = [0.0, -0.0, 1.0, 0.1, -2.5, 1e-9, 123456789.0, 1234567.0, 1e21, 2.0**53 + 2, float("inf"),
               float("-inf"), float("nan")]


class _Fixed:
    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples

    def collect(self) -> Iterator[Metric]:
        yield from families(self.samples)


def _theirs(samples: list[Sample], escaping: str = om.UNDERSCORES) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(samples))
    return bytes(om.generate_latest(registry, escaping=escaping))


def _odd_samples() -> list[Sample]:
    samples = []
    for i, value in enumerate(ODD_VALUES):  # a gauge and a counter with two labels, out of name order
        samples.append(Sample("dbpulse_source_up", (value, f"t{i}"), ODD_NUMBERS[i % len(ODD_NUMBERS)]))
        samples.append(Sample("dbpulse_source_polls_total", ("pg", value), float(i * 1000)))
    samples += [Sample("dbpulse_build_info", ("1.2.3", value), 1.0) for value in ODD_VALUES[:3]]
    samples += [Sample("process_virtual_memory_bytes", (), number) for number in ODD_NUMBERS]
    samples.append(Sample("dbpulse_source_up", ("late", "again"), 0.0))  # joins its family, as families() does
    return samples


@pytest.mark.parametrize("escaping", [om.UNDERSCORES, om.ALLOWUTF8])
def test_the_same_bytes_as_prometheus_client(escaping: str) -> None:
    samples = _odd_samples()
    assert openmetrics.encode(samples) == _theirs(samples, escaping)


def test_no_samples_is_the_eof_alone() -> None:
    assert openmetrics.encode([]) == _theirs([]) == b"# EOF\n"


@pytest.mark.parametrize("accept", [
    # Prometheus 2.42 (Debian 12) and 2.53
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    "application/openmetrics-text; version=1.0.0",
    "application/openmetrics-text",
])
def test_prometheus_accept_headers_get_the_direct_writer(accept: str) -> None:
    encoder, content_type = choose_encoder(accept)
    assert content_type in openmetrics.CONTENT_TYPES
    assert isinstance(encoder, partial) and encoder.func is om.generate_latest  # the encoder it stands in for


@pytest.mark.parametrize("accept", ["", "text/plain;version=0.0.4",
                                    "application/openmetrics-text;version=1.0.0;escaping=dots"])
def test_other_formats_stay_with_prometheus_client(accept: str) -> None:
    assert choose_encoder(accept)[1] not in openmetrics.CONTENT_TYPES
