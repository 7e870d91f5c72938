"""Every source has its rules and its dashboard, named by its spec, reading only its own and the shared metrics."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from collectors.registry import source, sources
from tests.lint.source_parts import NO_ALERTS, generator, panel_exprs, problems

ROOT = Path(__file__).resolve().parents[2]


def _spec(name: str) -> Any:
    spec = source(name)
    assert spec is not None
    return spec


def test_every_source_has_its_rules_and_dashboards_on_its_own_metrics() -> None:
    assert problems(ROOT, sources()) == []


def test_the_dashboards_follow_the_registry() -> None:
    boards = generator(ROOT).boards()
    assert set(boards) == {"", *(s.name for s in sources())}
    assert [b.__name__ for b in boards["postgres"]] == ["postgres", "postgres_health"]  # named in its spec
    assert [b.__name__ for b in boards["redis"]] == ["redis"]  # named like the source
    assert [b.__name__ for b in boards[""]] == ["overview"]


def test_a_rule_or_a_dashboard_reading_another_source_s_metric_is_named() -> None:
    redis = replace(_spec("redis"), rule_groups=("dbpulse.app",))  # the health source's alerts as redis's
    found = problems(ROOT, [redis], {"redis": [lambda: _board("dbpulse_pg_up{target=~\"$target\"}")]})
    assert any(p.startswith("redis: rule AppDown reads dbpulse_health_up") for p in found), found
    assert any(p.startswith("redis: dashboard test reads dbpulse_pg_up, not of its catalogue") for p in found), found
    assert "rules group dbpulse.redis belongs to no source (SourceSpec.rule_groups) and is not shared" in found


def test_a_source_without_rules_or_dashboard_must_say_so_or_fails() -> None:
    bare = replace(_spec("redis"), name="echo", charts=())
    found = problems(ROOT, [bare], {"echo": []})
    assert f"echo: no rules group dbpulse.echo in rules/*.rules.yml ({NO_ALERTS})" in found
    assert "echo: no dashboard (a builder in dashboards/generate.py, or charts in its spec)" in found
    quiet = problems(ROOT, [replace(bare, rule_groups=())], {"echo": [lambda: _board("dbpulse_source_up")]})
    assert not [p for p in quiet if p.startswith("echo:")]


def test_a_dashboard_builder_that_no_source_claims_is_an_error() -> None:
    gen = generator(ROOT)  # a fresh copy of the module: its registry is this test's own
    gen.board(lambda: _board("up"))  # a lambda's name: claimed by no spec, not shared
    with pytest.raises(ValueError, match="belong to no source"):
        gen.boards()
    with pytest.raises(ValueError, match="no dashboard builder nothing_here"):
        gen.builders_of(replace(_spec("redis"), dashboards=("nothing_here",)))


def test_a_dashboard_drawn_from_a_spec_s_charts_parses_and_reads_only_its_metrics() -> None:
    """The fallback of a source without a builder, tried on every source's charts: valid PromQL (promtool), on
    the source's own metrics."""
    from tests.dashboards.test_dashboards import substitute
    from tests.rules.promql_check import check_promql

    gen = generator(ROOT)
    exprs: dict[str, str] = {}
    for spec in sources():
        model = gen.charted(spec)
        assert model["uid"] == f"dbpulse-{spec.name}" and len(model["panels"]) == 1 + len(spec.charts)
        found = problems(ROOT, [replace(spec, rule_groups=())], {spec.name: [lambda m=model: m]})
        assert [p for p in found if p.startswith(f"{spec.name}:")] == []
        exprs |= {f"{spec.name}/{n}": substitute(e) for n, e in enumerate(panel_exprs(model))}
    assert len(exprs) >= sum(len(s.charts) for s in sources()) and check_promql(exprs) == {}


def _board(expr: str) -> dict[str, Any]:
    return {"uid": "test", "panels": [{"targets": [{"expr": expr}]}], "templating": {"list": []}}
