"""``dbpulse advise``: run the advisor once and print the report."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields, replace
from pathlib import Path

import psycopg

from .advisor import Advisor, AdvisorConnectionError, AdvisorSettings, describe_dsn, scrub
from .report import render_html, render_json, render_markdown

# Threshold flags: (settings field, flag, help). Defaults come from AdvisorSettings.
_FLAGS = (
    ("min_table_rows", "--min-table-rows", "tables with fewer rows get no missing-index advice"),
    ("max_index_columns", "--max-index-columns", "widest index the advisor proposes"),
    ("min_improvement_ratio", "--min-improvement", "minimum relative cost cut of an advised index (0..1)"),
    ("verification_max_explains", "--max-explains", "budget: EXPLAINs per run for HypoPG verification"),
    ("verification_max_seconds", "--max-verify-seconds", "budget: seconds per run for HypoPG verification"),
    ("unused_min_stats_age_seconds", "--unused-min-stats-age",
     "seconds of statistics needed before an index is called unused"),
    ("low_selectivity_max_distinct", "--low-selectivity-distinct",
     "a leading column with at most this many distinct values is low-selectivity"),
    ("n_plus_one_min_calls", "--n-plus-one-min-calls", "calls before a lookup counts as N+1"),
    ("n_plus_one_min_share", "--n-plus-one-min-share", "share of all calls (0..1) before a lookup counts as N+1"),
    ("slow_mean_seconds", "--slow-mean-seconds", "mean execution time that makes a statement slow"),
    ("statement_timeout_seconds", "--statement-timeout", "statement_timeout of the advisor's session, seconds"),
)


def add_advise_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    defaults = AdvisorSettings()
    parser = subparsers.add_parser(
        "advise",
        help="analyze pg_stat_statements and the catalog once and print index advice",
        description=(
            "Read pg_stat_statements, the catalog and index statistics of one PostgreSQL database "
            "(read-only session), verify missing-index candidates with HypoPG hypothetical indexes "
            "when the extension is installed, and print the findings. Nothing is changed in the "
            "database: DDL is printed, never executed. Exit status is 0 even with findings, 2 when "
            "the database cannot be reached."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--postgres", required=True, metavar="DSN",
                        help="libpq connection string or URI of the database to advise on")
    parser.add_argument("--format", choices=("md", "json", "html"), default="md", help="report format")
    parser.add_argument("--output", metavar="FILE", help="write the report to FILE instead of stdout")
    parser.add_argument("--target", metavar="NAME",
                        help="name of the target in the report (default: user@host:port/db)")
    parser.add_argument("--no-hypopg", action="store_true", help="skip HypoPG verification (heuristic advice)")
    names = {f.name: f.type for f in fields(AdvisorSettings)}
    for name, flag, text in _FLAGS:
        default = getattr(defaults, name)
        parser.add_argument(flag, dest=name, type=type(default), default=default, help=text)
    assert all(name in names for name, _, _ in _FLAGS)
    parser.set_defaults(func=run_advise_command)


def run_advise_command(args: argparse.Namespace) -> int:
    overrides = {name: getattr(args, name) for name, _, _ in _FLAGS if hasattr(args, name)}
    settings = replace(AdvisorSettings(), **overrides)
    if getattr(args, "no_hypopg", False):
        settings = replace(settings, use_hypopg=False)
    target = args.target or describe_dsn(args.postgres)
    try:
        report = Advisor(args.postgres, target, settings).run()
    except AdvisorConnectionError as exc:
        print(f"dbpulse advise: {exc}", file=sys.stderr)
        return 2
    except psycopg.OperationalError as exc:  # the server went away mid-run
        first = (str(exc).strip().splitlines() or ["connection lost"])[0]
        print(f"dbpulse advise: lost {target}: {scrub(first, args.postgres)}", file=sys.stderr)
        return 2
    render = {"md": render_markdown, "json": render_json, "html": render_html}[args.format]
    text = render(report)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m monitor.advisor.cli advise ...``) until the main CLI wires it."""
    parser = argparse.ArgumentParser(prog="dbpulse")
    add_advise_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
