"""``dbpulse advise``: run the advisor once and print the report."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from pydantic import ValidationError

from collectors.base.settings import problems_from
from collectors.postgres.access import error_line
from collectors.postgres.discovery import DISCOVERY, DatabaseSelection, select
from collectors.postgres.settings import PostgresTarget, target_from_flag
from monitor.advisor import AdviceReport, Advisor, AdvisorConnectionError, Thresholds, render_json, render_markdown
from monitor.advisor.databases import sub_target
from monitor.flags import EPILOG, HelpFormatter, fail
from monitor.web.pages import render_advice_report

PROG = "dbpulse advise"
FORMATS = ("text", "md", "json", "html")

# Threshold flags: (Thresholds field, flag, help). Defaults and types come from Thresholds.
_FLAGS = (
    ("min_table_rows", "--min-table-rows", "tables with fewer rows get no missing-index advice"),
    ("max_index_columns", "--max-index-columns", "widest index the advisor proposes"),
    ("min_improvement_ratio", "--min-improvement", "minimum relative cost cut of an advised index (0..1)"),
    ("index_budget_mb", "--index-budget-mb", "storage budget: the new indexes' total estimated size at most, "
     "in MB (0: no limit)"),
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
    defaults = Thresholds()
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
        formatter_class=HelpFormatter, epilog=EPILOG,
    )
    parser.add_argument("--postgres", required=True, metavar="[NAME=]DSN",
                        help="libpq connection string or URI of the database to advise on; NAME= before a URI "
                        "names the target, as in `dbpulse run`")
    parser.add_argument("--format", choices=FORMATS, help="report format; default: text on a terminal (coloured "
                        "where it shows colour, not with NO_COLOR set), else md")
    parser.add_argument("--output", metavar="FILE", help="write the report to FILE instead of stdout")
    parser.add_argument("--target", metavar="NAME",
                        help="name of the target in the report (default: NAME= of --postgres, else host:port/db, "
                        "as in `dbpulse run`)")
    parser.add_argument("--no-hypopg", action="store_true", help="skip HypoPG verification (heuristic advice)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--database", metavar="NAME", action="append", dest="databases",
                       help="advise this database of the --postgres server instead of the DSN's (repeatable: one "
                       "report section per database, each named <target>/<database>)")
    which.add_argument("--all-databases", action="store_true",
                       help="advise the DSN's database and every other one that allows connections, except "
                       "templates and managed clouds' admin databases (as `databases: auto` in `dbpulse run`)")
    parser.add_argument("--max-databases", type=int, default=DatabaseSelection().max, metavar="N",
                        help="with --all-databases: advise at most N databases (the DSN's included); the rest, by "
                        "name order, are named on stderr as left out")
    for name, flag, text in _FLAGS:
        default = getattr(defaults, name)
        parser.add_argument(flag, dest=name, type=type(default), default=default, metavar="N", help=text)
    parser.set_defaults(func=run_advise_command)


def render(report: AdviceReport, form: str) -> str:
    """The report in ``form`` (one of FORMATS), as a string: text without colour."""
    if form == "html":
        return render_advice_report(report, standalone=True)
    if form == "json":
        return render_json(report)
    if form == "text":
        from monitor.advisor.terminal import render_text  # rich: only for `dbpulse advise`, not in the service

        return render_text(report)
    return render_markdown(report)


def _output_problem(output: str) -> str | None:
    """Why FILE cannot be written, found before the analysis rather than after it."""
    path = Path(output)
    parent = path.parent
    if path.is_dir():
        return f"--output {output}: is a directory"
    if not parent.is_dir():
        return f"--output {output}: directory {parent} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"--output {output}: permission denied"
    return None


def run_advise_command(args: argparse.Namespace) -> int:
    overrides = {name: getattr(args, name) for name, _, _ in _FLAGS}
    if args.no_hypopg:
        overrides["use_hypopg"] = False
    try:
        settings = Thresholds.model_validate(overrides)
    except ValidationError as exc:
        flags = {name: flag for name, flag, _ in _FLAGS}
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else ""
            print(f"{PROG}: {flags.get(name, name)}: {err['msg']}", file=sys.stderr)
        return 2
    try:  # [NAME=]DSN, read and checked as `dbpulse run` reads and checks it
        postgres = PostgresTarget.model_validate(target_from_flag(args.postgres))
    except ValidationError as exc:
        return fail(PROG, "; ".join(f"--postgres: {p}" for p in problems_from(exc)))
    try:
        selection = DatabaseSelection(max=args.max_databases)  # `databases: auto`, with its max from the flag
    except ValidationError as exc:
        return fail(PROG, "; ".join(f"--max-databases: {err['msg']}" for err in exc.errors()))
    if args.output and (problem := _output_problem(args.output)):
        return fail(PROG, problem)
    dsn, target = postgres.dsn, args.target or postgres.target
    try:
        databases = _databases(args, selection, dsn, target, settings)
    except AdvisorConnectionError as exc:
        return fail(PROG, str(exc))
    except psycopg.Error as exc:
        return fail(PROG, f"cannot list the databases of {target}: {error_line(exc, dsn)}")
    reports: list[AdviceReport] = []
    unreachable = 0
    for db_dsn, db_target in databases:
        outcome = _advise(db_dsn, db_target, settings)
        if isinstance(outcome, AdviceReport):
            reports.append(outcome)
        elif outcome[0] == 1:
            return fail(PROG, outcome[1], code=1)
        elif len(databases) == 1:
            return fail(PROG, outcome[1])
        else:  # one database that cannot be advised: said, and the others go on
            print(f"{PROG}: {outcome[1]}", file=sys.stderr)
            unreachable += 1
    if not reports:
        return 2
    code = 2 if unreachable else 0
    terminal = not args.output and sys.stdout.isatty()
    form = args.format or ("text" if terminal else "md")
    if form == "text" and terminal:
        from monitor.advisor.terminal import print_text  # rich: only here, not in the service's memory

        for report in reports:
            print_text(report)  # rich: the terminal's width, colour only where it is shown
        return code
    text = render_all(reports, form) if (args.databases or args.all_databases) else render(reports[0], form)
    if not args.output:
        sys.stdout.write(text + "\n")
        return code
    try:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    except OSError as exc:  # e.g. the disk filled up during the analysis
        return fail(PROG, f"--output {args.output}: cannot write: {exc.strerror}")
    return code


def _databases(args: argparse.Namespace, selection: DatabaseSelection, dsn: str, target: str,
               settings: Thresholds) -> list[tuple[str, str]]:
    """(DSN, target name) of each database to advise: the DSN's alone by default; with --database, those; with
    --all-databases, the DSN's and the others ``selection`` watches (the rest named on stderr)."""
    if not args.databases and not args.all_databases:
        return [(dsn, target)]
    with Advisor(dsn, target, settings).connect() as conn:
        own = conn.info.dbname
        if args.all_databases:
            with conn.cursor(row_factory=dict_row) as cur:
                cur.execute(DISCOVERY.required_sql(conn.info.server_version).encode())
                found = select(cur.fetchall(), selection, own)
            names = [own, *sorted(found.watched)]
            if left_out := found.left_out.get("max"):
                print(f"{PROG}: {target}: {len(left_out)} database(s) left out, past --max-databases "
                      f"{args.max_databases} (the DSN's included, by name order): {', '.join(left_out)}",
                      file=sys.stderr)
        else:
            names = list(dict.fromkeys(args.databases))  # in the order given, each once
    return [(dsn, target) if name == own else (make_conninfo(dsn, dbname=name), sub_target(target, name))
            for name in names]


def _advise(dsn: str, target: str, settings: Thresholds) -> AdviceReport | tuple[int, str]:
    """One database's report, or (exit status, message) when it cannot be advised."""
    try:
        return Advisor(dsn, target, settings).run()
    except AdvisorConnectionError as exc:
        return 2, str(exc)
    except psycopg.OperationalError as exc:  # the server went away mid-run
        return 2, f"lost {target}: {error_line(exc, dsn)}"
    except Exception as exc:  # a bug of ours: one line that names it, never a traceback (docs/advisor.md)
        return 1, (f"the advisor failed on {target}: {type(exc).__name__}: {error_line(exc, dsn)} "
                   "(a dbpulse bug: please report it)")


def render_all(reports: list[AdviceReport], form: str) -> str:
    """Several databases' reports as one document, a section per database, in the order given: text and md
    one after the other, json a list, html one page."""
    if form == "json":
        return "[\n" + ",\n".join(render_json(r) for r in reports) + "\n]"
    if form == "html":
        pages = [render(r, form) for r in reports]
        first = pages[0]
        sections = "".join(page[page.index("<header>"):page.index("</main>") + len("</main>")] + "\n"
                           for page in pages[1:])
        at = first.index("<footer")
        return first[:at] + sections + first[at:]
    return "\n\n".join(render(r, form) for r in reports)
