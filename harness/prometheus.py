"""A throwaway Prometheus server (Debian's ``prometheus``) scraping one job, and its HTTP API.

Used by the end-to-end tests and by ``bench.soak``. ``scaled_rules`` makes copies of rule
files with every duration divided by a factor (``for:``, range selectors, subquery
ranges and steps, ``offset``), so a scenario can run at a fraction of its real length:
scrape and evaluate ``factor`` times as often, poll ``factor`` times as often, and the rules
see the same number of samples in each window. Numbers in an expression are left alone,
including the few that are seconds (ages compared with ``time()``); they are thresholds on
what is measured, not windows.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.servers import ServerError, Throwaway, end_process, free_port

_DURATION_PART = re.compile(r"([0-9]+)(ms|[smhdwy])")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
# In an expression: a quoted string (left alone), a range or subquery [5m] / [10m:1m], an offset.
_PROMQL_DURATIONS = re.compile(
    r'(?P<string>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`)'
    r"|\[(?P<range>[0-9][0-9a-z]*)(?::(?P<step>[0-9][0-9a-z]*)?)?\]"
    r"|(?P<offset>\boffset\s+-?)(?P<by>[0-9][0-9a-z]*)")
_FOR = re.compile(r"(?m)^(?P<key>[ \t]+for:[ \t]*)(?P<value>\S+)[ \t]*$")


def duration_seconds(text: str) -> float:
    """A Prometheus duration (``90s``, ``1h30m``, ``500ms``) in seconds."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """Seconds as a Prometheus duration: whole seconds, else milliseconds (at least 1 ms)."""
    ms = max(1, round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def scale_expr(expr: str, factor: float) -> str:
    """The expression with every range, subquery step and offset divided by ``factor``."""
    def scaled(text: str) -> str:
        return format_duration(duration_seconds(text) / factor)

    def one(m: re.Match[str]) -> str:
        if m["string"]:
            return m["string"]
        if m["range"]:
            step = f":{scaled(m['step'])}" if m["step"] else (":" if ":" in m.group(0) else "")
            return f"[{scaled(m['range'])}{step}]"
        return f"{m['offset']}{scaled(m['by'])}"

    return _PROMQL_DURATIONS.sub(one, expr)


def scaled_rules(files: list[Path], dest: Path, factor: float) -> list[Path]:
    """Copies of the rule files in ``dest`` with every duration divided by ``factor`` (1: unchanged copies)."""
    out = []
    for path in files:
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                rule["expr"] = scale_expr(rule["expr"], factor)
                if "for" in rule:
                    rule["for"] = format_duration(duration_seconds(rule["for"]) / factor)
        copy = dest / path.name
        copy.write_text(path.read_text() if factor == 1 else yaml.safe_dump(doc, sort_keys=False))
        out.append(copy)
    return out


@dataclass
class PrometheusAPI:
    """The parts of Prometheus's HTTP API the tests and the soak read."""

    url: str

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=30) as response:
            body = json.load(response)
        if body["status"] != "success":
            raise RuntimeError(f"Prometheus {path}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return alerts

    def firing(self, alertname: str, **labels: str) -> list[dict[str, Any]]:
        return [a for a in self.alerts() if a["labels"]["alertname"] == alertname and a["state"] == "firing"
                and all(a["labels"].get(k) == v for k, v in labels.items())]


class LocalPrometheus(Throwaway):
    """``prometheus`` on a free port, scraping ``targets`` as job ``dbpulse`` and evaluating ``rule_files``."""

    def __init__(self, targets: list[str], rule_files: list[Path], scrape_interval: float = 1.0,
                 evaluation_interval: float | None = None, workdir: Path | None = None) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise ServerError("prometheus not found: install the Debian package prometheus (scripts/setup.sh does)")
        self.binary = binary
        self.port = free_port()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="dbpulse-prometheus-"))
        self._own_dir = workdir is None
        self.log = self.workdir / "prometheus.log"
        self.config = self.workdir / "prometheus.yml"
        self.config.write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": format_duration(scrape_interval),
                       "evaluation_interval": format_duration(evaluation_interval or scrape_interval),
                       "scrape_timeout": format_duration(scrape_interval * 0.9)},
            "rule_files": [str(r) for r in rule_files],
            "scrape_configs": [{"job_name": "dbpulse", "static_configs": [{"targets": targets}]}],
        }))
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = PrometheusAPI(f"http://127.0.0.1:{self.port}")

    def check_config(self) -> None:
        """``promtool check config``: the rule files parse and the configuration is valid."""
        result = subprocess.run([shutil.which("promtool") or "promtool", "check", "config", str(self.config)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise ServerError(f"promtool check config {self.config}:\n{result.stdout}{result.stderr}")

    def start(self, timeout: float = 30.0) -> None:
        self.check_config()
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.config}", f"--storage.tsdb.path={self.workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{self.client.url}/-/ready", timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise ServerError(f"prometheus did not come up:\n{self.log.read_text()[-3000:]}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            end_process(self.proc, 10)
        self.proc = None
