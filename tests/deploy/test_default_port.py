"""One default port, everywhere, and not an exporter's: see "Why that port" in the README."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from monitor.config import DEFAULT_LISTEN, DEFAULT_PORT

ROOT = Path(__file__).resolve().parents[2]
OLD_PORT = 9630  # dbpulse's former default: Pigsty's pg_exporter's too
# Default ports of the exporters found on the same hosts (the README names them and why they matter).
PEERS = {9187: "postgres_exporter", 9121: "redis_exporter", 9127: "pgbouncer_exporter", 9630: "pg_exporter",
         9631: "pgbouncer_exporter (Pigsty)", 9808: "celery-exporter", 9090: "Prometheus", 9093: "Alertmanager"}


def test_the_default_port_is_outside_the_exporters_allocations() -> None:
    assert DEFAULT_LISTEN.endswith(f":{DEFAULT_PORT}")
    assert DEFAULT_PORT not in PEERS
    assert not 9100 <= DEFAULT_PORT <= 10999  # the allocations: 9100-9999, then upward from 10000
    assert DEFAULT_PORT < 30000  # below the Kubernetes NodePort and the Linux ephemeral ranges


def test_every_file_uses_the_same_port() -> None:
    """Code, Makefile, Dockerfile, compose, deploy/, docs and tests: the old port survives only where the README
    says why it was left."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    stale = []
    for name in files:
        path = ROOT / name
        if path.suffix in {".png", ".svg", ".ico"} or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if re.search(rf"(?<!\d){OLD_PORT}(?!\d)", line) and "pg_exporter" not in line \
                    and name != "tests/deploy/test_default_port.py":
                stale.append(f"{name}:{number}: {line.strip()}")
    assert not stale, stale
    readme = (ROOT / "README.md").read_text()
    assert f"**port {DEFAULT_PORT}**" in readme and f"`0.0.0.0:{DEFAULT_PORT}`" in readme
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"EXPOSE {DEFAULT_PORT}\n" in dockerfile and f"DBPULSE_LISTEN=0.0.0.0:{DEFAULT_PORT}" in dockerfile
    assert f"':{DEFAULT_PORT}'" in dockerfile  # the HEALTHCHECK's fallback
    assert f"LISTEN ?= 127.0.0.1:{DEFAULT_PORT}\n" in (ROOT / "Makefile").read_text()
    for config in ("examples/dbpulse.yaml", "deploy/docker/dbpulse.yaml", "deploy/compose/dbpulse.yaml",
                   "deploy/kubernetes/configmap.yaml"):
        assert f"listen: 0.0.0.0:{DEFAULT_PORT}" in (ROOT / config).read_text(), config
