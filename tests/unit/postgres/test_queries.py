from __future__ import annotations

import re

import pglast
import pytest

from collectors.postgres import queries
from collectors.postgres.access import ADVISOR_TAG, own_component, tagged, unwrap_statement_text
from collectors.postgres.query import Query

BY_NAME = {q.name: q for q in queries.ALL}


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_every_band_parses(name: str) -> None:
    for sql in BY_NAME[name].bands.values():
        if sql is not None:
            pglast.parse_sql(re.sub(r"%\(\w+\)s", "NULL", sql))


def test_the_newest_band_at_or_below_the_version_is_picked() -> None:
    query = Query("q", {130000: "SELECT a", 140000: "SELECT b", 170000: "SELECT c"})
    assert query.sql(130012) == "SELECT /* dbpulse_collector */ a"
    assert query.sql(150004) == "SELECT /* dbpulse_collector */ b"
    assert query.sql(170000, ADVISOR_TAG) == "SELECT /* dbpulse_advisor */ c"
    assert not queries.STATEMENTS_RESET.available(130000)
    assert queries.STATEMENTS_RESET.available(160000)
    with pytest.raises(ValueError, match="statements_reset does not exist on PostgreSQL 130000"):
        queries.STATEMENTS_RESET.required_sql(130000)


def test_older_servers_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="older than the supported 13"):
        queries.SERVER.sql(120000)


def test_every_declared_query_has_its_own_name() -> None:
    """The ``query`` labels come from the declared queries (test_versions sees each counted from the start)."""
    names = [q.name for q in queries.ALL]
    assert len(names) == len(set(names)) == 32
    assert all(getattr(queries, q.name.upper()) is q for q in queries.ALL)  # named like its constant


@pytest.mark.parametrize(("text", "expected"), [
    ("PREPARE dbpulse_advisor_33 AS SELECT * FROM payments WHERE external_id = $1",
     "SELECT * FROM payments WHERE external_id = $1"),
    ("prepare q1 (int) as select 1 where $1 > 0", "select 1 where $1 > 0"),
    ("EXPLAIN (GENERIC_PLAN, FORMAT JSON) /* dbpulse_advisor */ SELECT a FROM t WHERE b = $1",
     "SELECT a FROM t WHERE b = $1"),
    ("EXPLAIN SELECT 1", "EXPLAIN SELECT 1"),  # someone else's EXPLAIN stays as it is
    ("SELECT /* dbpulse_advisor */ 1", "SELECT /* dbpulse_advisor */ 1"),
])
def test_unwrap_statement_text(text: str, expected: str) -> None:
    assert unwrap_statement_text(text) == expected


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_every_statement_the_collector_sends_is_recognised_as_its_own(name: str) -> None:
    for version in BY_NAME[name].bands:
        sql = BY_NAME[name].sql(version)
        if sql is not None:
            assert own_component(sql) == "collector", sql[:120]


@pytest.mark.parametrize(("sql", "expected"), [
    ("\nSELECT a FROM t", "\nSELECT /* dbpulse_collector */ a FROM t"),
    ("WITH x AS (SELECT 1) SELECT * FROM x", "WITH /* dbpulse_collector */ x AS (SELECT 1) SELECT * FROM x"),
    ("SELECT /* dbpulse_advisor */ 1", "SELECT /* dbpulse_advisor */ 1"),  # tagged already
])
def test_the_tag_follows_the_first_word(sql: str, expected: str) -> None:
    """PostgreSQL 18 keeps no leading comment in pg_stat_statements' text: the tag goes after the first word."""
    assert tagged(sql) == expected


@pytest.mark.parametrize(("text", "component"), [
    ("SELECT /* dbpulse_collector */ count(*) FROM pg_stat_activity", "collector"),
    ("\nWITH /* dbpulse_collector */ rel AS (SELECT $1) SELECT * FROM rel", "collector"),
    ("SELECT /* dbpulse_advisor */ hypopg_create_index($1)", "advisor"),
    ("PREPARE dbpulse_advisor AS SELECT * FROM orders WHERE id = $1", "advisor"),  # nested (PG 13: visible)
    ("EXPLAIN (FORMAT JSON) EXECUTE /* dbpulse_advisor */ dbpulse_advisor(NULL, NULL)", "advisor"),
    ("EXPLAIN (FORMAT JSON) EXECUTE dbpulse_advisor(NULL)", "advisor"),  # as older releases sent it
    ("DEALLOCATE /* dbpulse_advisor */ $1", "advisor"),  # PG 17+ record the name as $1
    ("EXPLAIN (GENERIC_PLAN, FORMAT JSON) /* dbpulse_advisor */ SELECT a FROM t WHERE b = $1", "advisor"),
    ("SET /* dbpulse_advisor */ plan_cache_mode = $1", "advisor"),
    ("SELECT * FROM orders WHERE id = $1", None),
    ("SELECT * FROM dbpulse_advisors WHERE id = $1", None),  # a name that only starts like a tag
    ("SELECT " + "x, " * 40 + "/* dbpulse_collector */ 1", None),  # only the first 100 characters count
])
def test_own_statements_are_recognised_by_their_tag(text: str, component: str | None) -> None:
    assert own_component(text) == component
