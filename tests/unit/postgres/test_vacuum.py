"""The oldest-tables ranking: one entry per table, its TOAST relation folded in."""

from collectors.base.samples import SampleList
from collectors.postgres.vacuum import OldestTableRow, Vacuum, one_per_table


def test_a_table_and_its_toast_relation_are_one_entry_with_the_older_age() -> None:
    rows = [OldestTableRow("pg_catalog", "pg_type", True, 900.0, 5.0),
            OldestTableRow("public", "orders", False, 800.0, 7.0),
            OldestTableRow("pg_catalog", "pg_type", False, 700.0, 9.0)]
    merged = one_per_table(rows)
    assert merged == [OldestTableRow("pg_catalog", "pg_type", True, 900.0, 9.0),
                      OldestTableRow("public", "orders", False, 800.0, 7.0)]


def test_each_table_is_exported_once_per_kind() -> None:
    rows = [OldestTableRow("s", "t", False, 10.0, 1.0), OldestTableRow("s", "t", True, 20.0, 2.0)]
    vacuum = Vacuum(200_000_000, 400_000_000, 0, 3, oldest_tables=one_per_table(rows))
    out = SampleList(target="pg")
    vacuum.add_samples(out, "db")
    ages = [s for s in out.samples if s.name == "dbpulse_pg_table_frozen_age"]
    # labels are values in the catalogue's order: target, datname, schema, table, kind
    assert sorted((s.labels, s.value) for s in ages) == [(("pg", "db", "s", "t", "multixact"), 2.0),
                                                          (("pg", "db", "s", "t", "xid"), 20.0)]
