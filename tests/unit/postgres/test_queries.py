from __future__ import annotations

import re

import pglast
import pytest

from collectors.postgres import queries
from collectors.postgres.access import unwrap_statement_text

BANDS = {name: value for name, value in vars(queries).items()
         if name.isupper() and isinstance(value, dict) and all(isinstance(k, int) for k in value)}


@pytest.mark.parametrize("name", sorted(BANDS))
def test_every_band_parses(name: str) -> None:
    for sql in BANDS[name].values():
        if sql is not None:
            pglast.parse_sql(re.sub(r"%\(\w+\)s", "NULL", sql))


def test_pick_newest_band_at_or_below_version() -> None:
    bands = {130000: "a", 140000: "b", 170000: "c"}
    assert queries.pick(bands, 130012) == "a"
    assert queries.pick(bands, 150004) == "b"
    assert queries.pick(bands, 170000) == "c"
    assert queries.pick(queries.STATEMENTS_RESET, 130000) is None
    assert queries.pick(queries.STATEMENTS_RESET, 160000) is not None


def test_older_servers_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="older than the supported 13"):
        queries.pick(queries.SERVER, 120000)


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
