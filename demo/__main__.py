"""``python -m demo`` (what ``make demo`` runs): the demo stack's own entry point.

The demo sits beside the service, not in it: the ``dbpulse`` command never
imports it (import-linter keeps ``monitor`` and ``collectors`` off ``demo``),
so it has its own command line here, with the same flag names as
``dbpulse run`` where they mean the same.
"""

from __future__ import annotations

import argparse
import sys

from demo.stack import PROG, DemoOptions, main
from monitor.config import DEFAULT_PORT, parse_listen
from monitor.flags import EPILOG, HelpFormatter, Parser, fail, number

PORT_OR_ANY = number(int, minimum=0, maximum=65535)
DESCRIPTION = (
    "Start, in a temporary directory removed on exit, a throwaway PostgreSQL (pg_stat_statements, "
    "HypoPG), a Redis, a small demo business application (SQLAlchemy pool, Redis caches, Celery-style "
    "queues, /health endpoints) and a load generator, with dbpulse watching all three. Prints where "
    "to look (web UI, /metrics, the index report). Ctrl-C stops everything. Needs the PostgreSQL and "
    "Redis server binaries (make setup installs them) and a clone of the dbpulse repository: the demo "
    "(demo/) and its throwaway servers (harness/) are not part of the installed service."
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description=DESCRIPTION, formatter_class=HelpFormatter, epilog=EPILOG)
    parser.add_argument("--listen", metavar="HOST:PORT", default=f"127.0.0.1:{DEFAULT_PORT}",
                        help="address of dbpulse's web UI and /metrics (port 0: any free)")
    parser.add_argument("--host", help=argparse.SUPPRESS)  # before --listen; kept for old scripts
    parser.add_argument("--port", type=PORT_OR_ANY, help=argparse.SUPPRESS)
    parser.add_argument("--app-port", type=PORT_OR_ANY, default=0, metavar="PORT",
                        help="port of the demo application (0: any free)")
    parser.add_argument("--duration", type=number(float, above=0), metavar="SECONDS",
                        help="stop after SECONDS (default: run until Ctrl-C)")
    parser.add_argument("--interval", type=number(float, above=0), default=2.0, metavar="SECONDS",
                        help="poll interval of every source")
    parser.add_argument("--advisor-interval", type=number(float, minimum=1), default=10.0, metavar="SECONDS",
                        help="seconds between index-advisor runs")
    parser.add_argument("--scale", type=number(float, above=0), default=1.0, metavar="FACTOR",
                        help="seed data size factor")
    parser.add_argument("--clients", type=number(int, minimum=1), default=4, metavar="N",
                        help="concurrent load generator clients")
    parser.add_argument("--saturate", action="store_true",
                        help="start with PgBouncer saturated: more clients than its pool_size, each holding a "
                             "server for a second, so the pool chain shows the queue in PgBouncer (SIGUSR1 to the "
                             "demo turns it on and off)")
    return parser


def options_of(args: argparse.Namespace) -> DemoOptions:
    """The demo's options; ``--listen``, with the older ``--host``/``--port`` over it when given."""
    try:
        host, port = parse_listen(args.listen, any_port=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--listen: {exc}, got {args.listen!r}") from None
    return DemoOptions(host=args.host or host, port=port if args.port is None else args.port,
                       app_port=args.app_port, duration=args.duration, interval=args.interval,
                       advisor_interval=args.advisor_interval, scale=args.scale, clients=args.clients,
                       saturate=args.saturate)


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        options = options_of(args)
    except argparse.ArgumentTypeError as exc:
        return fail(PROG, str(exc))
    return main(options)


if __name__ == "__main__":
    sys.exit(run())
