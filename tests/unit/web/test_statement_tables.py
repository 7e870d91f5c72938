"""The main page's statement tables: variants are one row, dbpulse's own statements are not counted."""

from __future__ import annotations

from collectors.postgres.statements import OwnStatements, StatementStat, variant_key
from collectors.postgres.view import postgres_view
from monitor.web.detail import variants_of
from tests.unit.test_detail_views import snapshot

IN2 = StatementStat(2, "SELECT a FROM t WHERE b IN ($1, $2)", 10, 1.0, 20)
IN3 = StatementStat(3, "SELECT a FROM t WHERE b IN ($1, $2, $3)", 20, 5.0, 60)
OTHER = StatementStat(7, "SELECT a FROM t WHERE c = $1", 100, 2.0, 100)
STATEMENTS = [IN3, OTHER, IN2]
KEYS = {s.queryid: k for s in STATEMENTS if (k := variant_key(s.query)) is not None}


def test_variants_are_one_row_with_their_counters_added_up() -> None:
    view = postgres_view(snapshot(statements=STATEMENTS, variant_keys=KEYS, statement_count=42,
                                  own_statements=[OwnStatements("collector", 30, 900, 1.5),
                                                  OwnStatements("advisor", 9, 50, 0.5)]))
    assert [(g.total.queryid, g.queryids) for g in view.top] == [(3, [3, 2]), (7, [7])]
    assert (view.top[0].total.calls, view.top[0].total.exec_seconds) == (30, 6.0)
    assert [g.total.queryid for g in view.busiest] == [7, 3]  # 100 calls against 30 added up
    assert view.application_statements == 3  # 42 entries, 39 of them dbpulse's own
    assert [o.component for o in view.own] == ["collector", "advisor"]


def test_without_variant_keys_every_statement_stands_alone() -> None:
    view = postgres_view(snapshot(statements=STATEMENTS))
    assert [g.queryids for g in view.top] == [[3], [7], [2]]


def test_a_statement_page_lists_its_variants() -> None:
    snap = snapshot(statements=STATEMENTS, variant_keys=KEYS)
    assert [s.queryid for s in variants_of(snap, 2)] == [3]
    assert variants_of(snap, 7) == [] and variants_of(snap, 99) == []
