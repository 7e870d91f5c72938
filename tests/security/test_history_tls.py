"""The client side of ``prometheus.*``: TLS (the server's CA, a client certificate) and basic auth, against a real
HTTPS server that requires both and answers a range query as Prometheus does."""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from monitor.prometheus_settings import PrometheusSettings
from monitor.web.charts import Chart, Line
from monitor.web.history import HistoryReader, PrometheusClient
from monitor.web.history_query import statement_queries
from tests.security.test_web_config import pki  # noqa: F401 - the fixture

GOOD = "Basic " + base64.b64encode(b"reader:pa55word").decode()
RING = [Chart("calls per second", "/s", [Line("calls/s", [1.0], [1.0])], (0.0, 1.0), key="calls")]


@pytest.fixture
async def prometheus_tls(pki: Path) -> AsyncIterator[str]:  # noqa: F811
    async def query_range(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != GOOD:
            return web.json_response({"status": "error", "errorType": "unauthorized", "error": "bad credentials"},
                                     status=401)
        end = int(request.query["end"])
        return web.json_response({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {}, "values": [[end, "4.5"]]}]}})

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.crt"))
    context.load_cert_chain(pki / "server.crt", pki / "server.key")
    context.verify_mode = ssl.CERT_REQUIRED
    app = web.Application()
    app.router.add_get("/api/v1/query_range", query_range)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    yield f"https://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    await runner.cleanup()


async def shown_with(settings: PrometheusSettings) -> tuple[list[Chart], str]:
    reader = HistoryReader(PrometheusClient(settings))
    try:
        charts, shown = await reader.charts(RING, statement_queries("main", 1), "24h", 2_000_000.0, "main")
    finally:
        await reader.close()
    return charts, shown.note


async def test_tls_and_basic_auth(prometheus_tls: str, pki: Path, tmp_path: Path) -> None:  # noqa: F811
    password = tmp_path / "password"
    password.write_text("pa55word\n")
    tls = {"ca_file": pki / "ca.crt", "cert_file": pki / "client.crt", "key_file": pki / "client.key"}
    auth = {"username": "reader", "password_file": password}
    charts, note = await shown_with(PrometheusSettings(url=prometheus_tls, tls_config=tls, basic_auth=auth))
    assert note == "" and charts[0].source == "prometheus"
    assert json.dumps([v for v in charts[0].lines[0].values if v is not None]) == "[4.5]"

    # Without the CA, the server's certificate is not trusted; without a client certificate, the handshake fails;
    # with a wrong password, Prometheus's own 401 answer: each falls back and says so.
    _, note = await shown_with(PrometheusSettings(url=prometheus_tls, basic_auth=auth, tls_config={
        "cert_file": pki / "client.crt", "key_file": pki / "client.key"}))
    assert note.startswith(f"Prometheus at {prometheus_tls} could not be reached ([SSL: CERTIFICATE_VERIFY_FAILED]")
    _, note = await shown_with(PrometheusSettings(url=prometheus_tls, basic_auth=auth,
                                                  tls_config={"ca_file": pki / "ca.crt"}))
    assert note.startswith(f"Prometheus at {prometheus_tls} could not be") and note.endswith("kept in memory."), note
    wrong = tmp_path / "wrong"
    wrong.write_text("nope")
    _, note = await shown_with(PrometheusSettings(url=prometheus_tls, tls_config=tls,
                                                  basic_auth={"username": "reader", "password_file": wrong}))
    assert note == (f"Prometheus at {prometheus_tls} answered with an error (unauthorized: bad credentials); "
                    "showing the last hour kept in memory.")
    # insecure_skip_verify: any server certificate (the client certificate is still sent)
    _, note = await shown_with(PrometheusSettings(url=prometheus_tls, basic_auth=auth, tls_config={
        "insecure_skip_verify": True, "cert_file": pki / "client.crt", "key_file": pki / "client.key"}))
    assert note == ""
