# PostgreSQL 15 with HypoPG, for compose.yaml (pg_stat_statements ships with the server).
# The official image configures the PostgreSQL apt repository, which carries HypoPG.
FROM postgres:15-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15-hypopg \
 && rm -rf /var/lib/apt/lists/*
