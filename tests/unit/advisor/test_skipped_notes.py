"""The notes on statements the advice does not cover: a table the role may not read asks for that SELECT; a
function it may not execute (a DBA's pg_stat_statements_reset()) gets its own note, which asks for no grant."""

from __future__ import annotations

from monitor.advisor.advisor import skipped_notes
from monitor.advisor.findings import Skipped

DENIED = "no privilege to plan it: {} (permission denied: found before planning, so not sent)"


def test_a_function_the_role_may_not_execute_is_never_a_grant_to_make() -> None:
    notes = skipped_notes([
        Skipped(1, "SELECT pg_stat_statements_reset()", DENIED.format("EXECUTE on function pg_stat_statements_reset"),
                calls=3),
        Skipped(2, "SELECT pg_switch_wal()", DENIED.format("EXECUTE on function pg_switch_wal"), calls=1),
        Skipped(3, "SELECT * FROM visits WHERE id = $1", DENIED.format("SELECT on table visits"), calls=9),
    ])
    (tables,) = [n for n in notes if "lack of privilege" in n]
    (functions,) = [n for n in notes if "may not execute" in n]
    assert tables.startswith("1 statement(s) could not be planned for lack of privilege")
    assert "lacks SELECT on table visits:" in tables and "EXECUTE" not in tables
    assert functions.startswith("2 statement(s) call a function the advisor's role may not execute")
    assert "pg_stat_statements_reset, pg_switch_wal: " in functions
    assert "do not grant EXECUTE" in functions


def test_only_functions_refused_gives_no_privilege_to_grant() -> None:
    notes = skipped_notes([Skipped(1, "SELECT pg_reload_conf()", DENIED.format("EXECUTE on function pg_reload_conf"))])
    assert [n.split(" (")[0] for n in notes] == [
        "1 statement(s) call a function the advisor's role may not execute, so the advice does not cover them"]
