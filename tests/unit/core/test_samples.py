from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from collectors.base.samples import Sample, SampleList, families


def test_labels_follow_catalogue_order_and_none_is_skipped() -> None:
    out = SampleList(target="t1")
    out.add("dbpulse_pg_connections", 3, state="idle", datname="app", application_name="api")
    out.add("dbpulse_pg_database_cache_hit_ratio", None, datname="app")
    assert out.samples == [Sample("dbpulse_pg_connections", ("t1", "app", "idle", "api"), 3.0)]


def test_wrong_labels_and_unknown_names_fail_loudly() -> None:
    out = SampleList(target="t1")
    with pytest.raises(ValueError, match="do not match catalogue"):
        out.add("dbpulse_pg_connections", 1, datname="app")
    with pytest.raises(KeyError, match=r"not in the catalogue"):
        out.add("dbpulse_made_up", 1)


def test_common_labels_not_carried_by_a_metric_are_dropped() -> None:
    out = SampleList(target="t1", source="postgres")
    out.add("dbpulse_pg_up", 1)
    assert out.samples == [Sample("dbpulse_pg_up", ("t1",), 1.0)]


def test_samples_of_several_targets_merge_into_one_family() -> None:
    a, b = SampleList(target="a"), SampleList(target="b")
    a.add("dbpulse_pg_up", 1)
    b.add("dbpulse_pg_up", 0)
    b.add("dbpulse_pg_database_xact_commit_total", 7, datname="x")

    class Fixed(Collector):
        def collect(self):  # type: ignore[no-untyped-def]
            return families(a.samples + b.samples)

    registry = CollectorRegistry()
    registry.register(Fixed())
    text = generate_latest(registry).decode()
    assert text.count("# TYPE dbpulse_pg_up gauge") == 1
    assert 'dbpulse_pg_up{target="a"} 1.0' in text
    assert 'dbpulse_pg_up{target="b"} 0.0' in text
    assert "# TYPE dbpulse_pg_database_xact_commit_total counter" in text
    assert 'dbpulse_pg_database_xact_commit_total{datname="x",target="b"} 7.0' in text
