"""Where dbpulse's time goes while it is scraped hard: py-spy on a running dbpulse.

Builds the large database of benchmark 1, starts one dbpulse (``--top-all``:
every table, index and statement exported, like the peer), and samples it with
``py-spy record`` while N concurrent scrapers hit /metrics. Prints the
functions with the most samples (own time, and inclusive time by file) and
keeps the collapsed stacks in bench/results/profile_dbpulse.txt (open in
speedscope or flamegraph.pl).

py-spy is a benchmark-only tool, not a dependency: ``.venv/bin/pip install py-spy``.

Usage: .venv/bin/python -m bench.profile_dbpulse [--seconds 20] [--concurrency 8] [--top-all]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from bench import common, exporters
from bench.pgdata import big_database


def summarize(collapsed: str, top: int = 15) -> str:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    out = [f"{total} samples", "", "own time:"]
    out += [f"  {c / total:6.1%}  {f}" for f, c in own.most_common(top)]
    out += ["", "inclusive time:"]
    out += [f"  {c / total:6.1%}  {f}" for f, c in inclusive.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=2000)
    parser.add_argument("--statements", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--top-all", action="store_true", help="export every table, index and statement")
    args = parser.parse_args(argv)
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        sys.exit("py-spy not found: .venv/bin/pip install py-spy")

    with big_database(args.tables, args.statements) as db:
        extra = exporters.EXPORT_ALL if args.top_all else {}
        svc = exporters.dbpulse_pg("dbpulse", db.dsn("dbpulse_bench"), **extra)
        with common.running(svc):
            common.wait_http(svc)
            common.wait_dbpulse_polls(svc.port, 1, timeout=120)
            assert svc.proc is not None
            out = common.RESULTS / "profile_dbpulse.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            stop = threading.Event()

            def load() -> None:
                while not stop.is_set():
                    common.scrape(svc.url, args.concurrency * 4, args.concurrency)

            thread = threading.Thread(target=load, daemon=True)
            thread.start()
            subprocess.run([pyspy, "record", "--pid", str(svc.proc.pid), "--duration", str(args.seconds),
                            "--format", "raw", "--output", str(out), "--nonblocking"], check=True,
                           capture_output=True)
            stop.set()
            thread.join(60)
    print(summarize(out.read_text()))
    print(f"\ncollapsed stacks: {out}")


if __name__ == "__main__":
    main()
