"""PgBouncer's alert thresholds (``collectors/base/thresholds.py``); ``tests/rules/test_thresholds.py`` holds
the rules (``rules/dbpulse-pgbouncer.rules.yml``) to them."""

from __future__ import annotations

from collectors.base.thresholds import Threshold

CLIENTS_WAITING = Threshold("clients_waiting", 0, "count", "PgBouncerClientsWaiting")  # cl_waiting of a pool
MAXWAIT = Threshold("maxwait", 5, "seconds", "PgBouncerMaxWaitHigh")  # the oldest waiting client's wait
# the share of max_client_conn in use
CLIENT_CONNECTIONS = Threshold("client_connections", 0.9, "ratio", "PgBouncerClientConnectionsNearMax")

# the share of the fullest application pool in front of a PgBouncer pool that still has a free server
CHAIN_APP_POOL = Threshold("chain_app_pool", 0.9, "ratio", "PgBouncerChainAppPoolSaturated", written=">= #")

ALL = (CLIENTS_WAITING, MAXWAIT, CLIENT_CONNECTIONS, CHAIN_APP_POOL)
