"""Benchmark 3: Redis key analysis, dbpulse's per-poll cost vs redis_exporter's per scrape.

A throwaway Redis (``harness.servers.LocalRedis``) is filled with the keys
of a FastAPI/Celery backend (server-side, by a Lua loop), of very different
value sizes: ``session:<n>`` (32 B, TTL 1 h, 40%), ``cache:user:<n>`` (256 B,
TTL 1 h, 30%), ``cache:product:<n>`` (1 kB, no TTL, 20%),
``celery-task-meta-<n>`` (64 B, TTL 1 day, 10%); no key expires during a run
(a TTL of 5 minutes did, between dbpulse's polls and a later peer's scrape). For
each keyspace size (default 100,000 then 1,000,000 keys, the same keys plus
more), one at a time, in this order:

- dbpulse watches it with its defaults (SCAN + PTTL + MEMORY USAGE under a
  50 ms budget, at most 10,000 keys per poll: TTL discipline and memory by
  prefix), polling every second;
- redis_exporter with ``--check-key-groups`` (its memory by key group: a Lua
  script that SCANs everything and runs MEMORY USAGE on every key, in batches
  of 1,000) on the same four prefixes, scraped ``--peer-scrapes`` times;
- redis_exporter with ``--check-keys`` on the same four prefixes (TTL and size
  of every matching key) is scraped ``--peer-scrapes`` times (at 1,000,000 keys
  one scrape takes minutes on 2 cores, hence one by default).

Per poll / per scrape we report: Redis time (``INFO commandstats`` usec
deltas after ``CONFIG RESETSTAT``; a script's time is EVALSHA's), the Redis
commands sent, wall time (dbpulse: ``dbpulse_source_poll_duration_seconds
{source="redis"}``; peer: the scrape's latency) and the exporter's own CPU
time; the ratio peer / dbpulse (above 1: dbpulse is cheaper) and, for
flatness, cost at the largest size / cost at the smallest. For memory, each
prefix's estimate by dbpulse (median over its polls) against the exact sum
redis_exporter's key groups read.

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
# redis_exporter's key groups are Lua patterns; a group is named by its captures.
KEY_GROUPS = {"session:*": ("^(session):", "session"), "cache:user:*": ("^(cache:user):", "cache:user"),
              "cache:product:*": ("^(cache:product):", "cache:product"),
              "celery-task-meta-*": ("^(celery%-task%-meta)%-", "celery-task-meta")}
FLAT_LIMIT = 1.5  # cost at the largest size / at the smallest, for "flat"
PEERS = ("redis_exporter", "redis_exporter_key_groups")

FILL = """
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])
local session, user, product, task = string.rep('s', 32), string.rep('u', 256), string.rep('p', 1024),
  string.rep('t', 64)
for i = first, last do
  local m = i % 10
  if m < 4 then redis.call('SET', 'session:' .. i, session, 'EX', 3600)
  elseif m < 7 then redis.call('SET', 'cache:user:' .. i, user, 'EX', 3600)
  elseif m < 9 then redis.call('SET', 'cache:product:' .. i, product)
  else redis.call('SET', 'celery-task-meta-' .. i, task, 'EX', 86400) end
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


def redis_cost(stats: dict[str, dict[str, float]], in_scripts: tuple[str, ...] = ()) -> tuple[float, float]:
    """(microseconds, calls) summed over every command.

    A command a script calls is counted by commandstats twice: in its own line and within the script's
    EVAL/EVALSHA time. ``in_scripts`` names the commands that ran only inside scripts: their calls count,
    their time is already in the script's.
    """
    return (sum(float(v.get("usec", 0)) for k, v in stats.items() if k not in in_scripts),
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
        memory: dict[str, list[float]] = {prefix: [] for prefix in PATTERNS}
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
                    for prefix, values in memory.items():
                        values += common.metric_values(text, "dbpulse_redis_prefix_memory_bytes", prefix=prefix)
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
            "rss_mib": rss / 2**20, "series": series, "commands": sorted(stats),
            "memory_bytes": {prefix: common.median(values) if values else None for prefix, values in memory.items()}}


def measure_peer(server: LocalRedis, client: redis.Redis, scrapes: int, key_groups: bool = False) -> dict[str, Any]:
    if key_groups:
        groups = ",".join(pattern for pattern, _ in KEY_GROUPS.values())
        svc = exporters.redis_exporter("redis_exporter_key_groups", server.url(),
                                       extra=[f"--check-key-groups={groups}"])
    else:
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
    usec, calls = redis_cost(stats, in_scripts=("scan", "memory|usage") if key_groups else ())
    return {"polls": scrapes, "redis_usec_per_poll": usec / scrapes, "redis_calls_per_poll": calls / scrapes,
            "wall_ms_median": common.median(walls) * 1000, "wall_ms_p99": common.percentile(walls, 99) * 1000,
            "cpu_ms_per_poll": cpu * 1000 / scrapes, "rss_mib": rss / 2**20, "series": series,
            "commands": sorted(stats), "memory_bytes": {prefix: _group_memory(text, group)
                                                        for prefix, (_, group) in KEY_GROUPS.items()}}


def _group_memory(text: str, group: str) -> float | None:
    values = common.metric_values(text, "redis_key_group_memory_usage_bytes", key_group=group)
    return sum(values) if values else None


def memory_accuracy(ours: dict[str, Any], groups: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Per prefix: dbpulse's estimate, the exact sum redis_exporter's key groups read, estimate / exact."""
    out = {}
    for prefix in PATTERNS:
        estimate, exact = ours["memory_bytes"].get(prefix), groups["memory_bytes"].get(prefix)
        ratio = estimate / exact if estimate is not None and exact else None
        out[prefix] = {"dbpulse": estimate, "redis_exporter": exact, "estimate_over_exact": ratio}
    return out


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
            groups = measure_peer(server, client, args.peer_scrapes, key_groups=True)  # right after: same keys
            peer = measure_peer(server, client, args.peer_scrapes)
            runs[str(size)] = {
                "keys": int(client.dbsize()), "dbpulse": ours, "redis_exporter": peer,
                "redis_exporter_key_groups": groups,
                "ratios_peer_over_dbpulse": {c: common.ratio(peer[c], ours[c]) for c in COSTS},
                "ratios_key_groups_over_dbpulse": {c: common.ratio(groups[c], ours[c]) for c in COSTS},
                "memory_by_prefix": memory_accuracy(ours, groups),
            }
        client.close()

    small, large = runs[str(sizes[0])], runs[str(sizes[-1])]
    growth = {name: {c: common.ratio(large[name][c], small[name][c]) for c in COSTS}
              for name in ("dbpulse", *PEERS)}
    flat = all(g is not None and g <= FLAT_LIMIT for g in growth["dbpulse"].values()) if len(sizes) > 1 else None
    result = {
        "params": vars(args) | {"results_dir": None},
        "patterns": list(PATTERNS),
        "key_groups": [pattern for pattern, _ in KEY_GROUPS.values()],
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
        for name in ("dbpulse", *PEERS):
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
        g = run["ratios_key_groups_over_dbpulse"]
        print(f"{int(size):>9,} keys, redis_exporter --check-key-groups / dbpulse: "
              f"Redis time {common.fmt_ratio(g['redis_usec_per_poll'])}, "
              f"wall {common.fmt_ratio(g['wall_ms_median'])}, CPU {common.fmt_ratio(g['cpu_ms_per_poll'])}")
        for prefix, m in run["memory_by_prefix"].items():
            print(f"{int(size):>9,} keys, {prefix}: dbpulse {m['dbpulse'] or 0:,.0f} B, "
                  f"key groups {m['redis_exporter'] or 0:,.0f} B, estimate / exact "
                  f"{common.fmt_ratio(m['estimate_over_exact'])}")
    for name, g in growth.items():
        print(f"{name}: cost at {sizes[-1]:,} / at {sizes[0]:,} keys: Redis time "
              f"{common.fmt_ratio(g['redis_usec_per_poll'])}, wall {common.fmt_ratio(g['wall_ms_median'])}, "
              f"CPU {common.fmt_ratio(g['cpu_ms_per_poll'])}")
    print(f"target (flat): {'met' if flat else 'NOT met' if flat is not None else 'n/a (one size)'}")

    report.publish("redis_keys", result, args.results_dir, docs=not args.no_docs)
    return result


if __name__ == "__main__":
    main()
