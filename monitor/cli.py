"""The ``dbpulse`` command line."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from collectors.postgres.settings import target_from_flag
from monitor import __version__
from monitor.advise import add_advise_parser
from monitor.config import DEFAULT_LISTEN, ConfigError, load, read_file, validate
from monitor.core import logs
from monitor.core.settings import named_url

EPILOG = "Documentation: README.md and docs/ in the dbpulse repository."


def _run_flags(args: argparse.Namespace) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    if args.listen:
        flags["listen"] = args.listen
    if args.log_level:
        flags.setdefault("log", {})["level"] = args.log_level
    if args.postgres:
        flags.setdefault("postgres", {})["targets"] = [target_from_flag(d) for d in args.postgres]
    if args.web_config:
        flags["web_config"] = str(args.web_config)
    if args.redis:
        flags.setdefault("redis", {})["targets"] = [named_url(u) for u in args.redis]
    if args.redis_queue:
        flags.setdefault("redis", {})["queues"] = list(args.redis_queue)
    if args.health_url:
        flags.setdefault("health", {})["targets"] = [named_url(u) for u in args.health_url]
    if args.advice_interval is not None:
        advisor = flags.setdefault("advisor", {})
        if args.advice_interval == 0:
            advisor["enabled"] = False
        else:
            advisor["interval"] = args.advice_interval
    if args.interval is not None:
        for section in ("postgres", "redis", "health"):
            flags.setdefault(section, {})["interval"] = args.interval
    return flags


def cmd_run(args: argparse.Namespace) -> int:
    from monitor import service  # imported here so --help stays fast

    try:
        config = load(args.config, _run_flags(args))
    except ConfigError as exc:
        print(f"dbpulse: {exc}", file=sys.stderr)
        return 2
    logs.setup(config.log.level, config.log.format)
    if not config.has_targets:
        print("dbpulse: nothing to watch: give --postgres DSN, --redis URL, --health-url URL or a config "
              "file with postgres.targets, redis.targets or health.targets", file=sys.stderr)
        return 2
    try:
        return service.run(config)
    except ConfigError as exc:  # e.g. a password_file that cannot be read
        print(f"dbpulse: {exc}", file=sys.stderr)
        return 2


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        config = validate(read_file(args.file), str(args.file))
    except ConfigError as exc:
        print(f"dbpulse: {exc}", file=sys.stderr)
        return 1
    print(f"{args.file}: OK ({len(config.postgres.targets)} PostgreSQL target(s), "
          f"{len(config.redis.targets)} Redis target(s), {len(config.health.targets)} health target(s))")
    return 0


DEMO_DESCRIPTION = (
    "Start, in a temporary directory removed on exit, a throwaway PostgreSQL (pg_stat_statements, "
    "HypoPG), a Redis, a small demo business application (SQLAlchemy pool, Redis caches, Celery-style "
    "queues, /health endpoints) and a load generator, with dbpulse watching all three. Prints where "
    "to look (web UI, /metrics, the index report). Ctrl-C stops everything. Needs the PostgreSQL and "
    "Redis server binaries (make setup installs them) and a clone of the dbpulse repository: the demo "
    "(demo/) and its throwaway servers (harness/) are not part of the installed service."
)


def _positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return number


def add_demo_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("demo", help="run dbpulse against a throwaway demo stack", description=DEMO_DESCRIPTION,
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter, epilog=EPILOG)
    parser.add_argument("--port", type=int, default=9630, help="port of dbpulse's web UI and /metrics (0: any free)")
    parser.add_argument("--host", default="127.0.0.1", help="address dbpulse listens on")
    parser.add_argument("--app-port", type=int, default=0, help="port of the demo application (0: any free)")
    parser.add_argument("--duration", type=_positive, metavar="SECONDS",
                        help="stop after SECONDS (default: run until Ctrl-C)")
    parser.add_argument("--interval", type=_positive, default=2.0, help="dbpulse poll interval, seconds")
    parser.add_argument("--advisor-interval", type=_positive, default=10.0, help="advisor interval, seconds")
    parser.add_argument("--scale", type=_positive, default=1.0, help="seed data size factor")
    parser.add_argument("--clients", type=int, default=4, help="concurrent load generator clients")
    parser.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    # The demo lives beside the service in the repository, not inside it (the installed service never
    # needs it): found when the checkout is on sys.path, as scripts/setup.sh arranges for .venv.
    try:
        stack = importlib.import_module("demo.stack")
    except ModuleNotFoundError as exc:
        if exc.name not in ("demo", "demo.stack", "harness", "harness.servers"):
            raise
        print("dbpulse demo: the demo is not installed here; it runs from a clone of the dbpulse repository "
              "(`make demo`)", file=sys.stderr)
        return 2
    options = stack.DemoOptions(host=args.host, port=args.port, app_port=args.app_port, duration=args.duration,
                                interval=args.interval, advisor_interval=args.advisor_interval, scale=args.scale,
                                clients=max(1, args.clients))
    return int(stack.main(options))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dbpulse",
        description="Observability sidecar for PostgreSQL, Redis and the application's health endpoints: "
        "Prometheus metrics and index advice.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"dbpulse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", help="run the service", description=(
        "Poll the configured sources in the background and serve /metrics, /healthz and /readyz. "
        "Flags override the configuration file; DBPULSE_LISTEN, DBPULSE_POSTGRES (space-separated "
        "DSNs) and DBPULSE_LOG_LEVEL sit between the two."), epilog=EPILOG)
    run.add_argument("--config", type=Path, metavar="FILE", help="YAML configuration file")
    run.add_argument("--listen", metavar="HOST:PORT", help=f"address to serve on (default {DEFAULT_LISTEN})")
    run.add_argument("--postgres", action="append", metavar="[NAME=]DSN",
                     help="PostgreSQL to watch (repeatable); NAME= before a URI sets the target label. "
                     "Prefer PGPASSWORD, ~/.pgpass or password_env/password_file in the config file "
                     "to a password in the DSN")
    run.add_argument("--redis", action="append", metavar="[NAME=]URL",
                     help="Redis to watch (repeatable): redis://, rediss:// or unix://; NAME= sets the target "
                     "label. Prefer password_env/password_file in the config file to a password in the URL")
    run.add_argument("--redis-queue", action="append", metavar="KEY",
                     help="list or stream key whose length to report on every Redis target (repeatable)")
    run.add_argument("--health-url", action="append", metavar="[NAME=]BASE_URL",
                     help="application base URL whose /health, /health/live and /health/ready to probe "
                     "(repeatable; paths, headers and timeouts in the config file)")
    run.add_argument("--interval", type=float, metavar="SECONDS", help="poll interval of every source (default 15)")
    run.add_argument("--advice-interval", type=float, metavar="SECONDS",
                     help="seconds between index-advisor runs per PostgreSQL target (default 300; 0 disables)")
    run.add_argument("--web-config", type=Path, metavar="FILE",
                     help="TLS and basic auth for the HTTP server, in the Prometheus exporter-toolkit format")
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate a configuration file",
                           description="Exit 0 if FILE is valid; otherwise list every problem with its key.")
    check.add_argument("file", type=Path, metavar="FILE")
    check.set_defaults(func=cmd_check_config)
    add_advise_parser(sub)
    add_demo_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
