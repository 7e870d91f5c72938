"""How the benchmarks start dbpulse and the peer exporters (each on a free port)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from bench.common import DBPULSE, PG_EXPORTER, REDIS_EXPORTER, ROOT, Service
from harness.servers import free_port

PEER_QUERIES = ROOT / "bench" / "postgres_exporter_queries.yaml"

# Top-K large enough that dbpulse exports every table, index and statement,
# like the peer does: the "same series" comparison.
EXPORT_ALL = {"top_statements": 10000, "top_tables": 10000, "top_indexes": 10000}


def dbpulse(name: str, config: dict[str, Any]) -> Service:
    """dbpulse started from a YAML configuration (written to a temporary file)."""
    port = free_port()
    config = {"listen": f"127.0.0.1:{port}", "log": {"level": "warning"}, **config}
    path = Path(tempfile.mkstemp(prefix="bench-dbpulse-", suffix=".yaml")[1])
    path.write_text(yaml.safe_dump(config))
    return Service(name, [str(DBPULSE), "run", "--config", str(path)], port)


def dbpulse_pg(name: str, dsn: str, interval: float = 15.0, **postgres: Any) -> Service:
    return dbpulse(name, {"postgres": {"interval": interval, **postgres,
                                       "targets": [{"name": "bench", "dsn": dsn}]}})


def postgres_exporter(name: str, dsn: str, statements: bool = True) -> Service:
    """The peer; ``statements`` switches on its example queries (tables, statements) via --extend.query-path."""
    port = free_port()
    args = [str(PG_EXPORTER), f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    if statements:
        args.append(f"--extend.query-path={PEER_QUERIES}")
    return Service(name, args, port, env={"DATA_SOURCE_NAME": dsn + "?sslmode=disable"})


def redis_exporter(name: str, redis_url: str, check_keys: str = "", extra: list[str] | None = None) -> Service:
    port = free_port()
    args = [str(REDIS_EXPORTER), f"--redis.addr={redis_url}", f"--web.listen-address=127.0.0.1:{port}"]
    if check_keys:
        args.append(f"--check-keys={check_keys}")
    return Service(name, args + (extra or []), port)
