#!/bin/sh
# Runs once, when the data directory is created: the extensions dbpulse uses and its
# least-privilege role (pg_monitor, plus SELECT so that the advisor can EXPLAIN). The password comes from DBPULSE_DB_PASSWORD.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v pw="$DBPULSE_DB_PASSWORD" <<'SQL'
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE ROLE dbpulse LOGIN PASSWORD :'pw' IN ROLE pg_monitor;
-- The advisor's what-if plans (EXPLAIN) need SELECT on the application's tables.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO dbpulse;
SQL
