"""Outcomes in the service's advisor (one Advisor kept across runs, as the service keeps it): an
index created between two runs, then dropped, shows up with before and after mean times of the
table's real statements, as an improvement and then as a regression."""

from __future__ import annotations

import random
from collections.abc import Iterator

import psycopg
import pytest

from monitor.advisor import Advisor, Thresholds, render_markdown
from monitor.advisor.poller import AdviceSnapshot
from monitor.web.pages import render_advice_report
from tests.integration.advisor.conftest import reset_statistics

LOOKUP = "SELECT id, note FROM tickets WHERE external_ref = %s"
SETTINGS = Thresholds(min_table_rows=1000)


@pytest.fixture
def tickets_db(fresh_db: str) -> Iterator[str]:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE tickets (id int PRIMARY KEY, external_ref text NOT NULL, note text)")
        conn.execute("INSERT INTO tickets SELECT g, 'ref-' || g, repeat('x', 40) FROM generate_series(1, 80000) g")
        conn.execute("ANALYZE tickets")
    reset_statistics(fresh_db)  # the seed's inserts are not the window's writes
    yield fresh_db


def lookups(dsn: str, n: int = 30) -> None:
    rng = random.Random(n)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(n):
            conn.execute(LOOKUP, (f"ref-{rng.randint(1, 80000)}",)).fetchall()


def samples(report: object) -> dict[tuple[str, str], float]:
    out = {}
    for s in AdviceSnapshot(report).samples():  # type: ignore[arg-type]
        out[(s.name, s.labels[-1])] = s.value  # target first, then the one label that tells them apart
    return out


def test_an_index_created_then_dropped_between_runs(tickets_db: str) -> None:
    advisor = Advisor(tickets_db, "svc", SETTINGS)
    lookups(tickets_db)
    first = advisor.run()
    assert first.outcomes == []  # nothing to compare with yet
    (create,) = [a for a in first.plan.actions if a.action == "create"]
    ddl = create.steps[0]
    assert ddl == "CREATE INDEX CONCURRENTLY ON public.tickets (external_ref);"

    with psycopg.connect(tickets_db, autocommit=True) as conn:
        conn.execute(ddl)
    lookups(tickets_db)
    second = advisor.run()
    (outcome,) = second.outcomes
    assert (outcome.table, outcome.change, outcome.advised) == ("public.tickets", "created", True)
    assert outcome.index.startswith("public.tickets_external_ref")
    (st,) = [s for s in outcome.statements if "external_ref" in s.query]
    assert st.before.calls == 30 and st.after.calls == 30
    assert st.after.mean_exec_seconds < st.before.mean_exec_seconds / 2
    assert st.after.blocks < st.before.blocks
    assert st.verdict == "improvement" and outcome.verdict == "improvement"
    assert not [a for a in second.plan.actions if a.action == "create"]  # served now
    got = samples(second)
    assert got[("dbpulse_advice_outcome_statements", "improvement")] >= 1
    assert got[("dbpulse_advice_index_changes", "created")] == 1
    assert got[("dbpulse_advice_outcome_statements", "regression")] == 0
    data = second.to_json_dict()
    assert data["outcomes"][0]["statements"][0]["verdict"] == "improvement"
    page = render_advice_report(second, standalone=True)  # the report page and the UI share these macros
    assert "<h2>Outcomes</h2>" in page and "advised by dbpulse" in page and '<tr class="improvement">' in page
    assert "## Outcomes of index changes" in render_markdown(second)
    assert data["summary"]["outcome_statements"]["improvement"] >= 1

    with psycopg.connect(tickets_db, autocommit=True) as conn:
        conn.execute(f"DROP INDEX {outcome.index}")
    lookups(tickets_db)
    third = advisor.run()
    dropped = [o for o in third.outcomes if o.change == "dropped"]
    assert len(dropped) == 1 and dropped[0].advised is False
    (st,) = [s for s in dropped[0].statements if "external_ref" in s.query]
    assert st.verdict == "regression" and st.after.mean_exec_seconds > 2 * st.before.mean_exec_seconds
    (regression,) = [f for f in third.findings if f.kind == "statement_regression"]
    assert regression.table == "public.tickets" and "was dropped" in regression.evidence
    assert samples(third)[("dbpulse_advice_findings", "statement_regression")] == 1
    assert samples(third)[("dbpulse_advice_outcome_statements", "regression")] >= 1


def test_the_one_shot_command_has_no_outcomes(tickets_db: str) -> None:
    lookups(tickets_db)
    report = Advisor(tickets_db, "once", SETTINGS).run()
    assert report.outcomes == [] and report.to_json_dict()["outcomes"] == []
