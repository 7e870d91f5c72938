"""Server-drawn SVG charts: gaps break the line, thresholds are drawn, every text is escaped."""

from __future__ import annotations

import re

from collectors.base.poller import Poller, Snapshot
from collectors.base.samples import Sample
from monitor.core.history import History
from monitor.core.scheduler import SourceState
from monitor.core.units import in_unit
from monitor.web import thresholds
from monitor.web.charts import Chart, Line, gaps, svg
from monitor.web.trends import RECORDED, charts_of

HOSTILE = "<script>alert(1)</script>"


def chart(values: list[float | None], title: str = "t", unit: str = "count", label: str = "x", key: str = "",
          threshold: float | None = None, threshold_label: str = "", ceiling: float | None = None,
          ceiling_label: str = "", down: list[tuple[float, float]] | None = None) -> Chart:
    times = [float(i) for i in range(len(values))]
    return Chart(title=title, unit=unit, lines=[Line(label, times, values)], window=(0.0, max(len(values) - 1, 1)),
                 threshold=threshold, threshold_label=threshold_label, ceiling=ceiling, ceiling_label=ceiling_label,
                 key=key, down=down or [])


def test_a_missing_value_breaks_the_line_in_two() -> None:
    drawn = svg(chart([1, 2, None, 3, 4]))
    assert drawn.count("<polyline") == 2
    assert 'data-points="4"' in drawn


def test_a_lone_point_between_gaps_is_a_dot() -> None:
    assert svg(chart([None, 5, None])).count("<circle") == 1


def test_down_spans_are_shaded_and_counted() -> None:
    drawn = svg(chart([1, None, None, 2], down=[(0.0, 3.0)]))
    assert drawn.count('<rect class="gap"') == 1 and 'data-gaps="1"' in drawn


def test_threshold_and_ceiling_are_drawn_with_their_names() -> None:
    drawn = svg(chart([1, 2, 3], threshold=8.0, threshold_label="alert X", ceiling=10.0, ceiling_label="max"))
    assert '<line class="threshold"' in drawn and "alert X 8" in drawn
    assert '<line class="ceiling"' in drawn and "max 10" in drawn


def test_every_text_is_escaped() -> None:
    drawn = str(svg(chart([1, 2], title=HOSTILE, label=HOSTILE, key=HOSTILE)))
    assert "<script" not in drawn and "&lt;script&gt;" in drawn


def test_an_empty_chart_says_so() -> None:
    drawn = svg(Chart(title="t", unit="ratio", lines=[], window=(0, 1)))
    assert "no data yet" in drawn and "<polyline" not in drawn


def test_a_ratio_axis_zooms_in_only_when_every_value_is_high() -> None:
    def axis(values: list[float | None]) -> list[str]:
        drawn = str(svg(chart(values, unit="ratio")))
        return re.findall(r'text-anchor="end" dominant-baseline="middle">([^<]+)<', drawn)
    assert axis([0.97, 0.99]) == ["80.0 %", "90.0 %", "100.0 %"]
    assert axis([0.2, 0.99]) == ["0.0 %", "50.0 %", "100.0 %"]


def test_units_read_as_people_write_them() -> None:
    assert in_unit(0.953, "ratio") == "95.3 %"
    assert in_unit(3 * 1024 * 1024, "bytes") == "3.0 MB"
    assert in_unit(0.0042, "seconds") == "4.20 ms"  # as the pages write it (monitor/core/units.py)
    assert in_unit(1234.0, "/s") == "1,234 /s"
    assert in_unit(None, "count") == "\N{EN DASH}"


def test_gaps_run_from_the_last_good_poll_to_the_next() -> None:
    assert gaps([0, 1, 2, 3, 4], [True, False, False, True, True]) == [(0, 3)]
    assert gaps([0, 1, 2], [True, True, False]) == [(1, 2)]


class _Named(Poller):
    def __init__(self, source: str, interval: float = 1.0) -> None:
        self.source, self.target, self.interval, self.timeout = source, "t", interval, 0.5

    async def poll(self) -> Snapshot:  # pragma: no cover - the charts never poll
        raise NotImplementedError


def _state(source: str, polls: list[list[Sample] | None]) -> SourceState:
    state = SourceState(_Named(source), History(10, RECORDED))
    for i, samples in enumerate(polls):
        state.history.record(1000.0 + i, samples)
    return state


def test_postgres_charts_sum_connections_by_state_and_scale_the_threshold_to_max() -> None:
    def poll(active: float) -> list[Sample]:
        return [Sample("dbpulse_pg_max_connections", ("t",), 100),
                Sample("dbpulse_pg_connections", ("t", "db", "active", "api"), active),
                Sample("dbpulse_pg_connections", ("t", "db", "active", "worker"), 2),
                Sample("dbpulse_pg_connections", ("t", "db", "idle", "api"), 5)]
    state = _state("postgres", [poll(1), None, poll(3)])
    (connections,) = [c for c in charts_of(state, {"datname": "db"}) if c.key.endswith(":connections")]
    assert connections.threshold == 80 and connections.ceiling == 100
    assert {line.label: line.values for line in connections.lines} == {"active": [3, None, 5], "idle": [5, None, 5]}
    assert connections.down == [(1000.0, 1002.0)]


def test_redis_charts_are_rates_of_counters_and_memory_against_maxmemory() -> None:
    def poll(commands: float) -> list[Sample]:
        return [Sample("dbpulse_redis_commands_processed_total", ("t",), commands),
                Sample("dbpulse_redis_memory_used_bytes", ("t",), 50),
                Sample("dbpulse_redis_memory_max_bytes", ("t",), 100)]
    charts = {c.key.rsplit(":", 1)[1]: c for c in charts_of(_state("redis", [poll(10), poll(30), poll(60)]))}
    assert charts["ops"].lines[0].values == [None, 20, 30]
    memory = thresholds.by_alert("RedisMemoryNearMax").value
    assert charts["memory"].ceiling == 100 and charts["memory"].threshold == 100 * memory


def test_replication_lag_is_charted_per_standby_only_where_there_are_standbys() -> None:
    def poll(lag: float) -> list[Sample]:
        return [Sample("dbpulse_pg_replication_lag_bytes", ("t", "standby-1", "replay"), lag),
                Sample("dbpulse_pg_replication_lag_bytes", ("t", "standby-1", "write"), lag / 2)]
    drawn = charts_of(_state("postgres", [poll(1e6), poll(3e6)]), {"datname": "db"})
    keys = {c.key.rsplit(":", 1)[1]: c for c in drawn}
    lag = keys["replication-lag"]
    assert [(line.label, line.values) for line in lag.lines] == [("standby-1", [1e6, 3e6])]  # the replay stage
    assert lag.threshold == thresholds.by_alert("PostgresReplicationLag").value and lag.unit == "bytes"
    alone = {c.key.rsplit(":", 1)[1] for c in charts_of(_state("postgres", [[], []]), {"datname": "db"})}
    assert "replication-lag" not in alone and "replay-lag" not in alone


def test_a_chart_per_application_pool_against_its_own_capacity() -> None:
    def poll(api: float) -> list[Sample]:
        return [Sample("dbpulse_app_pool_checked_out", ("t", "api"), api),
                Sample("dbpulse_app_pool_capacity", ("t", "api"), 10),
                Sample("dbpulse_app_pool_checked_out", ("t", "jobs"), 1),
                Sample("dbpulse_app_pool_capacity", ("t", "jobs"), 4)]
    charts = {c.key.rsplit(":", 1)[1]: c for c in charts_of(_state("health", [poll(2), poll(7)]))}
    assert [k for k in charts if k.startswith("pool-")] == ["pool-api", "pool-jobs"]
    api, jobs = charts["pool-api"], charts["pool-jobs"]
    assert api.title == "App pool api: checked out" and api.lines[0].values == [2, 7]
    assert (api.ceiling, api.threshold) == (10, 10 * thresholds.by_alert("AppPoolNearCapacity").value)
    assert (jobs.ceiling, jobs.threshold) == (4, 4 * thresholds.by_alert("AppPoolNearCapacity").value)


def test_a_threshold_that_is_a_share_of_an_unknown_limit_is_not_drawn() -> None:
    """No max_connections read yet, maxmemory 0 (no limit): neither a ceiling nor a dashed line at 0.8 or 0.9."""
    pg = [Sample("dbpulse_pg_connections", ("t", "db", "active", "api"), 3)]
    (connections,) = [c for c in charts_of(_state("postgres", [pg]), {"datname": "db"})
                      if c.key.endswith(":connections")]
    assert connections.ceiling is None and connections.threshold is None and not connections.threshold_label
    redis = [Sample("dbpulse_redis_memory_used_bytes", ("t",), 50), Sample("dbpulse_redis_memory_max_bytes", ("t",), 0)]
    memory = {c.key.rsplit(":", 1)[1]: c for c in charts_of(_state("redis", [redis]))}["memory"]
    assert memory.ceiling is None and memory.threshold is None


def test_every_declared_chart_names_a_shipped_alert_and_catalogued_metrics() -> None:
    from collectors.base.catalogue import catalogue
    from collectors.registry import sources

    for spec in sources():
        for declared in spec.charts:
            assert set(declared.metrics) <= set(catalogue()), declared
            assert not declared.threshold or declared.threshold in thresholds.by_alert(declared.threshold).alerts
