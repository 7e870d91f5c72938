"""The advice as one plan: a redundant index and its composite cover with a low-cardinality leading
column, a zero-scan index under young statistics, and a query that an extension of an existing index
serves. The plan drops nothing another action relies on, says the extension is a replace (create,
then drop, in that order), and the notes say the unused check was held back until a date."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from monitor.advisor import AdviceReport, Advisor, Thresholds, render_markdown
from monitor.web.pages import render_advice_report
from tests.integration.advisor.conftest import reset_statistics

SCHEMA = """
CREATE TABLE x (id int PRIMARY KEY, estado int NOT NULL, fecha timestamptz NOT NULL, ref int NOT NULL, note text);
INSERT INTO x SELECT g, g % 4, now() - g * interval '1 minute', g % 1000, 'n' FROM generate_series(1, 60000) g;
CREATE INDEX ix_x_estado ON x (estado);
CREATE INDEX ix_x_estado_fecha ON x (estado, fecha);
CREATE INDEX ix_x_ref ON x (ref);
CREATE TABLE payments (id int PRIMARY KEY, user_id int NOT NULL, amount numeric(10, 2) NOT NULL);
INSERT INTO payments SELECT g, g % 50, (g % 500) / 10.0 FROM generate_series(1, 60000) g;
CREATE INDEX payments_user_id_idx ON payments (user_id);
ANALYZE;
"""
BY_STATE = "SELECT count(*) FROM x WHERE estado = %s AND fecha > now() - %s::interval"
LATEST_PAYMENTS = "SELECT id, amount FROM payments WHERE user_id = %s ORDER BY id DESC LIMIT 10"


@pytest.fixture(scope="module")
def coherence_dsn(pg_server: Any) -> Iterator[str]:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE plan_coherence")
    dsn = pg_server.dsn("plan_coherence")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("CREATE EXTENSION hypopg")
        conn.execute(SCHEMA)
    reset_statistics(dsn)  # young statistics: the unused check must wait
    with psycopg.connect(dsn, autocommit=True) as conn:
        rng = random.Random(3)
        for _ in range(40):
            conn.execute(BY_STATE, (rng.randrange(4), "3 days")).fetchall()
            conn.execute(LATEST_PAYMENTS, (rng.randrange(50),)).fetchall()
        conn.execute("SELECT pg_stat_force_next_flush()")
    yield dsn
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute("DROP DATABASE plan_coherence WITH (FORCE)")


@pytest.fixture(scope="module")
def report(coherence_dsn: str) -> AdviceReport:
    """Statistics older than a (tiny) window, so the plan may drop; ix_x_ref's own age is unknown to a
    one-shot run, so it is still not called unused."""
    settings = Thresholds(min_table_rows=1000, unused_min_stats_age_seconds=0.001)
    return Advisor(coherence_dsn, "coherence", settings).run()


@pytest.fixture(scope="module")
def young(coherence_dsn: str) -> AdviceReport:
    """Statistics younger than the default 7-day window: nothing is dropped."""
    return Advisor(coherence_dsn, "coherence", Thresholds(min_table_rows=1000)).run()


def _findings(report: AdviceReport) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for f in report.to_json_dict()["findings"]:
        out.setdefault(f["kind"], []).append(f)
    return out


def test_a_composite_is_judged_by_all_its_columns(report: AdviceReport) -> None:
    found = _findings(report)
    assert [(f["index"], f["covered_by"]) for f in found["redundant_index"]] == [
        ("public.ix_x_estado", "public.ix_x_estado_fecha")]
    # its leading column has 4 values, but (estado, fecha) is selective: no low-selectivity finding
    assert "low_selectivity_index" not in found
    assert "unused_index" not in found


def test_no_action_drops_an_index_another_action_relies_on(report: AdviceReport) -> None:
    actions = report.to_json_dict()["plan"]["actions"]
    dropped = {name for a in actions for name in a.get("drops", [])}
    for a in actions:
        for needed in a.get("relies_on", []):
            assert needed not in dropped, (a, dropped)
    drop = next(a for a in actions if a["action"] == "drop")
    assert (drop["drops"], drop["relies_on"], drop["replaced_by"]) == (
        ["public.ix_x_estado"], ["public.ix_x_estado_fecha"], "public.ix_x_estado_fecha")
    assert drop["steps"] == ["DROP INDEX CONCURRENTLY public.ix_x_estado;"]
    assert "public.ix_x_estado_fecha" not in dropped
    assert [a["order"] for a in actions] == list(range(1, len(actions) + 1))


def test_the_extension_is_a_replace_create_then_drop(report: AdviceReport) -> None:
    data = report.to_json_dict()
    (replace,) = [a for a in data["plan"]["actions"] if a["action"] == "replace"]
    assert replace["steps"] == [
        "CREATE INDEX CONCURRENTLY ON public.payments (user_id, id);",
        "DROP INDEX CONCURRENTLY public.payments_user_id_idx;",
    ]
    assert replace["supersedes"] == ["public.payments_user_id_idx"]
    assert replace["order"] < min(a["order"] for a in data["plan"]["actions"] if a["action"] == "drop")
    (missing,) = _findings(report)["missing_index"]
    assert missing["supersedes"] == ["public.payments_user_id_idx"] and missing["action"] == replace["order"]

    # the evidence an engineer acts on
    (new,) = replace["creates"]
    assert new["columns"] == ["user_id", "id"]
    assert "user_id first" in new["why_this_order"] and "LIMIT" in new["why_this_order"]
    assert new["index_size_bytes"] > 0 and 0 < new["write_overhead_ratio"] < 1
    (served,) = new["statements"]
    assert served["query"] == "SELECT id, amount FROM payments WHERE user_id = $1 ORDER BY id DESC LIMIT $2"
    assert served["calls"] == 40 and served["mean_exec_seconds"] > 0
    assert served["cost_after"] < served["cost_before"]
    assert "new index (user_id, id)" in served["plan_after"] and "new index" not in served["plan_before"]
    assert served["plan_after_text"].count("\n") >= 1
    assert served["saved_seconds_per_hour"] > 0 and replace["saved_seconds_per_hour"] > 0


def test_the_notes_name_the_held_back_unused_check_and_its_date(young: AdviceReport) -> None:
    assert young.stats_reset is not None
    ready = (young.stats_reset + timedelta(days=7)).replace(microsecond=0).isoformat()
    (note,) = [n for n in young.notes if n.startswith("unused_index held back")]
    assert "public.ix_x_ref" in note and ready in note, note
    assert any("hypopg_hide_index" in n for n in young.notes)  # which method checked the drops


def test_young_statistics_drop_nothing_and_say_so_loudly(young: AdviceReport) -> None:
    assert young.notes[0].startswith("NO INDEX IS DROPPED IN THIS RUN: the statistics were reset"), young.notes
    data = young.to_json_dict()
    assert [a["action"] for a in data["plan"]["actions"]] == ["create"]  # the replace keeps its old index
    assert not [s for a in data["plan"]["actions"] for s in a["steps"] if s.startswith("DROP")]
    held = {h["subject"]: h for h in data["plan"]["held_back"]}
    assert {"public.ix_x_estado", "public.payments_user_id_idx", "public.ix_x_ref"} <= set(held), held
    assert held["public.ix_x_estado"]["judged_from"].startswith(ready_day(young))
    # a held-back finding has nothing to copy: no ddl in the JSON, the Markdown or the HTML page
    redundant = next(f for f in data["findings"] if f["kind"] == "redundant_index")
    assert "ddl" not in redundant and redundant["held_back"].startswith("not dropped: the statistics")
    for text in (render_markdown(young), render_advice_report(young, standalone=True)):
        assert "DROP INDEX" not in text


def ready_day(report: AdviceReport) -> str:
    assert report.stats_reset is not None
    return (report.stats_reset + timedelta(days=7)).date().isoformat()


def test_the_plan_is_in_the_reports(report: AdviceReport) -> None:
    md = render_markdown(report)
    assert "## Plan" in md and "1. replace" in md.lower()
    assert md.index("CREATE INDEX CONCURRENTLY ON public.payments (user_id, id);") < \
        md.index("DROP INDEX CONCURRENTLY public.payments_user_id_idx;")
    page = render_advice_report(report, standalone=True)
    assert ("Plan" in page and "replaces" in page.lower()) or "replace" in page
    assert "new index (user_id, id)" in page and "<details" in page

