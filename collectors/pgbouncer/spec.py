"""PgBouncer as a registered source: its section, pollers, flag, charts and view (``collectors/base/spec.py``)."""

from __future__ import annotations

from collectors.base.spec import ChartSpec, Flag, SourceSpec
from collectors.pgbouncer.chain import chain_samples, pool_chain
from collectors.pgbouncer.poller import pollers
from collectors.pgbouncer.settings import PgBouncerSettings, target_from_flag
from collectors.pgbouncer.snapshot import PgBouncerSnapshot

FLAG_HELP = ("PgBouncer to watch (repeatable): the DSN of its admin console (database pgbouncer, a stats_users "
             "role); NAME= before a URI sets the target label. Prefer password_env/password_file in the config "
             "file to a password in the DSN")

CHAIN_CHARTS = "chain-"  # the key prefix of the pool chain's charts (sections/pgbouncer.html)

CHARTS = (
    ChartSpec("waiting", "Clients waiting", "count", "dbpulse_pgbouncer_pool_clients", label="database",
              match={"state": "waiting"}, combine=True, threshold="PgBouncerClientsWaiting"),
    ChartSpec("maxwait", "Longest wait", "seconds", "dbpulse_pgbouncer_pool_maxwait_seconds", label="database",
              threshold="PgBouncerMaxWaitHigh"),
    # One chart per database: each user's pool (a line) against the database's pool_size.
    ChartSpec("servers-{value}", "Pool {value}: active servers", "count", "dbpulse_pgbouncer_pool_servers",
              label="user", match={"state": "active"}, each="database",
              ceiling="dbpulse_pgbouncer_database_pool_size", ceiling_label="pool_size"),
    # The pool chain's trend, one chart per database (drawn in the section's pool-chain block: CHAIN_CHARTS):
    # each link's use against its limit, one line per link, so the chart shows where the queue moves.
    ChartSpec(f"{CHAIN_CHARTS}{{value}}", "Pool chain {value}: each link's use of its limit", "ratio",
              "dbpulse_pgbouncer_chain_saturation_ratio", label="link", each="database", ceiling=1.0,
              ceiling_label="limit"),
)

SPEC = SourceSpec(
    name="pgbouncer", title="PgBouncer", order=1, settings=PgBouncerSettings, pollers=pollers,
    snapshot=PgBouncerSnapshot,
    flags=(Flag("--pgbouncer", "[NAME=]DSN", FLAG_HELP, convert=target_from_flag),),
    charts=CHARTS, joined_view=pool_chain, joined_samples=chain_samples,
)
