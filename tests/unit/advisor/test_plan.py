"""The plan's coherence rules on catalog facts (no database needed: the rules read only the catalog,
the findings and the chosen candidates; the what-if check is covered by the integration tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import psycopg

from monitor.advisor.actions import Plan
from monitor.advisor.candidates import Candidate
from monitor.advisor.catalog import Catalog, Column, Index, Table
from monitor.advisor.context import RunContext
from monitor.advisor.findings import AdviceReport, Finding
from monitor.advisor.hygiene import hygiene_findings, unused_held_back_note
from monitor.advisor.plan import build_plan
from monitor.advisor.query_analysis import Key
from monitor.advisor.selection import Chosen, Selection
from monitor.advisor.settings import Thresholds

NOW = datetime(2025, 3, 1, tzinfo=UTC)
OLD = Thresholds(unused_min_stats_age_seconds=86400)


def catalog(indexes: list[tuple[str, tuple[str, ...], int]], reset_days_ago: float = 30) -> Catalog:
    table = Table(1, "public", "x", 100_000, 8_000_000, 0, 0, 0)
    table.columns = {c: Column(c, n_distinct=d, avg_width=4) for c, d in
                     (("estado", 4.0), ("fecha", -0.9), ("ref", 1000.0), ("id", -1.0), ("kind", 3.0))}
    cat = Catalog(stats_reset=NOW - timedelta(days=reset_days_ago), now=NOW)
    cat.tables[1] = table
    cat._by_name[("public", "x")] = table
    for n, (name, keys, scans) in enumerate(indexes):
        cat.indexes.append(Index(100 + n, "public", name, 1, "btree", False, False, True, True, len(keys),
                                 tuple(Key(k) for k in keys), (), (0,) * len(keys), (0,) * len(keys), None, False,
                                 scans, 8192 * (10 + n), known_since=NOW - timedelta(days=60)))
    return cat


def plan_of(cat: Catalog, settings: Thresholds = OLD, chosen: list[Chosen] | None = None) -> tuple[Plan, list[Finding]]:
    findings = hygiene_findings(cat, settings)
    selection = Selection(chosen=chosen or [])
    findings += [c.finding for c in selection.chosen]
    report = AdviceReport(target="t", generated_at=NOW, stats_reset=cat.stats_reset, findings=findings)
    run = RunContext(cast(psycopg.Connection[Any], None), cat, settings, report, selection=selection)  # no session
    return build_plan(run), findings


def assert_coherent(plan: Plan) -> None:
    """No action relies on an index another drops (on its own table: names are exact only there)."""
    def on(a: Any) -> int:
        assert a.table_id is not None, a
        return int(a.table_id.relid)

    dropped = {(on(a), n) for a in plan.actions for n in a.drops}
    created = {f"{c.label}" for a in plan.actions for c in a.creates}
    for a in plan.actions:
        for needed in a.relies_on:
            assert (on(a), needed) not in dropped, a
            if needed in created:  # an index created by an earlier action
                assert any(needed in {c.label for c in b.creates} for b in plan.actions if b.order < a.order)


def test_a_used_index_whose_cover_is_dropped_as_unused_is_kept() -> None:
    cat = catalog([("ix_ref", ("ref",), 50), ("ix_ref_fecha", ("ref", "fecha"), 0)])
    plan, findings = plan_of(cat)
    assert_coherent(plan)
    assert [(a.action, a.drops) for a in plan.actions] == [("drop", ["public.ix_ref_fecha"])]
    (held,) = plan.held_back
    assert held.subject == "public.ix_ref" and "public.ix_ref_fecha" in held.reason
    redundant = next(f for f in findings if f.kind == "redundant_index")
    assert redundant.held_back and redundant.action is None


def test_a_low_selectivity_index_whose_cover_is_dropped_is_dropped_on_its_own_merit() -> None:
    cat = catalog([("ix_estado", ("estado",), 50), ("ix_estado_fecha", ("estado", "fecha"), 0)])
    plan, _ = plan_of(cat)
    assert_coherent(plan)
    assert sorted(n for a in plan.actions for n in a.drops) == ["public.ix_estado", "public.ix_estado_fecha"]
    assert "low selectivity" in next(a for a in plan.actions if a.drops == ["public.ix_estado"]).reason


def test_both_dropped_when_neither_is_ever_scanned() -> None:
    cat = catalog([("ix_estado", ("estado",), 0), ("ix_estado_fecha", ("estado", "fecha"), 0)])
    plan, _ = plan_of(cat)
    assert_coherent(plan)
    assert sorted(n for a in plan.actions for n in a.drops) == ["public.ix_estado", "public.ix_estado_fecha"]
    redundant = next(a for a in plan.actions if a.kinds == ["redundant_index"])
    assert redundant.relies_on == [] and "never been scanned" in redundant.reason


def test_the_plan_drops_the_index_its_finding_is_on_even_when_two_indexes_read_alike() -> None:
    """"a"."b.c" and "a.b"."c" both read a.b.c: the plan finds a finding's index by its oid, so it drops the
    never-scanned one, not the one in use (by the text, it found whichever came last)."""
    cat = catalog([("ix_fecha", ("fecha",), 0), ("ix_ref", ("ref",), 50)])
    cat.tables[1].schema = "a"  # an index lives in its table's schema: a.x and "a.b".y
    cat.tables[2] = Table(2, "a.b", "y", 100_000, 8_000_000, 0, 0, 0, columns=dict(cat.tables[1].columns))
    unused, used = cat.indexes
    unused.schema, unused.name, used.schema, used.name, used.table_oid = "a", "b.c", "a.b", "c", 2
    assert unused.qualified == used.qualified == "a.b.c"
    plan, findings = plan_of(cat)
    assert [(f.kind, f.index_oid) for f in findings] == [("unused_index", unused.oid)]
    (drop,) = plan.actions
    assert drop.steps == ['DROP INDEX CONCURRENTLY a."b.c";'] and drop.table_id is not None
    assert drop.table_id.relid == 1


def test_a_redundant_index_s_cover_is_not_confused_with_a_dropped_index_that_reads_alike() -> None:
    """a.x's unused "b.c" is dropped; "a.b".y's (ref) is redundant with its cover "a.b"."c" (ref, fecha), which
    stays: the redundant one is dropped relying on it (by the name alone, its cover read as dropped, and it was
    held back)."""
    cat = catalog([("b.c", ("fecha",), 0), ("ix_ref", ("ref",), 5), ("c", ("ref", "fecha"), 50)])
    cat.tables[1].schema = "a"
    cat.tables[2] = Table(2, "a.b", "y", 100_000, 8_000_000, 0, 0, 0, columns=dict(cat.tables[1].columns))
    unused, redundant, cover = cat.indexes
    unused.schema = "a"
    for index in (redundant, cover):
        index.schema, index.table_oid = "a.b", 2
    plan, _ = plan_of(cat)
    assert_coherent(plan)
    assert sorted((a.drops[0], a.relies_on) for a in plan.actions) == [
        ("a.b.c", []), ("a.b.ix_ref", ["a.b.c"])]
    assert plan.held_back == []


def test_young_statistics_hold_the_unused_check_back_and_say_until_when() -> None:
    cat = catalog([("ix_ref", ("ref",), 0)], reset_days_ago=2)
    plan, findings = plan_of(cat, Thresholds())
    assert plan.actions == [] and findings == []
    note = unused_held_back_note(cat, Thresholds())
    assert note is not None and "public.ix_ref" in note and "2025-03-06T00:00:00+00:00" in note


def test_a_composite_with_a_low_cardinality_leading_column_is_not_low_selectivity() -> None:
    cat = catalog([("ix_estado_fecha", ("estado", "fecha"), 9), ("ix_estado_kind", ("estado", "kind"), 9)])
    _, findings = plan_of(cat)
    # (estado, kind) has at most 12 combinations: above the 10 of the threshold, so neither is flagged ...
    assert [f.kind for f in findings] == []
    _, findings = plan_of(cat, OLD.model_copy(update={"low_selectivity_max_distinct": 12}))
    # ... until the threshold admits 12: then only the all-low composite is
    assert [(f.kind, f.index) for f in findings] == [("low_selectivity_index", "public.ix_estado_kind")]


def _chosen(cat: Catalog, columns: tuple[str, ...]) -> Chosen:
    table = cat.tables[1]
    cand = Candidate(table, tuple((Key(c), False) for c in columns), 1, {1})
    finding = Finding(kind="missing_index", table="public.x", evidence="cheaper", columns=cand.columns,
                      ddl=cand.ddl(), queryids=[1], verified="hypopg", benefit=10.0)
    return Chosen(cand, finding, [1])


def test_a_new_index_supersedes_every_existing_prefix_and_drops_them_after_it_is_built() -> None:
    cat = catalog([("ix_ref", ("ref",), 5), ("ix_ref_fecha", ("ref", "fecha"), 5)])
    plan, findings = plan_of(cat, chosen=[_chosen(cat, ("ref", "fecha", "estado"))])
    assert_coherent(plan)
    (replace,) = plan.actions  # the redundant (ref) is folded into the replace, not a second drop
    assert (replace.action, replace.supersedes) == ("replace", ["public.ix_ref", "public.ix_ref_fecha"])
    assert replace.steps == ["CREATE INDEX CONCURRENTLY ON public.x (ref, fecha, estado);",
                             "DROP INDEX CONCURRENTLY public.ix_ref;", "DROP INDEX CONCURRENTLY public.ix_ref_fecha;"]
    assert replace.kinds == ["missing_index", "redundant_index"]
    redundant = next(f for f in findings if f.kind == "redundant_index")
    assert redundant.action == 1 and redundant.replaced_by == "public.x (ref, fecha, estado)"


def test_a_protected_or_partial_index_is_never_superseded() -> None:
    cat = catalog([("x_estado_key", ("estado",), 5)])
    cat.indexes[0].is_unique = True
    plan, _ = plan_of(cat, chosen=[_chosen(cat, ("estado", "fecha"))])
    assert [a.action for a in plan.actions] == ["create"]
