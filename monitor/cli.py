"""The ``dbpulse`` command line."""

from __future__ import annotations

import argparse
import logging
import ssl
import sys
from pathlib import Path
from typing import Any

from collectors.base.settings import PollSettings
from collectors.registry import sources
from monitor import __version__
from monitor.advise import add_advise_parser
from monitor.advisor.settings import AdvisorSettings
from monitor.advisor.store import StateError, check_state
from monitor.config import DEFAULT_LISTEN, ENV_TARGETS, Config, ConfigError, ConfigProblem, Layers
from monitor.core import logs
from monitor.flags import EPILOG, HelpFormatter, Parser, number
from monitor.web.webconfig import WebConfig, load_web_config

log = logging.getLogger("dbpulse")

def _run_flags(args: argparse.Namespace) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    if args.listen:
        flags["listen"] = args.listen
    if args.log_level:
        flags.setdefault("log", {})["level"] = args.log_level
    if args.web_config:
        flags["web_config"] = str(args.web_config)
    if args.prometheus_url:
        flags.setdefault("prometheus", {})["url"] = args.prometheus_url
    for spec in sources():
        for flag in spec.flags:
            if values := getattr(args, _dest(flag.option)):
                flags.setdefault(spec.name, {})[flag.field] = [flag.convert(v) for v in values]
    if args.advisor_interval is not None:
        advisor = flags.setdefault("advisor", {})
        if args.advisor_interval == 0:
            advisor["enabled"] = False
        else:
            advisor["interval"] = args.advisor_interval
    if args.interval is not None:
        for spec in sources():
            flags.setdefault(spec.name, {})["interval"] = args.interval
    return flags


def _dest(option: str) -> str:
    return option.removeprefix("--").replace("-", "_")


class ConfigErrors(Exception):
    """The problems of the configuration file and of the web config file it names."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(f"dbpulse: {e}" for e in errors))


def prepare(path: Path | None, flags: dict[str, Any] | None = None) -> tuple[Layers, Config, WebConfig]:
    """Everything `run` checks before it connects, for `run` and `check-config` alike: the configuration
    (file, environment, flags), the secrets it names, that there is something to watch, and the web config.
    Raises ``ConfigErrors`` with every problem of every file."""
    try:
        layers = Layers.read(path, flags)
    except ConfigError as exc:  # the file cannot be read or is not YAML
        raise ConfigErrors([exc]) from None
    errors: list[ConfigError] = []
    config: Config | None = None
    try:
        config = layers.config()
    except ConfigError as exc:
        errors.append(exc)
    web_config, web_path = WebConfig(), layers.merged().get("web_config")
    if isinstance(web_path, str | Path):
        try:
            web_config = load_web_config(Path(web_path))
        except ConfigError as exc:
            errors.append(exc)
    if config is not None and config.advisor.state_dir is not None and config.advisor.state_fallback == "fail":
        problem = check_state(config.advisor.state_dir)
        if problem:
            errors.append(ConfigError(layers.source, [ConfigProblem("advisor.state_dir", problem)]))
    if config is not None and config.prometheus.url:
        try:
            config.prometheus.ssl_context()
        except (ssl.SSLError, OSError) as exc:  # a file that is not PEM, a key that does not match its certificate
            errors.append(ConfigError(layers.source, [ConfigProblem(
                "prometheus.tls_config", f"cannot load the CA, certificate or key: {exc}")]))
    if errors or config is None:
        raise ConfigErrors(errors)
    return layers, config, web_config


def cmd_run(args: argparse.Namespace) -> int:
    from monitor import service  # imported here so --help stays fast

    try:
        layers, config, web_config = prepare(args.config, _run_flags(args))
    except ConfigErrors as exc:
        print(exc, file=sys.stderr)
        return 2
    logs.setup(config.log.level, config.log.format)
    log.info("targets: %s", layers.origins(config))
    try:
        return service.run(config, web_config)
    except (ConfigError, StateError) as exc:  # e.g. a password_file that became unreadable since the check
        print(f"dbpulse: {exc}", file=sys.stderr)
        return 2


def cmd_check_config(args: argparse.Namespace) -> int:
    """Exit as `run --config FILE` would before connecting: 0, or 2 with every problem."""
    try:
        layers, config, _ = prepare(args.file)
    except ConfigErrors as exc:
        print(exc, file=sys.stderr)
        return 2
    counts = ", ".join(f"{len(config.section(s.name).targets)} {s.title} target(s)" for s in sources())
    print(f"{args.file}: OK ({counts}): {layers.origins(config)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="dbpulse",
        description="Observability sidecar for PostgreSQL, Redis and the application's health endpoints: "
        "Prometheus metrics and index advice.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"dbpulse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", help="run the service", formatter_class=HelpFormatter, description=(
        "Poll the configured sources in the background and serve /metrics, /healthz and /readyz. "
        f"Flags override the configuration file, and DBPULSE_LISTEN, {ENV_TARGETS} (space-separated "
        f"targets) and DBPULSE_LOG_LEVEL sit between the two; the lists these flags give ("
        f"{', '.join(f.option for s in sources() for f in s.flags)}, {ENV_TARGETS}) are added to the file's, "
        "and the log says where each target came from."), epilog=EPILOG)
    run.add_argument("--config", type=Path, metavar="FILE", help="YAML configuration file")
    run.add_argument("--listen", metavar="HOST:PORT", help=f"address to serve on (default: {DEFAULT_LISTEN})")
    for flag in (f for spec in sources() for f in spec.flags):
        run.add_argument(flag.option, action="append", metavar=flag.metavar, help=flag.help)
    run.add_argument("--interval", type=number(float, above=0), metavar="SECONDS",
                     help=f"poll interval of every source (default: {PollSettings().interval:g})")
    run.add_argument("--advisor-interval", type=number(float, minimum=0), metavar="SECONDS",
                     help=f"seconds between index-advisor runs per PostgreSQL target (default: "
                     f"{AdvisorSettings().interval:g}; 0 disables)")
    run.add_argument("--advice-interval", dest="advisor_interval", type=number(float, minimum=0),
                     help=argparse.SUPPRESS)  # its former name: hidden, kept for existing scripts
    run.add_argument("--web-config", type=Path, metavar="FILE",
                     help="TLS and basic auth for the HTTP server, in the Prometheus exporter-toolkit format")
    run.add_argument("--prometheus-url", metavar="URL",
                     help="a Prometheus HTTP query API that scrapes this dbpulse: the UI's charts then offer 6 h, 24 h "
                     "and 7 d (prometheus.* in the config file: auth, TLS, timeout)")
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate a configuration file", description=(
        "Check FILE as `dbpulse run --config FILE` would before it connects, in this environment "
        "(DBPULSE_* variables, the variables and files that hold secrets): exit 0, or 2 (as run would) "
        "listing every problem with its key."), epilog=EPILOG)
    check.add_argument("file", type=Path, metavar="FILE", help="YAML configuration file")
    check.set_defaults(func=cmd_check_config)
    add_advise_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
