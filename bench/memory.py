"""Benchmark 4: memory (RSS) of dbpulse and postgres_exporter after 10 and after 1,000 polls.

Same large database as benchmark 1. dbpulse polls back to back (a short
interval; overruns skip ticks) and is scraped once per interval (ten times a
second at most) while it does; postgres_exporter (statement collector on) is scraped in a loop
by another thread, each of its scrapes being one poll of the database. RSS is
read with psutil once dbpulse answers (``start``), when each reaches 10, 100, 300,
1,000 and ``--polls`` polls, and every 25 polls in between: the slope (MiB per
1,000 polls, least squares from poll 100 on) tells a slow leak the marks could miss.
The load average at the start and at the end goes with the figures.

On the large database one peer scrape costs about half a second of this
2-core machine, so 1,000 of them would take ten minutes: the peer is scraped
``--peer-scrapes`` times (default 300) and the two are compared at the same
poll counts (10 and 300); dbpulse goes on to ``--polls`` (default 1,000).

"Flat" means the RSS after ``--polls`` polls is within 10% (or 5 MiB) of the
RSS after 10 polls.

dbpulse runs each advisor run in a short-lived child process (``advisor.run_in_child``): the RSS above is
the service's own process. The whole tree is sampled too, twice a second (``Tree``): the peak of the
service's PSS plus its children's (PSS shares the pages the child and the service have in common
between them, where RSS would count them twice), the peak of the same sum by USS, and the children's
peak alone.

Usage: .venv/bin/python -m bench.memory [--tables 2000] [--statements 5000] [--polls 1000] [--peer-scrapes 300]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench import common, exporters, report
from bench.pgdata import big_database

FIRST = 10
SAMPLE_EVERY = 25  # polls between the RSS samples the slope is fitted to
SLOPE_FROM = 100  # polls: the slope leaves out the first advisor runs and the filling of the history
HISTORY_POINTS = 240
FLAT_RATIO = 0.10
FLAT_MIB = 5.0
LIMIT_MIB = 100e6 / 2**20  # 100 MB (issue 23)


def checkpoints(polls: int) -> list[int]:
    return sorted({p for p in (FIRST, 100, 300, 1000, polls) if p <= polls})


def slope_per_1000(samples: dict[int, float]) -> float | None:
    """Least-squares slope of RSS (MiB) over polls from SLOPE_FROM on, in MiB per 1,000 polls (None: too few)."""
    points = [(p, m) for p, m in sorted(samples.items()) if p >= SLOPE_FROM]
    if len(points) < 3:
        return None
    mean_p = sum(p for p, _ in points) / len(points)
    mean_m = sum(m for _, m in points) / len(points)
    var = sum((p - mean_p) ** 2 for p, _ in points)
    return 1000 * sum((p - mean_p) * (m - mean_m) for p, m in points) / var if var else None


def flat(first_mib: float, last_mib: float) -> bool:
    return last_mib - first_mib <= max(FLAT_RATIO * first_mib, FLAT_MIB)


class Tree:
    """Samples a process and its children (the advisor's run) in a thread: peaks of PSS and USS summed over the
    tree, and of the children's PSS alone, in MiB."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid, self.every = pid, every
        self.peak_pss = self.peak_uss = self.peak_child_pss = 0.0
        self.samples = self.with_child = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Tree:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        main = psutil.Process(self.pid)
        while not self._stop.wait(self.every):
            with contextlib.suppress(psutil.Error):
                m = main.memory_full_info()
                pss, uss, child_pss = m.pss, m.uss, 0
                children = main.children(recursive=True)
                for child in children:
                    with contextlib.suppress(psutil.Error):  # the run may end while it is read
                        c = child.memory_full_info()
                        child_pss += c.pss
                        uss += c.uss
                self.samples += 1
                self.with_child += bool(children)
                self.peak_pss = max(self.peak_pss, (pss + child_pss) / 2**20)
                self.peak_uss = max(self.peak_uss, uss / 2**20)
                self.peak_child_pss = max(self.peak_child_pss, child_pss / 2**20)

    def result(self) -> dict[str, float | int]:
        return {"peak_pss_mib": self.peak_pss, "peak_uss_mib": self.peak_uss,
                "peak_children_pss_mib": self.peak_child_pss, "samples": self.samples,
                "samples_with_a_child": self.with_child}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=2000)
    parser.add_argument("--statements", type=int, default=5000)
    parser.add_argument("--polls", type=int, default=1000)
    parser.add_argument("--peer-scrapes", type=int, default=300, help="scrapes of the peer (at most --polls)")
    parser.add_argument("--no-advisor", action="store_true",
                        help="switch off dbpulse's built-in advisor (on by default: at start, then every 5 min)")
    parser.add_argument("--interval", type=float, default=0.1, help="dbpulse poll interval during the run")
    parser.add_argument("--advisor-interval", type=float, default=None,
                        help="seconds between advisor runs (default: the service's, 300 s); shorter, the run sees "
                        "as many advisor runs as hours of production would (its per-statement windows fill up)")
    parser.add_argument("--max-failed", type=int, default=None,
                        help="failed dbpulse polls tolerated (default: 3, or 1%% of --polls); the result counts them")
    parser.add_argument("--results-dir", type=Path, default=None, help="default bench/results")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    common.dbpulse_version()  # the code about to run
    common.require(exporters.PG_EXPORTER, "postgres_exporter")
    peer_scrapes = min(args.peer_scrapes, args.polls)
    marks = sorted({*checkpoints(args.polls), peer_scrapes})  # compared at the same poll counts
    peer_marks = [m for m in marks if m <= peer_scrapes]

    with big_database(args.tables, args.statements) as db:
        counts = db.counts()
        print(f"database: {counts} (built in {sum(db.build_seconds.values()):.1f} s)")
        ours = exporters.dbpulse("dbpulse", {
            "postgres": {"interval": args.interval, "targets": [{"name": "bench", "dsn": db.dsn("dbpulse_bench")}]},
            # the web UI's history holds as many points as in production (an hour at 15 s), not an hour of 0.1 s
            "ui": {"history_seconds": HISTORY_POINTS * args.interval},
            **({"advisor": {"enabled": False}} if args.no_advisor else {}),
            **({"advisor": {"interval": args.advisor_interval}}
               if args.advisor_interval and not args.no_advisor else {}),
        })
        advisor_runs: dict[int, int] = {}
        peer = exporters.postgres_exporter("postgres_exporter", db.dsn("pgexp_bench"))
        rss: dict[str, dict[int, float]] = {"dbpulse": {}, "postgres_exporter": {}}
        samples: dict[int, float] = {}  # dbpulse's RSS every SAMPLE_EVERY polls
        load_at_start = [round(x, 2) for x in os.getloadavg()]
        started = time.perf_counter()
        with common.running(ours, peer):
            common.wait_http(ours)
            rss_start = ours.rss_bytes() / 2**20  # imports done, the first poll under way
            assert ours.proc is not None
            tree = Tree(ours.proc.pid).__enter__()
            common.wait_http(peer, timeout=300)  # its first scrape reads everything: slow on a loaded machine
            peer_errors = 0

            def scrape_peer() -> None:
                nonlocal peer_errors
                for n in range(1, peer_scrapes + 1):
                    try:
                        common.fetch_metrics(peer.url)
                    except OSError:
                        peer_errors += 1
                    if n in peer_marks:
                        rss["postgres_exporter"][n] = peer.rss_bytes() / 2**20

            thread = threading.Thread(target=scrape_peer, daemon=True)
            thread.start()
            deadline = time.monotonic() + max(600.0, args.polls * 2.0 * max(1.0, args.interval / 0.1))
            # a few overruns on a loaded machine, not a failing source (the first poll, reading everything while
            # the advisor's first run does too, is the likeliest)
            max_failed = args.max_failed if args.max_failed is not None else max(3, args.polls // 100)
            pending = list(marks)
            failed_polls = 0
            while pending and time.monotonic() < deadline:
                polls = advised = 0
                with contextlib.suppress(OSError):
                    text = common.fetch_metrics(ours.url)  # also a scrape of dbpulse
                    failed = int(sum(common.metric_values(text, "dbpulse_source_poll_errors_total", source="postgres")))
                    if failed > max_failed:
                        ready = common.fetch_metrics(ours.url.replace("/metrics", "/readyz"))
                        raise RuntimeError(f"{failed} dbpulse polls failed: a memory figure of a failing poller "
                                           f"means nothing (raise --interval if they timed out): {ready}")
                    # successful polls: a poll cut by its timeout reads nothing
                    attempted = common.metric_values(text, "dbpulse_source_polls_total", source="postgres")
                    polls = int(sum(attempted)) - failed
                    failed_polls = failed
                    advised = int(sum(common.metric_values(text, "dbpulse_source_polls_total", source="advisor")))
                while pending and polls >= pending[0]:
                    advisor_runs[pending[0]] = advised
                    rss["dbpulse"][pending.pop(0)] = ours.rss_bytes() / 2**20
                if polls >= SAMPLE_EVERY and polls // SAMPLE_EVERY * SAMPLE_EVERY not in samples:
                    samples[polls // SAMPLE_EVERY * SAMPLE_EVERY] = ours.rss_bytes() / 2**20
                time.sleep(max(0.1, args.interval))  # a scrape per poll, as Prometheus makes: each renders every series
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
            tree.__exit__()
            if pending or thread.is_alive():
                raise RuntimeError(f"did not reach {args.polls} polls of both in time: {rss}")
        wall = time.perf_counter() - started
        pg_version = db.version()

    out: dict[str, dict[str, Any]] = {}
    for name, points in rss.items():
        first, last = points[min(points)], points[max(points)]
        out[name] = {"rss_mib": {str(k): v for k, v in points.items()}, "polls": max(points),
                     "growth_mib": last - first, "flat": flat(first, last)}
    out["dbpulse"]["advisor_runs_done"] = {str(k): v for k, v in advisor_runs.items()}
    out["dbpulse"]["max_rss_mib"] = max(rss["dbpulse"].values())
    out["dbpulse"]["max_rss_sampled_mib"] = max([*rss["dbpulse"].values(), *samples.values()])
    out["dbpulse"]["rss_start_mib"] = rss_start
    out["dbpulse"]["rss_samples_mib"] = {str(k): v for k, v in sorted(samples.items())}
    out["dbpulse"]["slope_mib_per_1000_polls"] = slope_per_1000(samples)
    out["dbpulse"]["failed_polls"] = failed_polls
    out["dbpulse"]["tree"] = tree.result()
    under = out["dbpulse"]["max_rss_sampled_mib"] <= LIMIT_MIB  # at every mark and sample, not the marks alone
    same = peer_marks[-1]  # the last poll count both reached
    r_first = common.ratio(rss["postgres_exporter"][marks[0]], rss["dbpulse"][marks[0]])
    r_last = common.ratio(rss["postgres_exporter"][same], rss["dbpulse"][same])
    result = {
        "params": vars(args) | {"results_dir": None},
        "database": counts,
        "versions": {"postgresql": pg_version, "postgres_exporter": common.pg_exporter_version(),
                     "dbpulse": common.dbpulse_version()},
        "exporters": out,
        "peer_scrape_errors": peer_errors,
        "load_average_at_start": load_at_start,
        "ratios_peer_over_dbpulse": {str(marks[0]): r_first, str(same): r_last},
        "wall_seconds": wall,
        "target": {"what": f"dbpulse RSS flat between {marks[0]} and {marks[-1]} polls "
                           f"(within {FLAT_RATIO:.0%} or {FLAT_MIB:.0f} MiB), and at most 100 MB "
                           f"({LIMIT_MIB:.1f} MiB) at every mark and every sample",
                   "met": out["dbpulse"]["flat"] and under,
                   "flat": out["dbpulse"]["flat"], "under_limit": under},
    }

    print()
    common.print_table(["exporter", *[f"RSS MiB @{m}" for m in marks], "growth MiB", "flat"],
                       [[n, *[rss[n].get(m) for m in marks], o["growth_mib"], o["flat"]] for n, o in out.items()])
    slope = out["dbpulse"]["slope_mib_per_1000_polls"]
    print(f"dbpulse RSS at start {rss_start:.1f} MiB; slope from poll {SLOPE_FROM} on: "
          f"{'n/a' if slope is None else f'{slope:+.2f} MiB per 1,000 polls'}; load average at start "
          f"{load_at_start}, at end {[round(x, 2) for x in os.getloadavg()]}")
    t = out["dbpulse"]["tree"]
    print(f"dbpulse with its advisor's child processes: peak PSS {t['peak_pss_mib']:.1f} MiB, peak USS "
          f"{t['peak_uss_mib']:.1f} MiB, children's peak PSS {t['peak_children_pss_mib']:.1f} MiB "
          f"({t['samples_with_a_child']} of {t['samples']} samples with a child)")
    print(f"postgres_exporter / dbpulse RSS: @{marks[0]} {common.fmt_ratio(r_first)}, "
          f"@{same} {common.fmt_ratio(r_last)}; dbpulse flat: {out['dbpulse']['flat']} ({wall:.0f} s)")

    name = "memory_no_advisor" if args.no_advisor else "memory"
    report.publish(name, result, args.results_dir, docs=not args.no_docs)
    return result


if __name__ == "__main__":
    main()
