"""The example alertmanager.yml: amtool accepts it, it routes by severity, and a real
Alertmanager inhibits component alerts under the alert of what they depend on."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.servers import free_port
from tests.rules.promql_check import ROOT, load_rule_groups

CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("amtool")
    if tool is None:
        pytest.fail("amtool not found: install the Debian package prometheus-alertmanager")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=30)


def test_amtool_check_config() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("labels", "receivers"), [
    (["severity=critical", "alertname=PostgresDown", "target=main"], "pager,team-channel"),
    (["severity=warning", "alertname=PostgresLockWaits", "target=main"], "team-channel"),
    (["severity=info", "alertname=PostgresNPlusOneQueries", "target=main"], "low-noise"),
])
def test_routes_by_severity(labels: list[str], receivers: str) -> None:
    result = amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == receivers


def test_only_critical_alerts_page() -> None:
    """Every alert in the rules reaches the pager only if it is critical."""
    for group in load_rule_groups():
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            labels = [f"{k}={v}" for k, v in rule["labels"].items()] + [f"alertname={rule['alert']}"]
            out = amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels).stdout
            assert ("pager" in out.split(",")) == (rule["labels"]["severity"] == "critical"), rule["alert"]


def test_receivers_are_placeholders() -> None:
    text = CONFIG.read_text()
    config = yaml.safe_load(text)
    for receiver in config["receivers"]:
        for key, entries in receiver.items():
            for entry in entries if isinstance(entries, list) else []:
                url = entry.get("url") or entry.get("api_url")
                assert url.startswith(("http://127.0.0.1", "https://hooks.example.invalid")), (key, url)


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.fail("alertmanager not found: install the Debian package prometheus-alertmanager")
    work: Path = tmp_path_factory.mktemp("alertmanager")
    port, cluster_port = free_port(), free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={CONFIG}", f"--storage.path={work}",
         f"--web.listen-address=127.0.0.1:{port}", f"--cluster.listen-address=127.0.0.1:{cluster_port}"],
        stdout=subprocess.DEVNULL, stderr=(work / "log").open("w"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{url}/-/ready", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("alertmanager did not start: " + (work / "log").read_text()[-2000:])
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _post(url: str, alerts: list[dict[str, Any]]) -> None:
    now = datetime.now(UTC)
    body = [{"labels": a, "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=10)).isoformat()}
            for a in alerts]
    request = urllib.request.Request(f"{url}/api/v2/alerts", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(request, timeout=5).close()


def _inhibited(url: str) -> dict[str, bool]:
    deadline = time.monotonic() + 10
    while True:
        with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as response:
            alerts = json.load(response)
        state = {f"{a['labels']['alertname']}/{a['labels']['target']}/{a['labels']['severity']}":
                 bool(a["status"]["inhibitedBy"]) for a in alerts}
        # inhibition is computed when alerts are listed; give the sources time to register
        if any(state.values()) or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def test_inhibition(alertmanager: str) -> None:
    _post(alertmanager, [
        # PostgreSQL main is down: its other alerts are silenced, another target's are not
        {"alertname": "PostgresDown", "severity": "critical", "source": "postgres", "target": "main"},
        {"alertname": "PostgresLockWaits", "severity": "warning", "source": "postgres", "target": "main"},
        {"alertname": "DbpulseSourceDown", "severity": "warning", "source": "postgres", "target": "main"},
        {"alertname": "PostgresLockWaits", "severity": "warning", "source": "postgres", "target": "replica"},
        # the app is down: its readiness and component alerts are silenced
        {"alertname": "AppDown", "severity": "critical", "source": "health", "target": "api"},
        {"alertname": "AppNotReady", "severity": "critical", "source": "health", "target": "api"},
        {"alertname": "AppComponentUnhealthy", "severity": "warning", "source": "health", "target": "api",
         "component": "redis"},
        # a Redis alert of a target whose Redis is up stays
        {"alertname": "RedisEvictions", "severity": "warning", "source": "redis", "target": "cache"},
        # the critical step silences the warning step of the same alert and target
        {"alertname": "PostgresConnectionsNearMax", "severity": "critical", "source": "postgres",
         "target": "replica"},
        {"alertname": "PostgresConnectionsNearMax", "severity": "warning", "source": "postgres",
         "target": "replica"},
    ])
    assert _inhibited(alertmanager) == {
        "PostgresDown/main/critical": False,
        "PostgresLockWaits/main/warning": True,
        "DbpulseSourceDown/main/warning": True,
        "PostgresLockWaits/replica/warning": False,
        "AppDown/api/critical": False,
        "AppNotReady/api/critical": True,
        "AppComponentUnhealthy/api/warning": True,
        "RedisEvictions/cache/warning": False,
        "PostgresConnectionsNearMax/replica/critical": False,
        "PostgresConnectionsNearMax/replica/warning": True,
    }
