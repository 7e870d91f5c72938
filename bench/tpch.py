"""TPC-H for the advisor benchmark: data from tpchgen-cli, the schema (primary keys only), and a workload.

``load(conn, scale, workdir)`` generates the eight tables as CSV with
``tpchgen-cli csv`` (PyPI; a Rust binary, seconds per scale factor) and COPYs
them in, creating each table in the COPY's transaction; then the primary keys,
no secondary index and no foreign key (the advisors have something to find),
and ``VACUUM (ANALYZE)``.

``WORKLOAD`` has 29 statement shapes nobody here tuned an advisor to: 20
application-style lookups and short ranges sent with server-side binding
(``$n`` parameters, a custom plan with real values per execution, so
pg_qualstats sees the constants) and 9 TPC-H reports sent with literals, as in
the spec (``date '1995-03-15'``, ``interval '90' day``), the way a BI tool or
psycopg2 sends them; pg_stat_statements normalizes those to ``date $1``,
``interval $2 day``. Calls are per run at scale factor 1 and are scaled by
``calls``. Adapted from the research notes of the advisor-plan issue.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import psycopg

Params = Callable[[random.Random, dict[str, Any]], tuple[Any, ...]]


class Stmt(NamedTuple):
    sql: str  # %s placeholders
    params: Params
    calls: int  # executions per run at scale factor 1
    client_side: bool  # True: literals merged in by the client (ClientCursor), as a report tool sends them
    name: str


SEGMENTS = ["AUTOMOBILE", "BUILDING", "FURNITURE", "MACHINERY", "HOUSEHOLD"]
REGIONS = ["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"]
NATIONS = ["ALGERIA", "ARGENTINA", "BRAZIL", "CANADA", "EGYPT", "ETHIOPIA",
           "FRANCE", "GERMANY", "INDIA", "INDONESIA", "IRAN", "IRAQ", "JAPAN",
           "JORDAN", "KENYA", "MOROCCO", "MOZAMBIQUE", "PERU", "CHINA",
           "ROMANIA", "SAUDI ARABIA", "VIETNAM", "RUSSIA", "UNITED KINGDOM",
           "UNITED STATES"]
TYPE1 = ["STANDARD", "SMALL", "MEDIUM", "LARGE", "ECONOMY", "PROMO"]
TYPE2 = ["ANODIZED", "BURNISHED", "PLATED", "POLISHED", "BRUSHED"]
TYPE3 = ["TIN", "NICKEL", "BRASS", "STEEL", "COPPER"]
CONT1 = ["SM", "LG", "MED", "JUMBO", "WRAP"]
CONT2 = ["CASE", "BOX", "BAG", "JAR", "PKG", "PACK", "CAN", "DRUM"]
SHIPMODES = ["REG AIR", "AIR", "RAIL", "SHIP", "TRUCK", "MAIL", "FOB"]
PRIORITIES = ["1-URGENT", "2-HIGH", "3-MEDIUM", "4-NOT SPECIFIED", "5-LOW"]

ORDER_START = dt.date(1992, 1, 1)
ORDER_END = dt.date(1998, 8, 2)          # last o_orderdate
SHIP_END = dt.date(1998, 12, 1)


def make_context(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Scale-dependent ranges plus a sample of real values for lookups."""
    row = conn.execute("SELECT count(*) FROM customer").fetchone()
    ncust = int(row[0]) if row else 0
    sf = ncust / 150000
    phones = [r[0] for r in conn.execute(
        "SELECT c_phone FROM customer TABLESAMPLE SYSTEM (1) REPEATABLE (42) LIMIT 5000")]
    return {
        "sf": sf,
        "ncust": ncust,
        "npart": int(200000 * sf),
        "nsupp": int(10000 * sf),
        "norders": int(1500000 * sf),
        "nclerk": max(1, int(1000 * sf)),
        "phones": phones or ["00-000-000-0000"],
    }


def _day(rng: random.Random, start: dt.date = ORDER_START, end: dt.date = ORDER_END) -> dt.date:
    return start + dt.timedelta(days=rng.randrange((end - start).days + 1))


def _orderkey(rng: random.Random, ctx: dict[str, Any]) -> int:
    # dbgen's sparse keys: 8 used keys out of every 32
    i = rng.randrange(ctx["norders"])
    return (i // 8) * 32 + (i % 8) + 1


def _custkey(rng: random.Random, ctx: dict[str, Any]) -> int:
    return rng.randint(1, ctx["ncust"])


def _brand(rng: random.Random) -> str:
    return f"Brand#{rng.randint(1, 5)}{rng.randint(1, 5)}"


def _ptype(rng: random.Random) -> str:
    return f"{rng.choice(TYPE1)} {rng.choice(TYPE2)} {rng.choice(TYPE3)}"


def _first_of_month(rng: random.Random, y0: int, m0: int, y1: int, m1: int) -> dt.date:
    n = (y1 * 12 + m1) - (y0 * 12 + m0)
    k = y0 * 12 + (m0 - 1) + rng.randint(0, n)
    return dt.date(k // 12, k % 12 + 1, 1)


# --------------------------------------------------------------------------
# OLTP: point lookups and short range scans, server-side bound
# --------------------------------------------------------------------------
OLTP = [
    Stmt("SELECT c_custkey, c_name, c_address, c_phone, c_acctbal"
         " FROM customer WHERE c_custkey = %s",
         lambda r, c: (_custkey(r, c),), 3000, False, "customer_by_key"),
    Stmt("SELECT o_orderkey, o_custkey, o_orderstatus, o_totalprice, o_orderdate,"
         " o_orderpriority FROM orders WHERE o_orderkey = %s",
         lambda r, c: (_orderkey(r, c),), 3000, False, "order_by_key"),
    Stmt("SELECT l_linenumber, l_partkey, l_suppkey, l_quantity, l_extendedprice,"
         " l_discount, l_shipdate FROM lineitem WHERE l_orderkey = %s"
         " ORDER BY l_linenumber",
         lambda r, c: (_orderkey(r, c),), 3000, False, "lineitems_of_order"),
    Stmt("SELECT p.p_name, p.p_retailprice, ps.ps_suppkey, ps.ps_availqty,"
         " ps.ps_supplycost FROM part p JOIN partsupp ps ON ps.ps_partkey = p.p_partkey"
         " WHERE p.p_partkey = %s",
         lambda r, c: (r.randint(1, c["npart"]),), 1500, False, "part_with_offers"),
    Stmt("SELECT o_orderkey, o_orderdate, o_orderstatus, o_totalprice FROM orders"
         " WHERE o_custkey = %s ORDER BY o_orderdate DESC LIMIT 20",
         lambda r, c: (_custkey(r, c),), 1000, False, "orders_of_customer"),
    Stmt("SELECT count(*), sum(o_totalprice) FROM orders"
         " WHERE o_custkey = %s AND o_orderdate >= %s",
         lambda r, c: (_custkey(r, c), _day(r, dt.date(1995, 1, 1), dt.date(1998, 1, 1))),
         400, False, "customer_order_totals"),
    Stmt("SELECT c_custkey, c_name, c_acctbal FROM customer WHERE c_phone = %s",
         lambda r, c: (r.choice(c["phones"]),), 300, False, "customer_by_phone"),
    Stmt("UPDATE customer SET c_acctbal = c_acctbal + %s WHERE c_custkey = %s",
         lambda r, c: (round(r.uniform(-50, 50), 2), _custkey(r, c)), 500, False,
         "customer_adjust_balance"),
    Stmt("SELECT ps_partkey, ps_availqty, ps_supplycost FROM partsupp"
         " WHERE ps_suppkey = %s AND ps_availqty < %s ORDER BY ps_availqty LIMIT 50",
         lambda r, c: (r.randint(1, c["nsupp"]), r.randint(100, 2000)), 400, False,
         "low_stock_of_supplier"),
    Stmt("SELECT p_partkey, p_name, p_retailprice FROM part"
         " WHERE p_brand = %s AND p_size = %s",
         lambda r, c: (_brand(r), r.randint(1, 50)), 400, False, "parts_by_brand_size"),
    Stmt("SELECT p_partkey, p_name, p_container, p_retailprice FROM part"
         " WHERE p_type = %s AND p_size BETWEEN %s AND %s ORDER BY p_retailprice LIMIT 50",
         lambda r, c: (lambda s: (_ptype(r), s, s + r.randint(0, 5)))(r.randint(1, 45)),
         300, False, "parts_by_type_size"),
    Stmt("SELECT p_partkey, p_name, p_brand FROM part"
         " WHERE p_container = %s AND p_retailprice < %s",
         lambda r, c: (f"{r.choice(CONT1)} {r.choice(CONT2)}",
                       r.randint(905, 1000)), 200, False, "cheap_parts_in_container"),
    Stmt("SELECT s_suppkey, s_name, s_acctbal, s_phone FROM supplier"
         " WHERE s_nationkey = %s ORDER BY s_acctbal DESC LIMIT 20",
         lambda r, c: (r.randint(0, 24),), 300, False, "suppliers_by_nation"),
    Stmt("SELECT c_custkey, c_name, c_acctbal FROM customer"
         " WHERE c_nationkey = %s AND c_mktsegment = %s ORDER BY c_acctbal DESC LIMIT 50",
         lambda r, c: (r.randint(0, 24), r.choice(SEGMENTS)), 200, False,
         "top_customers_by_nation_segment"),
    Stmt("SELECT o_orderkey, o_custkey, o_totalprice, o_orderdate FROM orders"
         " WHERE o_orderdate >= %s AND o_orderdate < %s"
         " ORDER BY o_orderdate DESC, o_orderkey LIMIT 50",
         lambda r, c: (lambda d: (d, d + dt.timedelta(days=r.randint(1, 7))))(_day(r)),
         500, False, "orders_in_date_range"),
    Stmt("SELECT o_orderkey, o_orderdate, o_totalprice FROM orders"
         " WHERE o_clerk = %s AND o_orderstatus = %s ORDER BY o_orderdate LIMIT 100",
         lambda r, c: (f"Clerk#{r.randint(1, c['nclerk']):09d}", r.choice("OFP")),
         200, False, "orders_of_clerk"),
    Stmt("SELECT count(*) FROM orders"
         " WHERE o_orderstatus = %s AND o_orderpriority = %s AND o_orderdate >= %s",
         lambda r, c: (r.choice("OFP"), r.choice(PRIORITIES),
                       _day(r, dt.date(1998, 1, 1), ORDER_END)), 50, False,
         "order_backlog_by_priority"),
    Stmt("SELECT l_orderkey, l_linenumber, l_partkey, l_quantity FROM lineitem"
         " WHERE l_shipdate = %s AND l_shipmode = %s",
         lambda r, c: (_day(r, dt.date(1992, 1, 2), SHIP_END), r.choice(SHIPMODES)),
         150, False, "shipments_of_day"),
    Stmt("SELECT l_orderkey, l_quantity, l_extendedprice, l_shipdate FROM lineitem"
         " WHERE l_partkey = %s ORDER BY l_shipdate DESC LIMIT 10",
         lambda r, c: (r.randint(1, c["npart"]),), 200, False, "recent_sales_of_part"),
    Stmt("SELECT count(*), sum(l_quantity) FROM lineitem"
         " WHERE l_suppkey = %s AND l_receiptdate > %s",
         lambda r, c: (r.randint(1, c["nsupp"]),
                       _day(r, dt.date(1998, 6, 1), SHIP_END)), 100, False,
         "supplier_backlog"),
]

# --------------------------------------------------------------------------
# Reports: TPC-H queries as in the spec, with literals (client-side binding)
# --------------------------------------------------------------------------
Q1 = """SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty,
  sum(l_extendedprice) AS sum_base_price,
  sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
  sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
  avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price,
  avg(l_discount) AS avg_disc, count(*) AS count_order
FROM lineitem
WHERE l_shipdate <= date '1998-12-01' - interval %s day
GROUP BY l_returnflag, l_linestatus
ORDER BY l_returnflag, l_linestatus"""

Q3 = """SELECT l_orderkey, sum(l_extendedprice * (1 - l_discount)) AS revenue,
  o_orderdate, o_shippriority
FROM customer, orders, lineitem
WHERE c_mktsegment = %s AND c_custkey = o_custkey AND l_orderkey = o_orderkey
  AND o_orderdate < date %s AND l_shipdate > date %s
GROUP BY l_orderkey, o_orderdate, o_shippriority
ORDER BY revenue DESC, o_orderdate
LIMIT 10"""

Q4 = """SELECT o_orderpriority, count(*) AS order_count
FROM orders
WHERE o_orderdate >= date %s AND o_orderdate < date %s + interval '3' month
  AND EXISTS (SELECT * FROM lineitem
              WHERE l_orderkey = o_orderkey AND l_commitdate < l_receiptdate)
GROUP BY o_orderpriority
ORDER BY o_orderpriority"""

Q5 = """SELECT n_name, sum(l_extendedprice * (1 - l_discount)) AS revenue
FROM customer, orders, lineitem, supplier, nation, region
WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey AND l_suppkey = s_suppkey
  AND c_nationkey = s_nationkey AND s_nationkey = n_nationkey
  AND n_regionkey = r_regionkey AND r_name = %s
  AND o_orderdate >= date %s AND o_orderdate < date %s + interval '1' year
GROUP BY n_name
ORDER BY revenue DESC"""

Q6 = """SELECT sum(l_extendedprice * l_discount) AS revenue
FROM lineitem
WHERE l_shipdate >= date %s AND l_shipdate < date %s + interval '1' year
  AND l_discount BETWEEN %s - 0.01 AND %s + 0.01 AND l_quantity < %s"""

Q10 = """SELECT c_custkey, c_name, sum(l_extendedprice * (1 - l_discount)) AS revenue,
  c_acctbal, n_name, c_address, c_phone, c_comment
FROM customer, orders, lineitem, nation
WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey
  AND o_orderdate >= date %s AND o_orderdate < date %s + interval '3' month
  AND l_returnflag = 'R' AND c_nationkey = n_nationkey
GROUP BY c_custkey, c_name, c_acctbal, c_phone, n_name, c_address, c_comment
ORDER BY revenue DESC
LIMIT 20"""

Q12 = """SELECT l_shipmode,
  sum(CASE WHEN o_orderpriority = '1-URGENT' OR o_orderpriority = '2-HIGH'
      THEN 1 ELSE 0 END) AS high_line_count,
  sum(CASE WHEN o_orderpriority <> '1-URGENT' AND o_orderpriority <> '2-HIGH'
      THEN 1 ELSE 0 END) AS low_line_count
FROM orders, lineitem
WHERE o_orderkey = l_orderkey AND l_shipmode IN (%s, %s)
  AND l_commitdate < l_receiptdate AND l_shipdate < l_commitdate
  AND l_receiptdate >= date %s AND l_receiptdate < date %s + interval '1' year
GROUP BY l_shipmode
ORDER BY l_shipmode"""

Q14 = """SELECT 100.00 * sum(CASE WHEN p_type LIKE 'PROMO%%'
      THEN l_extendedprice * (1 - l_discount) ELSE 0 END)
  / sum(l_extendedprice * (1 - l_discount)) AS promo_revenue
FROM lineitem, part
WHERE l_partkey = p_partkey
  AND l_shipdate >= date %s AND l_shipdate < date %s + interval '1' month"""

Q19 = """SELECT sum(l_extendedprice * (1 - l_discount)) AS revenue
FROM lineitem, part
WHERE (p_partkey = l_partkey AND p_brand = %s
       AND p_container IN ('SM CASE', 'SM BOX', 'SM PACK', 'SM PKG')
       AND l_quantity >= %s AND l_quantity <= %s + 10
       AND p_size BETWEEN 1 AND 5
       AND l_shipmode IN ('AIR', 'AIR REG') AND l_shipinstruct = 'DELIVER IN PERSON')
   OR (p_partkey = l_partkey AND p_brand = %s
       AND p_container IN ('MED BAG', 'MED BOX', 'MED PKG', 'MED PACK')
       AND l_quantity >= %s AND l_quantity <= %s + 10
       AND p_size BETWEEN 1 AND 10
       AND l_shipmode IN ('AIR', 'AIR REG') AND l_shipinstruct = 'DELIVER IN PERSON')
   OR (p_partkey = l_partkey AND p_brand = %s
       AND p_container IN ('LG CASE', 'LG BOX', 'LG PACK', 'LG PKG')
       AND l_quantity >= %s AND l_quantity <= %s + 10
       AND p_size BETWEEN 1 AND 15
       AND l_shipmode IN ('AIR', 'AIR REG') AND l_shipinstruct = 'DELIVER IN PERSON')"""


def _iso(d: dt.date) -> str:
    return d.isoformat()


def _q3(r: random.Random, c: dict[str, Any]) -> tuple[Any, ...]:
    d = _iso(dt.date(1995, 3, r.randint(1, 31)))
    return (r.choice(SEGMENTS), d, d)


def _q4(r: random.Random, c: dict[str, Any]) -> tuple[Any, ...]:
    d = _iso(_first_of_month(r, 1993, 1, 1997, 10))
    return (d, d)


def _q5(r: random.Random, c: dict[str, Any]) -> tuple[Any, ...]:
    d = _iso(dt.date(r.randint(1993, 1997), 1, 1))
    return (r.choice(REGIONS), d, d)


def _q6(r: random.Random, c: dict[str, Any]) -> tuple[Any, ...]:
    d = _iso(dt.date(r.randint(1993, 1997), 1, 1))
    disc = r.randint(2, 9) / 100
    return (d, d, disc, disc, r.randint(24, 25))


def _q10(r: random.Random, c: dict[str, Any]) -> tuple[Any, ...]:
    d = _iso(_first_of_month(r, 1993, 2, 1995, 1))
    return (d, d)


def _q12(r: random.Random, c: dict[str, Any]) -> tuple[Any, ...]:
    m1, m2 = r.sample(SHIPMODES, 2)
    d = _iso(dt.date(r.randint(1993, 1997), 1, 1))
    return (m1, m2, d, d)


def _q14(r: random.Random, c: dict[str, Any]) -> tuple[Any, ...]:
    d = _iso(_first_of_month(r, 1993, 1, 1997, 12))
    return (d, d)


def _q19(r: random.Random, c: dict[str, Any]) -> tuple[Any, ...]:
    q1, q2, q3 = r.randint(1, 10), r.randint(10, 20), r.randint(20, 30)
    return (_brand(r), q1, q1, _brand(r), q2, q2, _brand(r), q3, q3)


REPORTS = [
    Stmt(Q1, lambda r, c: (str(r.randint(60, 120)),), 4, True, "tpch_q1"),
    Stmt(Q3, _q3, 8, True, "tpch_q3"),
    Stmt(Q4, _q4, 4, True, "tpch_q4"),
    Stmt(Q5, _q5, 4, True, "tpch_q5"),
    Stmt(Q6, _q6, 8, True, "tpch_q6"),
    Stmt(Q10, _q10, 4, True, "tpch_q10"),
    Stmt(Q12, _q12, 4, True, "tpch_q12"),
    Stmt(Q14, _q14, 8, True, "tpch_q14"),
    Stmt(Q19, _q19, 4, True, "tpch_q19"),
]

WORKLOAD = OLTP + REPORTS


# --------------------------------------------------------------------------
# Schema, data and the workload run
# --------------------------------------------------------------------------
TABLES = {
    "region": """
        r_regionkey integer NOT NULL,
        r_name      char(25) NOT NULL,
        r_comment   varchar(152)""",
    "nation": """
        n_nationkey integer NOT NULL,
        n_name      char(25) NOT NULL,
        n_regionkey integer NOT NULL,
        n_comment   varchar(152)""",
    "part": """
        p_partkey     integer NOT NULL,
        p_name        varchar(55) NOT NULL,
        p_mfgr        char(25) NOT NULL,
        p_brand       char(10) NOT NULL,
        p_type        varchar(25) NOT NULL,
        p_size        integer NOT NULL,
        p_container   char(10) NOT NULL,
        p_retailprice numeric(15,2) NOT NULL,
        p_comment     varchar(23) NOT NULL""",
    "supplier": """
        s_suppkey   integer NOT NULL,
        s_name      char(25) NOT NULL,
        s_address   varchar(40) NOT NULL,
        s_nationkey integer NOT NULL,
        s_phone     char(15) NOT NULL,
        s_acctbal   numeric(15,2) NOT NULL,
        s_comment   varchar(101) NOT NULL""",
    "partsupp": """
        ps_partkey    integer NOT NULL,
        ps_suppkey    integer NOT NULL,
        ps_availqty   integer NOT NULL,
        ps_supplycost numeric(15,2) NOT NULL,
        ps_comment    varchar(199) NOT NULL""",
    "customer": """
        c_custkey    integer NOT NULL,
        c_name       varchar(25) NOT NULL,
        c_address    varchar(40) NOT NULL,
        c_nationkey  integer NOT NULL,
        c_phone      char(15) NOT NULL,
        c_acctbal    numeric(15,2) NOT NULL,
        c_mktsegment char(10) NOT NULL,
        c_comment    varchar(117) NOT NULL""",
    "orders": """
        o_orderkey      integer NOT NULL,
        o_custkey       integer NOT NULL,
        o_orderstatus   char(1) NOT NULL,
        o_totalprice    numeric(15,2) NOT NULL,
        o_orderdate     date NOT NULL,
        o_orderpriority char(15) NOT NULL,
        o_clerk         char(15) NOT NULL,
        o_shippriority  integer NOT NULL,
        o_comment       varchar(79) NOT NULL""",
    "lineitem": """
        l_orderkey      integer NOT NULL,
        l_partkey       integer NOT NULL,
        l_suppkey       integer NOT NULL,
        l_linenumber    integer NOT NULL,
        l_quantity      numeric(15,2) NOT NULL,
        l_extendedprice numeric(15,2) NOT NULL,
        l_discount      numeric(15,2) NOT NULL,
        l_tax           numeric(15,2) NOT NULL,
        l_returnflag    char(1) NOT NULL,
        l_linestatus    char(1) NOT NULL,
        l_shipdate      date NOT NULL,
        l_commitdate    date NOT NULL,
        l_receiptdate   date NOT NULL,
        l_shipinstruct  char(25) NOT NULL,
        l_shipmode      char(10) NOT NULL,
        l_comment       varchar(44) NOT NULL""",
}

PRIMARY_KEYS = {
    "region": "r_regionkey",
    "nation": "n_nationkey",
    "part": "p_partkey",
    "supplier": "s_suppkey",
    "partsupp": "ps_partkey, ps_suppkey",
    "customer": "c_custkey",
    "orders": "o_orderkey",
    "lineitem": "l_orderkey, l_linenumber",
}


def tpchgen() -> str:
    """tpchgen-cli from the venv (pyproject's test extra) or PATH."""
    beside = Path(sys.executable).parent / "tpchgen-cli"
    found = str(beside) if beside.exists() else shutil.which("tpchgen-cli")
    if not found:
        sys.exit("tpchgen-cli not found: run `make setup` (it is in the test extra of pyproject.toml)")
    return found


def load(conn: psycopg.Connection[Any], scale: float, workdir: Path) -> dict[str, Any]:
    """Generate (tpchgen-cli csv) and load the eight tables; primary keys only; VACUUM (ANALYZE)."""
    timings: dict[str, Any] = {"scale": scale}
    data = workdir / f"tpch-sf{scale}"
    started = time.monotonic()
    if not (data / "lineitem.csv").exists():
        subprocess.run([tpchgen(), "csv", "-s", str(scale), "-o", str(data), "-q"], check=True)
    timings["generate_s"] = round(time.monotonic() - started, 2)
    started = time.monotonic()
    for table, columns in TABLES.items():
        with conn.transaction():
            conn.execute(f"CREATE TABLE {table} ({columns})")  # type: ignore[arg-type]
            with conn.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN (FORMAT csv, HEADER true)") as copy, \
                    (data / f"{table}.csv").open("rb") as f:  # type: ignore[arg-type]
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
    for table, key in PRIMARY_KEYS.items():
        conn.execute(f"ALTER TABLE {table} ADD PRIMARY KEY ({key})")  # type: ignore[arg-type]
    conn.execute("VACUUM (ANALYZE)")
    timings["load_s"] = round(time.monotonic() - started, 2)
    rows = conn.execute(
        "SELECT c.relname, c.reltuples::bigint, pg_table_size(c.oid) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'").fetchall()
    timings["rows"] = {r[0]: int(r[1]) for r in rows}
    timings["data_bytes"] = sum(int(r[2]) for r in rows)
    shutil.rmtree(data, ignore_errors=True)
    return timings


def run_workload(conn: psycopg.Connection[Any], calls: float, seed: int = 1,
                 workload: list[Stmt] | None = None) -> dict[str, Any]:
    """Every shape ``max(1, round(calls x its calls))`` times, shuffled, as an application would interleave them.

    ``prepare_threshold = None``: psycopg never switches to a named prepared statement, so every execution
    gets a custom plan with its values (pg_qualstats records real constants).
    """
    workload = workload or WORKLOAD
    rng = random.Random(seed)
    conn.prepare_threshold = None
    ctx = make_context(conn)
    client = psycopg.ClientCursor(conn)
    schedule = [i for i, s in enumerate(workload) for _ in range(max(1, round(s.calls * calls)))]
    rng.shuffle(schedule)
    spent: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    started = time.monotonic()
    for i in schedule:
        stmt = workload[i]
        params = stmt.params(rng, ctx)
        t = time.monotonic()
        if stmt.client_side:
            client.execute(stmt.sql, params)  # type: ignore[arg-type]
        else:
            conn.execute(stmt.sql, params)  # type: ignore[arg-type]
        spent[stmt.name] += time.monotonic() - t
        count[stmt.name] += 1
    return {"executions": len(schedule), "seconds": round(time.monotonic() - started, 1),
            "per_statement": {k: {"calls": count[k], "seconds": round(spent[k], 2)} for k in count}}
