"""A planted workload: what a FastAPI/SQLAlchemy backend does to its database, with known flaws."""

from __future__ import annotations

import contextlib
import random

import psycopg

SCHEMA = """
CREATE TABLE tenants (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE customers (
    id int PRIMARY KEY, external_id text NOT NULL, email text NOT NULL,
    first_name text, last_name text, is_active boolean NOT NULL, created_at timestamptz NOT NULL
);
CREATE TABLE orders (
    id int PRIMARY KEY, tenant_id int NOT NULL REFERENCES tenants(id),
    customer_id int NOT NULL REFERENCES customers(id), status text NOT NULL,
    total numeric(10, 2) NOT NULL, created_at timestamptz NOT NULL
);
INSERT INTO tenants SELECT g, 'tenant ' || g FROM generate_series(1, 50) g;
INSERT INTO customers
SELECT g, 'ext-' || g, 'User' || g || '@Example.com', 'first' || (g % 300), 'last' || (g % 900),
       g % 100 <> 0, now() - g * interval '1 minute'
FROM generate_series(1, 20000) g;
INSERT INTO orders
SELECT g, 1 + g % 50, 1 + (g * 7919) % 20000, (ARRAY['new','paid','shipped','done','void'])[1 + g % 5],
       (g % 1000) / 10.0, now() - g * interval '1 minute'
FROM generate_series(1, 30000) g;
-- indexes added "for performance"
CREATE INDEX customers_is_active_idx ON customers (is_active);
CREATE INDEX customers_last_name_idx ON customers (last_name);
CREATE INDEX customers_last_first_idx ON customers (last_name, first_name);
CREATE INDEX customers_created_at_idx ON customers (created_at);
CREATE INDEX orders_total_idx ON orders (total);
CREATE INDEX orders_total_idx1 ON orders (total);
ANALYZE;
"""

# A failed CREATE UNIQUE INDEX CONCURRENTLY leaves an invalid index behind.
FAILED_INDEX = "CREATE UNIQUE INDEX CONCURRENTLY orders_customer_uniq ON orders (customer_id)"

LIST_BY_TENANT = ("SELECT id, customer_id, status, total FROM orders WHERE tenant_id = %s "
                  "ORDER BY created_at DESC LIMIT %s")
COUNT_BY_TENANT = "SELECT count(*) FROM orders WHERE tenant_id = %s"
SELECTIN = "SELECT id, customer_id, total FROM orders WHERE customer_id IN (%s, %s, %s)"
BY_EXTERNAL_ID = "SELECT id, email FROM customers WHERE external_id = %s"
BY_EMAIL = "SELECT id FROM customers WHERE lower(email) = lower(%s)"
INACTIVE = "SELECT count(*) FROM customers WHERE is_active = false"
N_PLUS_ONE = "SELECT id, email, first_name FROM customers WHERE id = %s"
SMALL_TABLE = "SELECT id FROM tenants WHERE name = %s"
HOT_LOOKUP = "SELECT name FROM tenants WHERE id = %s"
SLOW = "SELECT pg_sleep(0.12)"
UTILITY = "VACUUM tenants"
BROKEN = "SELECT count(*) FROM orders WHERE created_at > now() - interval '1 day'"


def build(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)  # type: ignore[arg-type]
        with contextlib.suppress(psycopg.errors.UniqueViolation):
            conn.execute(FAILED_INDEX)  # type: ignore[arg-type]
        conn.execute("SELECT pg_stat_statements_reset()")


def run_workload(dsn: str) -> None:
    rng = random.Random(4)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(60):
            tenant = rng.randint(1, 50)
            page = conn.execute(LIST_BY_TENANT, (tenant, 20)).fetchall()  # type: ignore[arg-type]
            # The N+1 loop: a lazy-loaded relationship (the order's customer) walked for every order on the page.
            for _, customer_id, _, _ in page:
                conn.execute(N_PLUS_ONE, (customer_id,))  # type: ignore[arg-type]
            conn.execute(COUNT_BY_TENANT, (tenant,))  # type: ignore[arg-type]
            conn.execute(SELECTIN, tuple(rng.randint(1, 20000) for _ in range(3)))  # type: ignore[arg-type]
            n = rng.randint(1, 20000)
            conn.execute(BY_EXTERNAL_ID, (f"ext-{n}",))  # type: ignore[arg-type]
            conn.execute(BY_EMAIL, (f"user{n}@example.com",))  # type: ignore[arg-type]
            conn.execute(SMALL_TABLE, (f"tenant {tenant}",))  # type: ignore[arg-type]
        for _ in range(5):
            conn.execute(INACTIVE)  # type: ignore[arg-type]
        # A hot lookup by primary key that no statement's rows drive (orders reference tenants, but no statement
        # on orders returns as many rows as there are lookups): no N+1.
        for _ in range(2000):
            conn.execute(HOT_LOOKUP, (rng.randint(1, 50),))  # type: ignore[arg-type]
        conn.execute(SLOW)  # type: ignore[arg-type]
        conn.execute(SLOW)  # type: ignore[arg-type]
        # normalized to "interval $1": parses, but cannot be planned
        conn.execute(BROKEN)  # type: ignore[arg-type]
        conn.execute(UTILITY)  # type: ignore[arg-type]
