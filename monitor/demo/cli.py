"""``dbpulse demo``: the command-line entry of the demo stack."""

from __future__ import annotations

import argparse

DESCRIPTION = (
    "Start, in a temporary directory removed on exit, a throwaway PostgreSQL (pg_stat_statements, "
    "HypoPG), a Redis, a small demo business application (SQLAlchemy pool, Redis caches, Celery-style "
    "queues, /health endpoints) and a load generator, with dbpulse watching all three. Prints where "
    "to look (web UI, /metrics, the index report). Ctrl-C stops everything. Needs the PostgreSQL and "
    "Redis server binaries (make setup installs them)."
)


def _positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return number


def add_demo_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("demo", help="run dbpulse against a throwaway demo stack",
                                   description=DESCRIPTION, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--port", type=int, default=9630, help="port of dbpulse's web UI and /metrics (0: any free)")
    parser.add_argument("--host", default="127.0.0.1", help="address dbpulse listens on")
    parser.add_argument("--app-port", type=int, default=0, help="port of the demo application (0: any free)")
    parser.add_argument("--duration", type=_positive, metavar="SECONDS",
                        help="stop after SECONDS (default: run until Ctrl-C)")
    parser.add_argument("--interval", type=_positive, default=2.0, help="dbpulse poll interval, seconds")
    parser.add_argument("--advisor-interval", type=_positive, default=10.0, help="advisor interval, seconds")
    parser.add_argument("--scale", type=_positive, default=1.0, help="seed data size factor")
    parser.add_argument("--clients", type=int, default=4, help="concurrent load generator clients")
    parser.set_defaults(func=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    from monitor.demo.stack import DemoOptions, main  # imported here so --help stays fast

    return main(DemoOptions(host=args.host, port=args.port, app_port=args.app_port, duration=args.duration,
                            interval=args.interval, advisor_interval=args.advisor_interval, scale=args.scale,
                            clients=max(1, args.clients)))
