"""What the advisor's privilege check refuses before planning (monitor/advisor/privileges.py), on texts as
pg_stat_statements gives them: only what the server would refuse, with the privilege to grant. The real
server's refusals, and that none is sent, are in tests/integration/postgres/test_managed_role.py."""

from __future__ import annotations

from collectors.postgres.statements import StatementStat
from monitor.advisor.advisor import plan_forms
from monitor.advisor.candidates import Workload
from monitor.advisor.catalog import Catalog, Column, Table
from monitor.advisor.privileges import Denied, refused_by_privilege
from monitor.advisor.query_analysis import StatementAnalysis, analyze


def catalog() -> Catalog:
    cat = Catalog()
    for oid, name in ((1, "orders"), (2, "secrets")):
        table = Table(oid, "public", name, 10_000, 1_000_000, 0, 0, 0)
        table.columns = {c: Column(c) for c in ("id", "customer", "note")}
        cat.tables[oid] = table
        cat._by_name[("public", name)] = table
    return cat


CAT = catalog()
DENIED = Denied(tables={("public", "secrets"): "SELECT on table secrets"},
                functions={"pg_switch_wal": "EXECUTE on function pg_switch_wal",
                           "pg_read_file": "EXECUTE on function pg_read_file"})


def refused(*texts: str) -> dict[int, str]:
    items = [(StatementStat(i, text, 10, 0.01, 10), analyze(text, CAT.columns_of)) for i, text in enumerate(texts)]
    workload = Workload(items)
    plan_forms(workload)  # a write's read side, as the advisor plans it

    def again(text: str, cat: Catalog) -> StatementAnalysis:
        return analyze(text, cat.columns_of)

    return refused_by_privilege(DENIED, workload, CAT, again)


def test_a_table_the_role_may_not_read_and_a_function_it_may_not_call() -> None:
    out = refused("SELECT note FROM secrets WHERE id = $1", "SELECT pg_switch_wal()",
                  "SELECT pg_catalog.pg_read_file ($1)", "SELECT note FROM orders WHERE customer = $1")
    assert sorted(out) == [0, 1, 2]
    assert out[0].startswith("no privilege to plan it: SELECT on table secrets (")
    assert out[1].startswith("no privilege to plan it: EXECUTE on function pg_switch_wal (")
    assert "pg_read_file" in out[2]


def test_names_that_only_look_like_a_refused_function_pass() -> None:
    # a longer name, a column of the same name (no call), a string, a comment
    assert refused("SELECT my_pg_switch_wal($1)", "SELECT pg_switch_wal FROM orders",
                   "SELECT note FROM orders WHERE note = 'pg_switch_wal()'",
                   "SELECT /* pg_switch_wal() */ note FROM orders WHERE id = $1") == {}


def test_a_write_is_checked_by_what_is_planned_its_read_side() -> None:
    # INSERT ... SELECT reads only what it selects from: writing into secrets needs no SELECT on it
    out = refused("INSERT INTO secrets SELECT id, customer, note FROM orders WHERE customer = $1",
                  "UPDATE orders SET note = $1 WHERE id IN (SELECT id FROM secrets WHERE customer = $2)")
    assert list(out) == [1] and "SELECT on table secrets" in out[1]
