"""PostgreSQL's own regression SQL as a workload nobody here wrote (``tests/corpus/postgres_regress``).

The files are run with ``psql`` in the order of ``FILES``, as ``pg_regress`` would, against a database of a
throwaway server: their SELECTs, joins, grouping sets, window functions and DML land in
``pg_stat_statements`` on the tables they create. ``test_setup.sql`` loads ``onek`` and ``tenk1`` from data
files the regression suite ships; this module writes equivalent rows (the same columns, derived from
``unique1`` as the suite's are) so nothing but the SQL is vendored. Errors are part of the suite (many files
test them on purpose) and never stop a file: psql goes on to the next statement.
"""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
from pathlib import Path

from .servers import LocalPostgres

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus" / "postgres_regress"

# test_setup first (the shared tables), create_index next (the indexes the later files expect), then the
# query-heavy files.
FILES = (
    "test_setup", "create_index", "select", "select_distinct", "select_distinct_on", "select_having",
    "select_implicit", "subselect", "union", "case", "join", "aggregates", "groupingsets", "window", "with",
    "limit", "equivclass", "incremental_sort", "partition_join", "partition_prune", "partition_aggregate",
    "inherit", "join_hash", "memoize", "tsrf", "rangefuncs", "rowtypes", "arrays", "jsonb", "strings",
    "btree_index", "predicate", "functional_deps", "tuplesort", "foreign_key", "update", "delete",
    "insert_conflict", "merge", "returning", "matview", "select_views",
)


def _tenk_rows(n: int, seed: int) -> list[str]:
    """Rows of ``onek``/``tenk1``: unique1 and unique2 are permutations of 0..n-1, the rest derive from
    unique1 as in the suite's data files."""
    rng = random.Random(seed)
    unique1 = list(range(n))
    unique2 = list(range(n))
    rng.shuffle(unique1)
    rng.shuffle(unique2)
    rows = []
    for u1, u2 in zip(unique1, unique2, strict=True):
        letters = "".join(chr(ord("A") + (u1 // 26 ** k) % 26) for k in range(7))
        text = [str(u1), str(u2), str(u1 % 2), str(u1 % 4), str(u1 % 10), str(u1 % 20), str(u1 % 100),
                str(u1 % 1000), str(u1 % 2000), str(u1 % 5000), str(u1 % 10000), str((u1 % 100) * 2 + 1),
                str((u1 % 100) * 2), letters + "xxx", letters[::-1] + "xxx", ("AAAA", "HHHH", "OOOO", "VVVV")[u1 % 4]
                + "xx"]
        rows.append("\t".join(text))
    return rows


def _data_dir(root: Path) -> Path:
    data = root / "data"
    data.mkdir(parents=True)
    (data / "tenk.data").write_text("\n".join(_tenk_rows(10_000, 1)) + "\n")
    (data / "onek.data").write_text("\n".join(_tenk_rows(1_000, 2)) + "\n")
    for name in ("person", "emp", "student", "stud_emp", "streets"):
        (data / f"{name}.data").write_text("")
    for path in (root, data, *data.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)  # COPY FROM reads them as the server's user
    return root


def load(server: LocalPostgres, dbname: str, files: tuple[str, ...] = FILES, timeout: float = 600) -> None:
    """Run the corpus files into ``dbname`` (which exists, with pg_stat_statements created)."""
    psql = server.bin / "psql"
    with tempfile.TemporaryDirectory(prefix="dbpulse-regress-") as tmp:
        srcdir = _data_dir(Path(tmp))
        env = {**os.environ, "PG_ABS_SRCDIR": str(srcdir), "PG_LIBDIR": str(srcdir), "PG_DLSUFFIX": ".so",
               "PGOPTIONS": "-c statement_timeout=20s -c client_min_messages=error"}
        for name in files:
            subprocess.run(
                [str(psql), "-X", "-q", "-d", server.dsn(dbname), "-v", "ON_ERROR_STOP=0", "-f",
                 str(CORPUS / f"{name}.sql")],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout, check=False,
            )
