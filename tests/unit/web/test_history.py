"""History from Prometheus, the parts that need no Prometheus: the settings, the query (PromQL, step, window),
the answer's parsing, and the fall back to memory on answers a real Prometheus does not give (not JSON, a
proxy's error page), served by a real local HTTP server."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web

from monitor.cli import _run_flags, build_parser
from monitor.config import ConfigError, validate
from monitor.prometheus_settings import PrometheusSettings
from monitor.web.charts import Chart, Line, svg
from monitor.web.history import HistoryReader, PrometheusClient, Shown
from monitor.web.history_query import (
    RANGES,
    HistoryError,
    RangeSeries,
    Window,
    lines_of,
    on_grid,
    parse_matrix,
    promql_string,
    range_of,
    rate_window,
    statement_queries,
    step_for,
    table_queries,
    window_for,
)

TARGET = {"postgres": {"targets": [{"dsn": "postgresql:///shop"}]}}


def problems(prometheus: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate({**TARGET, "prometheus": prometheus}, "dbpulse.yaml", environment={})
    assert info.value.source == "dbpulse.yaml"
    return [str(p) for p in info.value.problems]


# --- settings ------------------------------------------------------------------------------------------------
def test_prometheus_is_optional_and_its_defaults() -> None:
    config = validate(TARGET, "x")
    assert config.prometheus.url is None and config.prometheus.timeout == 2.0
    config = validate({**TARGET, "prometheus": {"url": "http://prom:9090/"}}, "x")
    assert config.prometheus.url == "http://prom:9090"


def test_bad_prometheus_settings_name_the_key(tmp_path: Path) -> None:
    assert problems({"url": "prom:9090"}) == [
        "prometheus.url: must be an http:// or https:// base URL without a query, e.g. http://prometheus:9090"]
    assert problems({"url": "http://u:secret@prom:9090"}) == [
        "prometheus.url: must not hold a password: use basic_auth.password_env or basic_auth.password_file"]
    assert problems({"urll": "http://prom"}) == ["prometheus.urll: unknown key (did you mean url?)"]
    assert problems({"timeout": 0}) == ["prometheus.timeout: Input should be greater than 0"]
    assert problems({"labels": {"job-name": "x"}}) == ["prometheus.labels: not label names: job-name"]
    assert problems({"basic_auth": {"username": "u", "password_env": "NOT_SET_ANYWHERE"}}) == [
        "prometheus.basic_auth.password_env: environment variable NOT_SET_ANYWHERE is not set"]
    missing = tmp_path / "nope.pem"
    found = problems({"tls_config": {"cert_file": str(tmp_path), "ca_file": str(missing)}})
    assert found[0].startswith(f"prometheus.tls_config.ca_file: cannot read {missing}")
    assert problems({"tls_config": {"insecure_skip_verify": True, "cert_file": __file__}}) == [
        "prometheus.tls_config: cert_file and key_file go together"]


def test_check_config_loads_the_tls_files(tmp_path: Path) -> None:
    from monitor.cli import ConfigErrors, prepare

    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate")
    config = tmp_path / "dbpulse.yaml"
    config.write_text(f"postgres: {{targets: [{{dsn: 'postgresql:///x'}}]}}\n"
                      f"prometheus: {{url: 'https://p:9090', tls_config: {{ca_file: '{not_pem}'}}}}\n")
    with pytest.raises(ConfigErrors) as info:
        prepare(config)
    (error,) = info.value.errors
    assert error.source == str(config)
    assert str(error.problems[0]).startswith("prometheus.tls_config: cannot load the CA, certificate or key: ")


def test_the_flag_and_the_shown_url() -> None:
    args = build_parser().parse_args(["run", "--postgres", "postgresql:///x", "--prometheus-url", "http://p:9090"])
    assert _run_flags(args)["prometheus"] == {"url": "http://p:9090"}
    assert PrometheusSettings(url="https://reader@p.example:9090/prom").shown_url == "https://p.example:9090/prom"


def test_password_from_a_file_is_sent_as_basic_auth(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    settings = PrometheusSettings(url="http://p:9090", basic_auth={"username": "dbpulse", "password_file": secret})
    client = PrometheusClient(settings)
    assert client._headers == {"Authorization": "Basic " + base64.b64encode(b"dbpulse:s3cret").decode()}


# --- the query -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("asked", "scrape", "step", "window"), [
    ("1h", 15, 15, "60s"),  # 3600 / 240 = 15: the scrape interval
    ("6h", 15, 90, "105s"),
    ("24h", 15, 360, "375s"),
    ("7d", 15, 2520, "2535s"),
    ("1h", 30, 30, "120s"),  # never below the scrape interval
    ("6h", 1, 90, "91s"),
])
def test_step_about_240_points_never_below_the_scrape_interval(asked: str, scrape: float, step: int,
                                                               window: str) -> None:
    assert step_for(RANGES[asked], scrape) == step
    assert rate_window(step, scrape) == window


def test_window_ends_on_a_multiple_of_its_step_at_least_one_scrape_before_now() -> None:
    window = window_for("6h", 1_000_000.7, 15)  # 999,985.7 floored to a multiple of 90
    assert (window.start, window.end, window.step, window.rate) == (999_900 - 21600, 999_900, 90, "105s")
    assert len(window.times) == 241 and window.times[-1] == window.end
    assert window_for("6h", 999_915.0, 15) == window  # the same window until end can move by a step
    assert window_for("6h", 1_000_005.0, 15).end == 999_990


def test_unknown_range_is_the_default() -> None:
    assert [range_of(r) for r in ("6h", "24h", "7d", "1h", None, "2h", "")] == ["6h", "24h", "7d", "1h", "1h", "1h",
                                                                               "1h"]


def test_queries_are_the_dashboards_promql_with_escaped_labels() -> None:
    charts = statement_queries('a"b\\c', -42)("105s", {"job": "dbpulse"})
    sel = '{job="dbpulse", target="a\\"b\\\\c", queryid="-42"}'
    calls = f"rate(dbpulse_pg_statement_calls_total{sel}[105s])"
    assert [(c.key, c.lines) for c in charts] == [
        ("calls", (("calls/s", calls),)),
        ("mean", (("mean", f"rate(dbpulse_pg_statement_exec_seconds_total{sel}[105s]) / {calls}"),)),
        ("rows", (("rows/call", f"rate(dbpulse_pg_statement_rows_total{sel}[105s]) / {calls}"),)),
    ]
    in_shop = statement_queries("main", 7, "shop")("60s", {})[0].lines
    assert in_shop == (("calls/s", 'rate(dbpulse_pg_statement_calls_total{target="main", queryid="7", '
                                   'datname="shop"}[60s])'),)
    table = table_queries("main", "public", "orders", "shop")("60s", {})
    sel = '{target="main", schema="public", table="orders", datname="shop"}'
    assert [c.lines for c in table] == [
        (("size", f"dbpulse_pg_table_size_bytes{sel}"),),
        (("seq", f"rate(dbpulse_pg_table_seq_scans_total{sel}[60s])"),
         ("index", f"rate(dbpulse_pg_table_index_scans_total{sel}[60s])")),
        (("dead rows", f"dbpulse_pg_table_dead_rows{sel}"),),
    ]
    assert promql_string("line\nbreak é") == '"line\\nbreak é"'


# --- the answer ----------------------------------------------------------------------------------------------
def matrix(*series: tuple[dict[str, str], list[tuple[float, str]]]) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": labels, "values": [[t, v] for t, v in values]} for labels, values in series]}}).encode()


def test_parse_a_matrix_nan_and_inf_are_no_value() -> None:
    found = parse_matrix(matrix(({"queryid": "1"}, [(100, "0.5"), (190, "NaN"), (280, "+Inf"), (370, "2e-3")])))
    assert found == [RangeSeries({"queryid": "1"}, [(100.0, 0.5), (190.0, None), (280.0, None), (370.0, 0.002)])]


@pytest.mark.parametrize(("body", "why"), [
    (b"<html>bad gateway</html>", "answered with something that is not JSON"),
    (b"[1, 2]", "answered with JSON that is not a query result"),
    (json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}).encode(),
     "answered with an error (bad_data: parse error at char 5)"),
    (json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode(),
     "answered with no range data (result type vector)"),
    (json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [{"values": []}]}}).encode(),
     "answered with a malformed range result"),
    (json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {}, "values": [[1, "x"]]}]}}).encode(), "answered with a malformed range result"),
])
def test_parse_errors(body: bytes, why: str) -> None:
    with pytest.raises(HistoryError) as info:
        parse_matrix(body)
    assert str(info.value) == why


def test_points_on_the_grid_missing_ones_break_the_line() -> None:
    window = Window("6h", 1000, 1360, 90, "91s")
    series = RangeSeries({}, [(1090.0, 1.0), (1270.0, 3.0), (1360.0, 4.0)])
    line = on_grid(series, window)
    assert line.times == [1000.0, 1090.0, 1180.0, 1270.0, 1360.0]
    assert line.values == [None, 1.0, None, 3.0, 4.0]
    two = lines_of("calls/s", [RangeSeries({"datname": "a", "queryid": "1"}, []),
                               RangeSeries({"datname": "b", "queryid": "1"}, [])], window)
    assert [line.label for line in two] == ["calls/s a", "calls/s b"]


def test_a_chart_from_prometheus_names_its_source_window_and_values() -> None:
    chart = Chart("calls per second", "/s", [Line("calls/s", [1000.0, 1090.0, 1180.0], [0.25, None, 1e-05])],
                  (1000.0, 1180.0), key="calls", source="prometheus", step=90)
    drawn = str(svg(chart))
    assert 'data-source="prometheus" data-window="1000 1180" data-step="90" data-values="0.25 1e-05"' in drawn
    assert 'data-points="2"' in drawn and "3 min ago" in drawn
    ring = str(svg(Chart("x", "/s", [Line("a", [1.0, 2.0], [1.0, 2.0])], (1.0, 2.0))))
    assert 'data-source="memory"' in ring and "data-values" not in ring


# --- falling back to memory on a broken answer ---------------------------------------------------------------
RING = [Chart("calls per second", "/s", [Line("calls/s", [1.0, 2.0], [3.0, 4.0])], (1.0, 2.0), key="calls")]


@pytest.fixture
async def serving() -> AsyncIterator[Callable[[web.Response], object]]:
    """A real HTTP server on a free port answering every request with (a copy of) the response set."""
    answer: list[web.Response] = []
    seen: list[web.Request] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request)
        given = answer[-1]
        return web.Response(body=given.body, status=given.status, content_type=given.content_type)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def serve(response: web.Response) -> object:
        answer.append(response)
        return {"url": f"http://127.0.0.1:{port}", "seen": seen}

    yield serve
    await runner.cleanup()


async def read(url: str, asked: str = "6h") -> tuple[list[Chart], Shown, PrometheusClient]:
    client = PrometheusClient(PrometheusSettings(url=url, scrape_interval=1, labels={"job": "dbpulse"}))
    reader = HistoryReader(client)
    try:
        charts, shown = await reader.charts(RING, statement_queries("main", 7), asked, 1_000_000.0, "main")
    finally:
        await reader.close()
    return charts, shown, client


@pytest.mark.parametrize(("response", "why"), [
    (web.Response(text="<html>oops</html>", status=200), "answered with something that is not JSON"),
    (web.Response(text="<html>bad gateway</html>", status=502), "answered HTTP 502"),
    (web.json_response({"status": "error", "errorType": "timeout", "error": "query timed out"}, status=503),
     "answered with an error (timeout: query timed out)"),
])
async def test_a_broken_answer_falls_back_to_memory_and_says_why(serving: Callable[[web.Response], object],
                                                                 response: web.Response, why: str) -> None:
    where = serving(response)
    assert isinstance(where, dict)
    charts, shown, client = await read(where["url"])
    assert charts is RING
    assert shown.failed and shown.source == "memory" and shown.range == "6h"
    assert shown.note == (f"Prometheus at {where['url']} {why}; showing the last hour kept in memory.")
    assert (client.reads, client.failures) == ({"main": 1}, {"main": 1})


async def test_a_good_answer_is_drawn_with_the_query_sent(serving: Callable[[web.Response], object]) -> None:
    end = 999_990  # 1,000,000 less one scrape, floored to a multiple of the step (90)
    body = matrix(({"queryid": "7"}, [(end - 90, "1.5"), (end, "2.5")]))
    where = serving(web.Response(body=body, content_type="application/json"))
    assert isinstance(where, dict)
    charts, shown, client = await read(where["url"])
    assert [c.key for c in charts] == ["calls", "mean", "rows"]
    assert all(c.source == "prometheus" and c.step == 90 for c in charts)
    assert [v for v in charts[0].lines[0].values if v is not None] == [1.5, 2.5]
    assert charts[0].window == (end - 21600, end)
    assert shown.source == "prometheus" and shown.note == ""
    sent = where["seen"][0].query
    assert sent["step"] == "90" and sent["end"] == str(end) and sent["start"] == str(end - 21600)
    assert sent["query"] == 'rate(dbpulse_pg_statement_calls_total{job="dbpulse", target="main", queryid="7"}[91s])'
    assert (client.reads, client.failures) == ({"main": 1}, {})


async def test_a_refresh_within_one_step_asks_prometheus_once(serving: Callable[[web.Response], object]) -> None:
    """The live page re-renders every few seconds: within a step its window is the same and its answer kept;
    once ``end`` moves by a step it asks again, and the older answer is dropped."""
    where = serving(web.Response(body=matrix(({"queryid": "7"}, [(999_990, "1.5")])),
                                 content_type="application/json"))
    assert isinstance(where, dict)
    client = PrometheusClient(PrometheusSettings(url=where["url"], scrape_interval=1, labels={"job": "dbpulse"}))
    reader = HistoryReader(client)
    queries = statement_queries("main", 7)
    try:
        first, _ = await reader.charts(RING, queries, "6h", 1_000_000.0, "main")
        again, shown = await reader.charts(RING, queries, "6h", 1_000_030.0, "main")  # end 999,990 still
        assert len(where["seen"]) == 3  # one query_range per line of the three charts, once
        assert again == first and shown.source == "prometheus"
        await reader.charts(RING, statement_queries("main", 8), "6h", 1_000_030.0, "main")
        assert len(where["seen"]) == 6  # another statement: its own queries
        moved, _ = await reader.charts(RING, queries, "6h", 1_000_091.0, "main")  # end 1,000,080
        assert len(where["seen"]) == 9
        assert {r.query["end"] for r in where["seen"][6:]} == {"1000080"}
        assert moved[0].window == (1_000_080 - 21600, 1_000_080)
        assert len(reader.cache) == 2  # statement 7's older end dropped
        assert client.reads == {"main": 3}  # pages that asked Prometheus, not those drawn from the kept answer
    finally:
        await reader.close()


async def test_the_default_range_and_no_prometheus_draw_memory() -> None:
    reader = HistoryReader(None)
    charts, shown = await reader.charts(RING, statement_queries("main", 7), "6h", 0.0, "main")
    assert charts is RING and not shown.offered and not shown.failed
    assert shown.note == "Ranges beyond the last hour kept in memory need Prometheus (prometheus.url); showing the " \
                         "last hour."
    client = PrometheusClient(PrometheusSettings(url="http://127.0.0.1:9"))
    charts, shown = await HistoryReader(client).charts(RING, statement_queries("main", 7), None, 0.0, "main")
    assert charts is RING and shown.offered and shown.note == "" and not client.reads


# --- the main page over a range ------------------------------------------------------------------------------
def test_a_range_frame_draws_the_declared_charts_from_series_read_elsewhere() -> None:
    """Per-pool charts (``each``), their ceilings from the ring (the current capacity), lines added up per label
    value (connections by state), counters already per second (transactions), the section's database only."""
    from collectors.base.samples import Sample
    from collectors.registry import source
    from monitor.core.history import Series
    from monitor.web.trends import RangeFrame, charts_of, read_by
    from tests.unit.web.test_charts import _state

    assert read_by(source("postgres"))[:3] == [("dbpulse_pg_database_cache_hit_ratio", False),  # type: ignore[arg-type]
                                               ("dbpulse_pg_database_xact_commit_total", True),
                                               ("dbpulse_pg_database_xact_rollback_total", True)]
    times = [100.0, 190.0, 280.0]

    def series(name: str, values: list[float | None], **labels: str) -> Series:
        return Series(name, {"job": "dbpulse", "target": "t", **labels}, times, values)

    health = _state("health", [[Sample("dbpulse_app_pool_capacity", ("t", "api"), 10)]])
    found = {("dbpulse_app_pool_checked_out", False): [series("dbpulse_app_pool_checked_out", [1, None, 3], pool="api"),
                                                       series("dbpulse_app_pool_checked_out", [0, 0, 0], pool="jobs")]}
    charts = {c.key: c for c in charts_of(health, None, RangeFrame(health, found, (100.0, 280.0), 90))}
    api = charts["health:t:pool-api"]
    assert api.lines[0].values == [1, None, 3] and api.ceiling == 10 and api.source == "prometheus"
    assert charts["health:t:pool-jobs"].ceiling is None and api.window == (100.0, 280.0) and api.step == 90

    pg = _state("postgres", [[Sample("dbpulse_pg_max_connections", ("t",), 100)]])
    found = {
        ("dbpulse_pg_connections", False): [series("dbpulse_pg_connections", [2, 2, 2], datname="db", state="active",
                                                   application_name="a"),
                                            series("dbpulse_pg_connections", [1, None, 5], datname="db", state="active",
                                                   application_name="b"),
                                            series("dbpulse_pg_connections", [4, 4, 4], datname="db", state="idle",
                                                   application_name="a")],
        ("dbpulse_pg_database_xact_commit_total", True): [series("x", [1.5, 2.5, None], datname="db"),
                                                          series("x", [9.0, 9.0, 9.0], datname="other")],
        ("dbpulse_pg_database_xact_rollback_total", True): [series("x", [0.5, None, None], datname="db")],
    }
    charts = {c.key: c for c in charts_of(pg, {"datname": "db"}, RangeFrame(pg, found, (100.0, 280.0), 90))}
    connections = charts["postgres:t:connections"]
    assert [(line.label, line.values) for line in connections.lines] == [("active", [3, 2, 7]), ("idle", [4, 4, 4])]
    assert connections.ceiling == 100
    assert [line.values for line in charts["postgres:t:tps"].lines] == [[2.0, 2.5, None]]
