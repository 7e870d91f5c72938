"""The oldest-tables ranking's samples: one series per table and kind (the query folds a table's TOAST relation
in: tests/integration/postgres/test_oldest_tables.py)."""

from collectors.base.samples import SampleList
from collectors.postgres.vacuum import OldestTableRow, Vacuum


def test_each_table_is_exported_once_per_kind() -> None:
    rows = [OldestTableRow("s", "t", True, 20.0, 2.0), OldestTableRow("s", "u", False, 10.0, 1.0)]
    vacuum = Vacuum(200_000_000, 400_000_000, 0, 3, oldest_tables=rows)
    out = SampleList(target="pg")
    vacuum.add_samples(out, "db")
    ages = [s for s in out.samples if s.name == "dbpulse_pg_table_frozen_age"]
    # labels are values in the catalogue's order: target, datname, schema, table, kind
    assert sorted((s.labels, s.value) for s in ages) == [(("pg", "db", "s", "t", "multixact"), 2.0),
                                                          (("pg", "db", "s", "t", "xid"), 20.0),
                                                          (("pg", "db", "s", "u", "multixact"), 1.0),
                                                          (("pg", "db", "s", "u", "xid"), 10.0)]
