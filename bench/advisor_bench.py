"""Advisor benchmark: 5,000 distinct statements through parsing, candidates and bounded verification.

Starts a throwaway PostgreSQL (harness.servers), builds a schema of a few
tables, generates distinct normalized statements of the shapes a SQLAlchemy
backend sends, then times:

1. parsing + predicate analysis of every statement (pglast);
2. candidate generation across the workload;
3. HypoPG verification under the configured budget (EXPLAIN count, wall time).

Usage: .venv/bin/python bench/advisor_bench.py [--statements 5000] [--max-explains 2000] [--max-seconds 30]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.postgres.access import ADVISOR_APPLICATION_NAME, session_kwargs
from collectors.postgres.statements import StatementStat
from harness.servers import LocalPostgres
from monitor.advisor.candidates import Workload, build_candidates
from monitor.advisor.catalog import read_catalog
from monitor.advisor.query_analysis import analyze
from monitor.advisor.selection import Verifying, select_verified
from monitor.advisor.settings import Thresholds
from monitor.advisor.whatif import Budget, WhatIf

TABLES = 8
COLUMNS = [f"c{i}" for i in range(8)]


def schema_sql() -> str:
    parts = []
    for t in range(TABLES):
        cols = ", ".join(f"{c} int" for c in COLUMNS)
        sel = ", ".join(f"(g * {7 + i * 13}) % {10 ** (1 + i % 4)}" for i, _ in enumerate(COLUMNS))
        parts.append(f"CREATE TABLE t{t} (id int PRIMARY KEY, parent_id int, {cols}, created_at timestamptz);")
        parts.append(f"INSERT INTO t{t} SELECT g, g % 5000, {sel}, now() - g * interval '1 minute' "
                     f"FROM generate_series(1, 20000) g;")
    parts.append("ANALYZE;")
    return "\n".join(parts)


def statements(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        t = rng.randrange(TABLES)
        eq = rng.sample(COLUMNS, rng.randint(1, 3))
        p = iter(range(1, 100))
        where = [f"{c} = ${next(p)}" for c in eq]
        shape = rng.random()
        if shape < 0.2:
            where.append(f"c{rng.randrange(8)} IN ({', '.join(f'${next(p)}' for _ in range(rng.randint(1, 12)))})")
        elif shape < 0.4:
            where.append(f"created_at > ${next(p)}")
        select_list = ", ".join(rng.sample(["id", *COLUMNS], rng.randint(1, 5)))
        sql = f"SELECT {select_list} FROM t{t} WHERE {' AND '.join(where)}"
        if shape > 0.7:
            sql += f" ORDER BY created_at DESC LIMIT ${next(p)}"
        elif 0.6 < shape <= 0.7:
            u = (t + 1) % TABLES
            sql = (f"SELECT a.id, b.{rng.choice(COLUMNS)} FROM t{t} a JOIN t{u} b ON b.parent_id = a.id "
                   f"WHERE a.{' AND a.'.join(where)}")
        out.add(sql)
    return sorted(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--statements", type=int, default=5000)
    parser.add_argument("--max-explains", type=int, default=Thresholds().verification_max_explains)
    parser.add_argument("--max-seconds", type=float, default=Thresholds().verification_max_seconds)
    args = parser.parse_args()
    settings = Thresholds(verification_max_explains=args.max_explains,
                          verification_max_seconds=args.max_seconds)
    texts = statements(args.statements)
    with LocalPostgres() as pg:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION hypopg")
            conn.execute(schema_sql().encode())
        with psycopg.connect(pg.dsn(), **session_kwargs(30, application_name=ADVISOR_APPLICATION_NAME)) as conn:
            cat = read_catalog(conn)
            t0 = time.perf_counter()
            analyses = [analyze(text, cat.columns_of) for text in texts]
            t1 = time.perf_counter()
            rng = random.Random(2)
            items = [(StatementStat(i, text, rng.randint(1, 5000), 0.001, 1), a)
                     for i, (text, a) in enumerate(zip(texts, analyses, strict=True)) if a.ok]
            workload = Workload(items)
            candidates = build_candidates(workload, cat, settings)
            t2 = time.perf_counter()
            budget = Budget(settings.verification_max_explains, settings.verification_max_seconds)
            whatif = WhatIf(conn, cat.server_version_num, budget)
            findings = select_verified(candidates, Verifying(workload, cat, whatif, settings))
            whatif.reset()
            t3 = time.perf_counter()
    print(f"statements: {len(texts)} (analyzed ok: {len(items)})")
    print(f"parse + predicate analysis: {t1 - t0:.2f} s ({(t1 - t0) / len(texts) * 1e6:.0f} us/statement)")
    print(f"candidate generation: {t2 - t1:.3f} s -> {len(candidates)} distinct candidates")
    print(f"verification: {budget.explains} EXPLAINs in {t3 - t2:.2f} s "
          f"(budget {settings.verification_max_explains} EXPLAINs / {settings.verification_max_seconds:.0f} s, "
          f"exhausted: {budget.exhausted()}) -> {len(findings)} missing_index findings")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
