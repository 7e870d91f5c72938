"""The main page's summary (monitor/web/pages.py): the health problems of every target worst first, the plan's
actions one line each, slow statements that a planned index serves grouped under their action, the advisor's
notes told apart; and the page built from them (no server needed)."""

from __future__ import annotations

from datetime import UTC, datetime

from collectors.base.attention import Attention
from collectors.postgres.snapshot import PostgresSnapshot
from monitor.advisor.actions import Action, NewIndex, Plan, ServedStatement
from monitor.advisor.findings import AdviceReport, Finding
from monitor.advisor.poller import AdviceSnapshot
from monitor.core.history import History
from monitor.core.scheduler import SourceState
from monitor.web import pages
from tests.unit.test_detail_views import FakePoller, snapshot


def pg_state(target: str, attention: list[Attention]) -> SourceState:
    snap: PostgresSnapshot = snapshot(target=target)
    snap.attention = attention
    return SourceState(FakePoller("postgres", target), History(2, []), snapshot=snap, polls=1, up=True)


def advisor_state(target: str, report: AdviceReport) -> SourceState:
    return SourceState(FakePoller("advisor", target), History(2, []), snapshot=AdviceSnapshot(report), polls=1,
                       up=True, last_success=1000.0)


def plan_report(target: str) -> AdviceReport:
    served = [ServedStatement(q, f"SELECT {q}", 10, 0.05, 100.0, 1.0) for q in (11, 12)]
    create = Action(1, "create", "public.t", "r", ["missing_index"], "hypopg",
                    creates=[NewIndex("public.t", ["a"], "CREATE INDEX CONCURRENTLY ON public.t (a);",
                                      statements=served, saved_seconds_per_hour=90.0)])
    drop = Action(2, "drop", "public.u", "r", ["unused_index"], "catalog", drops=["public.u_b"],
                  drop_ddl=["DROP INDEX CONCURRENTLY public.u_b;"])
    findings = [Finding("slow_statement", "public.t", "slow", queryids=[11], mean_exec_seconds=0.05, query="SELECT 11"),
                Finding("slow_statement", "public.t", "slow", queryids=[12], mean_exec_seconds=0.07, query="SELECT 12"),
                Finding("slow_statement", "public.v", "slow", queryids=[13], mean_exec_seconds=0.9, query="SELECT 13"),
                Finding("n_plus_one", "public.t", "loop", queryids=[11], query="SELECT 11")]
    return AdviceReport(target, datetime(2026, 3, 1, tzinfo=UTC), None, findings=findings,
                        plan=Plan([create, drop], checked_as_whole=True),
                        notes=["plan checked as a whole: creates with HypoPG; ...",
                               "pg_stat_statements was reset at 2026-03-01T00:00:00+00:00",
                               "2 statement(s) were planned in an equivalent rewritten form (casts)",
                               "3 statement(s) could not be planned for lack of privilege, so the advice ..."])


def test_problems_of_every_target_worst_first_and_actions_in_plan_order() -> None:
    states = [
        pg_state("a", [Attention("warning", "vacuum", "table t", "dead rows", 10, "count", 5),
                       Attention("info", "bloat", "table u", "bloat")]),
        pg_state("b", [Attention("critical", "vacuum", "database b", "xid wraparound approaching", 0.8, "ratio", 0.5)]),
        advisor_state("a", plan_report("a")),
    ]
    summary = pages.summary_of(states)
    assert [(p.target, p.item.severity) for p in summary.problems] == [("b", "critical"), ("a", "warning"),
                                                                      ("a", "info")]
    assert summary.severities() == [("critical", 1), ("warning", 1), ("info", 1)]
    assert [(a.action.order, a.subject, a.served, a.ident) for a in summary.actions] == [
        (1, "public.t (a)", 2, "plan-a-a1"), (2, "public.u_b", 0, "plan-a-a2")]
    assert summary.saved_seconds_per_hour == 90.0


def test_slow_statements_a_planned_index_serves_are_grouped_under_its_action() -> None:
    view = pages.AdvisorView(advisor_state("a", plan_report("a")), plan_report("a"))
    [(action, slow)] = view.served_slow()
    assert action.order == 1 and [f.queryids for f in slow] == [[11], [12]]
    # the slow statement no index serves, and the N+1 finding (a code fix), stay in full
    assert sorted((f.kind, f.queryids) for f in view.unserved_patterns) == [("n_plus_one", [11]),
                                                                            ("slow_statement", [13])]


def test_notes_about_how_the_report_was_made_are_grey() -> None:
    tones = [pages.note_tone(n) for n in plan_report("a").notes]
    assert tones == ["muted", "muted", "muted", "note"]


def test_the_page_leads_with_the_summary_and_links_slow_statements_to_their_action() -> None:
    states = [pg_state("a", [Attention("warning", "vacuum", "table <b>t</b>", "dead rows", 10, "count", 5)]),
              advisor_state("a", plan_report("a"))]
    html = pages.environment().get_template("sections.html").render(
        states=states, advisors=[pages.AdvisorView(states[1], plan_report("a"))],
        sources=[(states[0], states[0].snapshot)], now=1000.0, version_stamp=1, stamp="00:00:00",
        summary=pages.summary_of(states))
    assert html.index('id="summary"') < html.index('id="postgres-a"') < html.index('id="advice"')
    assert '<details class="action-line create" id="plan-a-a1">' in html and "saves 90.0 s/h" in html
    assert "2 statements" in html and "public.u_b</span> <span class=\"muted\">on public.u</span>" in html
    assert "table &lt;b&gt;t&lt;/b&gt;" in html and "<b>t</b>" not in html
    assert 'href="#plan-a-a1">plan action 1: create public.t (a)</a>' in html
    # statement 11 is in the action's evidence and in the N+1 finding, not in a slow-statement card of its own
    assert html.count('<pre class="sql">SELECT 11</pre>') == 1 and '<pre class="sql">SELECT 13</pre>' in html
    assert '<p class="note">3 statement(s) could not be planned' in html and "1 note on the advice" in html
