"""Benchmark 5: the index advisor's throughput on the large database of benchmarks 1, 2 and 4.

The advisor (``monitor.advisor.Advisor``, what ``dbpulse advise`` runs) reads
the catalog of ~2,000 tables and 4,000 indexes and ~5,000 distinct statements
from ``pg_stat_statements``, analyzes every statement, builds index
candidates and verifies them with HypoPG under its EXPLAIN/time budget.
No peer exporter has an advisor, so there is no ratio: we report wall time
and statements analyzed per second, cold (first run) and warm (second run,
parse cache filled, what the periodic advisor sees).

The tables hold a few rows each, below the advisor's ``min_table_rows``, so
with its defaults it proposes no missing index and verifies nothing. A second
pair of runs sets ``min_table_rows=0`` so that the HypoPG verification runs
to its budget on this catalog.

``bench/advisor_bench.py`` (the advisor engineer's) times the same stages on
a small schema with realistic row counts.

Usage: .venv/bin/python -m bench.advisor_large [--tables 2000] [--statements 5000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
from pathlib import Path
from typing import Any

from bench import common, report
from bench.pgdata import big_database
from monitor.advisor.advisor import Advisor
from monitor.advisor.settings import Thresholds


def one(advisor: Advisor) -> dict[str, Any]:
    rep = advisor.run()
    v = rep.verification
    return {
        "wall_s": rep.duration_seconds,
        "statements_analyzed": rep.statements_analyzed,
        "statements_skipped": rep.skipped_count,
        "statements_per_s": (rep.statements_analyzed + rep.skipped_count) / rep.duration_seconds
        if rep.duration_seconds else None,
        "explains": getattr(v, "explains", None),
        "verify_s": getattr(v, "seconds", None),
        "budget_exhausted": getattr(v, "budget_exhausted", None),
        "findings": rep.counts_by_kind(),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=2000)
    parser.add_argument("--statements", type=int, default=5000)
    parser.add_argument("--profile", action="store_true", help="cProfile the first run; print the top functions")
    parser.add_argument("--results-dir", type=Path, default=None, help="default bench/results")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    common.dbpulse_version()  # the code about to run

    runs: dict[str, dict[str, Any]] = {}
    profile_text = ""
    with big_database(args.tables, args.statements) as db:
        counts = db.counts()
        print(f"database: {counts} (built in {sum(db.build_seconds.values()):.1f} s)")
        dsn = db.dsn("dbpulse_bench")
        for label, settings in (("defaults", Thresholds()), ("min_table_rows=0", Thresholds(min_table_rows=0))):
            advisor = Advisor(dsn, "bench", settings)
            if args.profile and label == "defaults":
                prof = cProfile.Profile()
                prof.enable()
                runs[f"{label}, cold"] = one(advisor)
                prof.disable()
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
                profile_text = out.getvalue()
            else:
                runs[f"{label}, cold"] = one(advisor)
            runs[f"{label}, warm"] = one(advisor)
        pg_version = db.version()

    result = {
        "params": vars(args) | {"results_dir": None},
        "database": counts,
        "versions": {"postgresql": pg_version, "dbpulse": common.dbpulse_version()},
        "runs": runs,
    }
    print()
    common.print_table(
        ["run", "wall s", "analyzed", "skipped", "statements/s", "EXPLAINs", "verify s", "budget hit"],
        [[n, r["wall_s"], r["statements_analyzed"], r["statements_skipped"], r["statements_per_s"], r["explains"],
          r["verify_s"], r["budget_exhausted"]] for n, r in runs.items()],
    )
    if profile_text:
        print(profile_text)
    report.publish("advisor_large", result, args.results_dir, docs=not args.no_docs)
    return result


if __name__ == "__main__":
    main()
