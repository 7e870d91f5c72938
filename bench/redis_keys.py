"""Benchmark 3: Redis key analysis, dbpulse's per-poll cost vs redis_exporter --check-keys per scrape.

A throwaway Redis (``harness.servers.LocalRedis``) is filled with the keys
of a FastAPI/Celery backend (server-side, by a Lua loop): ``session:<n>``
(TTL 1 h, 40%), ``cache:user:<n>`` (TTL 5 min, 30%), ``cache:product:<n>``
(no TTL, 20%), ``celery-task-meta-<n>`` (TTL 1 day, 10%). For each keyspace
size (default 100,000 then 1,000,000 keys, the same keys plus more):

- dbpulse alone watches it (``redis.sampling`` on, its defaults: SCAN + PTTL
  under a 50 ms budget, at most 10,000 keys per poll), polling every second;
- then redis_exporter alone, with ``--check-keys`` on the same four prefixes,
  is scraped ``--peer-scrapes`` times (each scrape SCANs and reads those keys;
  at 1,000,000 keys one scrape takes minutes on 2 cores, hence one by default).

Per poll / per scrape we report: Redis time (``INFO commandstats`` usec
deltas after ``CONFIG RESETSTAT``), the Redis commands sent, wall time
(dbpulse: ``dbpulse_source_poll_duration_seconds{source="redis"}``; peer: the
scrape's latency) and the exporter's own CPU time; the ratio peer / dbpulse
(above 1: dbpulse is cheaper) and, for flatness, cost at the largest size /
cost at the smallest.

Usage: .venv/bin/python -m bench.redis_keys [--keys 100000,1000000] [--polls 10] [--peer-scrapes 1]
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path
from typing import Any

import redis

from bench import common, exporters, report
from harness.servers import LocalRedis

PATTERNS = ("session:*", "cache:user:*", "cache:product:*", "celery-task-meta-*")
FLAT_LIMIT = 1.5  # cost at the largest size / at the smallest, for "flat"

FILL = """
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])
local value = string.rep('x', 32)
for i = first, last do
  local m = i % 10
  if m < 4 then redis.call('SET', 'session:' .. i, value, 'EX', 3600)
  elseif m < 7 then redis.call('SET', 'cache:user:' .. i, value, 'EX', 300)
  elseif m < 9 then redis.call('SET', 'cache:product:' .. i, value)
  else redis.call('SET', 'celery-task-meta-' .. i, value, 'EX', 86400) end
end
return last
"""


def fill(client: redis.Redis, first: int, last: int, batch: int = 100_000) -> None:
    """Create keys first..last-1 (server-side, in batches that block Redis for well under a second)."""
    script = client.register_script(FILL)
    for start in range(first, last, batch):
        script(args=[start, min(start + batch, last) - 1])


def commandstats(client: redis.Redis) -> dict[str, dict[str, float]]:
    stats = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): v for k, v in stats.items() if k != "cmdstat_config|resetstat"}


def redis_cost(stats: dict[str, dict[str, float]]) -> tuple[float, float]:
    """(microseconds, calls) summed over every command."""
    return (sum(float(v.get("usec", 0)) for v in stats.values()),
            sum(float(v.get("calls", 0)) for v in stats.values()))


def measure_dbpulse(server: LocalRedis, client: redis.Redis, polls: int, interval: float) -> dict[str, Any]:
    svc = exporters.dbpulse("dbpulse", {"redis": {"interval": interval, "targets": [{"name": "bench",
                                                                                     "url": server.url()}]}})
    with common.running(svc):
        common.wait_http(svc)
        common.wait_dbpulse_polls(svc.port, 2, timeout=60, source="redis")
        # Start right after a poll, so the reset does not cut one in half.
        start = common.dbpulse_polls(svc.port, "redis")
        common.wait_dbpulse_polls(svc.port, start + 1, timeout=30, source="redis")
        client.config_resetstat()
        before = common.dbpulse_polls(svc.port, "redis")
        cpu0 = svc.cpu_seconds()
        durations: list[float] = []
        sampled: list[float] = []
        seen = before
        deadline = time.monotonic() + polls * (interval + 5) + 30
        while seen < before + polls and time.monotonic() < deadline:
            time.sleep(0.05)
            with contextlib.suppress(OSError):
                text = common.fetch_metrics(svc.url)
                now = int(sum(common.metric_values(text, "dbpulse_source_polls_total", source="redis")))
                if now > seen:
                    seen = now
                    durations += common.metric_values(text, "dbpulse_source_poll_duration_seconds",
                                                      source="redis")
                    sampled += common.metric_values(text, "dbpulse_redis_sampled_keys")
                    # Few scrapes between polls: their CPU is in dbpulse's CPU time too.
                    time.sleep(0.8 * interval)
        stats = commandstats(client)
        cpu = svc.cpu_seconds() - cpu0
        rss = svc.rss_bytes()
        series = common.series_count(common.fetch_metrics(svc.url))
    done = seen - before
    usec, calls = redis_cost(stats)
    return {"polls": done, "redis_usec_per_poll": usec / max(done, 1), "redis_calls_per_poll": calls / max(done, 1),
            "wall_ms_median": common.median(durations) * 1000, "wall_ms_p99": common.percentile(durations, 99) * 1000,
            "cpu_ms_per_poll": cpu * 1000 / max(done, 1), "keys_sampled_per_poll": common.median(sampled),
            "rss_mib": rss / 2**20, "series": series, "commands": sorted(stats)}


def measure_peer(server: LocalRedis, client: redis.Redis, scrapes: int) -> dict[str, Any]:
    svc = exporters.redis_exporter("redis_exporter", server.url(), check_keys=",".join(PATTERNS))
    with common.running(svc):
        # The exporter answers at once; its first scrape happens in the measured loop.
        common.wait_http(svc, path="/")
        client.config_resetstat()
        cpu0 = svc.cpu_seconds()
        walls: list[float] = []
        series = 0
        for _ in range(scrapes):
            t0 = time.perf_counter()
            text = common.fetch_metrics(svc.url, timeout=900)
            walls.append(time.perf_counter() - t0)
            series = common.series_count(text)
        stats = commandstats(client)
        cpu = svc.cpu_seconds() - cpu0
        rss = svc.rss_bytes()
    usec, calls = redis_cost(stats)
    return {"polls": scrapes, "redis_usec_per_poll": usec / scrapes, "redis_calls_per_poll": calls / scrapes,
            "wall_ms_median": common.median(walls) * 1000, "wall_ms_p99": common.percentile(walls, 99) * 1000,
            "cpu_ms_per_poll": cpu * 1000 / scrapes, "rss_mib": rss / 2**20, "series": series,
            "commands": sorted(stats)}


COSTS = ("redis_usec_per_poll", "wall_ms_median", "cpu_ms_per_poll")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", default="100000,1000000", help="keyspace sizes, ascending (comma-separated)")
    parser.add_argument("--polls", type=int, default=10, help="dbpulse polls per size")
    parser.add_argument("--interval", type=float, default=1.0, help="dbpulse poll interval (default 1 s)")
    parser.add_argument("--peer-scrapes", type=int, default=1, help="redis_exporter scrapes per size")
    parser.add_argument("--results-dir", type=Path, default=None, help="default bench/results")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    common.dbpulse_version()  # the code about to run
    common.require(exporters.REDIS_EXPORTER, "redis_exporter")
    sizes = sorted(int(k) for k in args.keys.split(","))

    runs: dict[str, dict[str, Any]] = {}
    with LocalRedis() as server:
        client = redis.Redis.from_url(server.url())
        version = str(client.info("server")["redis_version"])
        have = 0
        for size in sizes:
            t0 = time.perf_counter()
            fill(client, have, size)
            have = size
            print(f"keyspace: {client.dbsize():,} keys (filled in {time.perf_counter() - t0:.1f} s)")
            ours = measure_dbpulse(server, client, args.polls, args.interval)
            peer = measure_peer(server, client, args.peer_scrapes)
            ratios = {c: common.ratio(peer[c], ours[c]) for c in COSTS}
            runs[str(size)] = {"keys": int(client.dbsize()), "dbpulse": ours, "redis_exporter": peer,
                               "ratios_peer_over_dbpulse": ratios}
        client.close()

    small, large = runs[str(sizes[0])], runs[str(sizes[-1])]
    growth = {name: {c: common.ratio(large[name][c], small[name][c]) for c in COSTS}
              for name in ("dbpulse", "redis_exporter")}
    flat = all(g is not None and g <= FLAT_LIMIT for g in growth["dbpulse"].values()) if len(sizes) > 1 else None
    result = {
        "params": vars(args) | {"results_dir": None},
        "patterns": list(PATTERNS),
        "versions": {"redis": version, "redis_exporter": common.redis_exporter_version(),
                     "dbpulse": common.dbpulse_version()},
        "runs": runs,
        "growth_largest_over_smallest": growth,
        "target": {"what": f"dbpulse per-poll cost flat in the keyspace size (largest/smallest <= {FLAT_LIMIT})",
                   "met": flat},
    }

    print()
    rows = []
    for size, run in runs.items():
        for name in ("dbpulse", "redis_exporter"):
            e = run[name]
            rows.append([f"{int(size):,}", name, e["polls"], e["redis_usec_per_poll"] / 1000, e["redis_calls_per_poll"],
                         e["wall_ms_median"], e["cpu_ms_per_poll"], e["series"], e["rss_mib"]])
    common.print_table(["keys", "exporter", "polls", "Redis ms/poll", "commands/poll", "wall ms/poll",
                        "CPU ms/poll", "series", "RSS MiB"], rows)
    for size, run in runs.items():
        r = run["ratios_peer_over_dbpulse"]
        print(f"{int(size):>9,} keys, redis_exporter / dbpulse: "
              f"Redis time {common.fmt_ratio(r['redis_usec_per_poll'])}, "
              f"wall {common.fmt_ratio(r['wall_ms_median'])}, CPU {common.fmt_ratio(r['cpu_ms_per_poll'])}")
    for name, g in growth.items():
        print(f"{name}: cost at {sizes[-1]:,} / at {sizes[0]:,} keys: Redis time "
              f"{common.fmt_ratio(g['redis_usec_per_poll'])}, wall {common.fmt_ratio(g['wall_ms_median'])}, "
              f"CPU {common.fmt_ratio(g['cpu_ms_per_poll'])}")
    print(f"target (flat): {'met' if flat else 'NOT met' if flat is not None else 'n/a (one size)'}")

    report.publish("redis_keys", result, args.results_dir, docs=not args.no_docs)
    return result


if __name__ == "__main__":
    main()
