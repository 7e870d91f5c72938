"""Benchmark 8: the light install for users (`make install`) against the development install, side by side.

`make install` builds dbpulse into a fresh virtualenv with only what `dbpulse run` needs. The comparison in the
same run is what `make setup` puts in its virtualenv for development (`pip install '.[test]'` into a fresh
virtualenv), without the system packages and server builds `make setup` adds besides (those only make the
difference larger). Both on a warm package cache: each is run once first, untimed, to fill it, then
``--runs`` times alternately. Reported: wall time and CPU time (medians; on a shared machine the wall time
grows with the load, the CPU time hardly), packages and megabytes on disk.

Usage: .venv/bin/python -m bench.light_install [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import common, report

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 60.0  # issue 24: in seconds, under a minute on a warm cache


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(*commands: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the processes) of running ``commands`` one after the other. The CPU time
    does not grow when other work shares the machine; the wall time does."""
    started, cpu = time.monotonic(), _children_cpu()
    for command in commands:
        subprocess.run(command, cwd=ROOT, env=_env(), check=True, capture_output=True)
    return time.monotonic() - started, _children_cpu() - cpu


def light(where: Path) -> tuple[float, float]:
    return timed(["make", "-s", "install", f"DBPULSE_HOME={where}", f"BINDIR={where}/bin"])


def development(where: Path) -> tuple[float, float]:
    return timed([sys.executable, "-m", "venv", str(where / "venv")],
                 [str(where / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", ".[test]"])


def footprint(venv: Path) -> tuple[int, float]:
    """(packages installed, megabytes on disk) of a virtualenv."""
    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                            capture_output=True, text=True, env=_env(), check=True).stdout.split()
    size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file() and not f.is_symlink())
    return len(listed), size / 1e6


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.light_install", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument("--no-docs", action="store_true", help="do not re-render docs/benchmarks.md")
    args = parser.parse_args(argv)
    version = common.dbpulse_version()
    times: dict[str, list[float]] = {"light": [], "development": []}
    cpu: dict[str, list[float]] = {"light": [], "development": []}
    with tempfile.TemporaryDirectory(prefix="dbpulse-install-") as tmp:
        base = Path(tmp)
        light(base / "warm-light")  # fills the package cache, untimed
        development(base / "warm-dev")
        sizes = {"light": footprint(base / "warm-light" / "venv"), "development": footprint(base / "warm-dev" / "venv")}
        for run in range(args.runs):
            for name, install in (("light", light), ("development", development)):
                wall, used = install(base / f"{name}-{run}")
                times[name].append(wall)
                cpu[name].append(used)
    median = {name: common.median(values) for name, values in times.items()}
    median_cpu = {name: common.median(values) for name, values in cpu.items()}
    result: dict[str, Any] = {
        "versions": {"dbpulse": version}, "params": {"runs": args.runs},
        "seconds": {name: {"median": median[name], "runs": values} for name, values in times.items()},
        "cpu_seconds": {name: {"median": median_cpu[name], "runs": values} for name, values in cpu.items()},
        "packages": {name: sizes[name][0] for name in sizes}, "megabytes": {name: sizes[name][1] for name in sizes},
        "ratio": common.ratio(median["development"], median["light"]),
        "target": {"what": f"make install in under {TARGET_SECONDS:g} s on a warm package cache",
                   "met": median["light"] < TARGET_SECONDS},
    }
    common.print_table(["install", "median s", "median CPU s", "packages", "MB on disk"],
                       [[name, f"{median[name]:.1f}", f"{median_cpu[name]:.1f}", sizes[name][0],
                         f"{sizes[name][1]:.0f}"] for name in times])
    report.publish("light_install", result, args.results_dir, docs=not args.no_docs)
    return result


if __name__ == "__main__":
    main()
