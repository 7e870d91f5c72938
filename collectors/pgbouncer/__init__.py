"""PgBouncer: pools, clients, servers and the PostgreSQL behind each pool, read from the admin console."""
