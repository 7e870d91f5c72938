"""What the statement and table pages show, built from History, snapshots and the advice (no server needed)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from collectors.base.poller import Poller, Snapshot
from collectors.base.samples import Sample
from collectors.postgres.snapshot import IndexRow, PostgresSnapshot, TableRow
from collectors.postgres.statements import StatementStat
from monitor.advisor.actions import Action, NewIndex, Plan, ServedStatement, StatementReason
from monitor.advisor.catalog import TableId
from monitor.advisor.findings import AdviceReport, Finding, IndexEvent, Skipped
from monitor.advisor.outcomes import Outcome, StatementOutcome, Window
from monitor.advisor.poller import AdviceSnapshot
from monitor.core.history import History
from monitor.core.scheduler import SourceState
from monitor.web import detail, pages
from monitor.web.detail import (
    CALLS,
    EXEC,
    ROWS,
    SEQ_SCANS,
    SIZE,
    parse_statement_path,
    parse_table_path,
    root_of,
    share_since_reset,
    statement_actions,
    statement_figures,
    statement_findings,
    statement_path,
    table_actions,
    table_figures,
    table_findings,
    table_path,
)

TARGET = "127.0.0.1:5432/postgres"


class FakePoller(Poller):
    def __init__(self, source: str, target: str = TARGET, interval: float = 10.0) -> None:
        self.source, self.target, self.interval, self.timeout = source, target, interval, 5.0

    async def poll(self) -> Snapshot:  # pragma: no cover - never polled here
        raise NotImplementedError


def stmt(queryid: str, calls: float, exec_: float, rows: float) -> list[Sample]:
    labels = (TARGET, "postgres", queryid)
    return [Sample(CALLS, labels, calls), Sample(EXEC, labels, exec_), Sample(ROWS, labels, rows)]


def history_of(polls: list[list[Sample] | None], start: float = 1000.0, step: float = 10.0) -> History:
    history = History(10, detail.DETAIL_METRICS)
    for i, samples in enumerate(polls):
        history.record(start + i * step, samples)
    return history


# --- paths ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("queryid", [0, 42, -8396695824734812087])
def test_statement_paths_round_trip_with_a_target_holding_colon_and_slash(queryid: int) -> None:
    path = statement_path(TARGET, queryid)
    assert path.count("/") == 2 and ":" not in path
    assert parse_statement_path("/" + path) == (TARGET, queryid)
    assert parse_statement_path("/" + path + "?x=1") == (TARGET, queryid)
    # a target written with its slash and colon as they are still reads back
    assert parse_statement_path(f"/statements/{TARGET}/{queryid}") == (TARGET, queryid)


def test_table_paths_round_trip_hostile_names_and_bad_paths_are_refused() -> None:
    schema, table = "<script>", "a/b.c <img src=x onerror=alert(1)>?#%"
    path = table_path(TARGET, schema, table)
    assert "<" not in path and " " not in path and "?" not in path and "#" not in path
    assert parse_table_path("/" + path) == (TARGET, f"{schema}.{table}")
    for bad in ("/statements/x", "/statements/t/1x", "/statements/t/--1", "/statements//1", "/statements/t/\u0661"):
        assert parse_statement_path(bad) is None, bad
    assert parse_table_path("/tables/only-one-part") is None


def test_root_of_leads_back_from_the_page_depth() -> None:
    assert root_of("/" + statement_path(TARGET, 1)) == "../../"
    assert root_of(f"/statements/{TARGET}/1") == "../../../"
    assert root_of("/") == ""


# --- figures over the buffer ---------------------------------------------------------------------------------
def test_statement_figures_over_the_whole_buffer_and_share_with_other() -> None:
    history = history_of([
        stmt("1", 100, 10.0, 100) + stmt("__other__", 50, 30.0, 50),
        stmt("1", 160, 13.0, 220) + stmt("__other__", 80, 33.0, 70),
        None,  # a failed poll: a gap, not a value
        stmt("1", 200, 16.0, 300) + stmt("__other__", 100, 36.0, 80),
    ])
    f = statement_figures(history, 1)
    assert f.seconds == 30.0 and f.calls == 100
    assert f.calls_per_second == pytest.approx(100 / 30)
    assert f.mean_exec_seconds == pytest.approx(6.0 / 100)
    assert f.rows_per_call == pytest.approx(2.0)
    assert f.share_of_time == pytest.approx(6.0 / 12.0)  # 6 s of the 6 + 6 s all statements took


def test_share_over_the_buffer_stays_exact_when_a_statement_enters_the_top_k() -> None:
    # statement 2 was in __other__ at first; the total (top-K + __other__) is what counts
    history = history_of([
        stmt("1", 10, 1.0, 0) + stmt("__other__", 20, 10.0, 0),
        stmt("1", 20, 2.0, 0) + stmt("2", 10, 9.0, 0) + stmt("__other__", 15, 3.0, 0),
    ])
    assert statement_figures(history, 1).share_of_time == pytest.approx(1.0 / (14.0 - 11.0))
    assert statement_figures(history, 2).calls is None  # one point held: no figure over the buffer


def test_no_figures_from_a_single_poll_or_an_unknown_statement() -> None:
    history = history_of([stmt("1", 10, 1.0, 10)])
    assert statement_figures(history, 1) == detail.StatementFigures()
    assert statement_figures(history_of([]), 7) == detail.StatementFigures()


def snapshot(**kw: Any) -> PostgresSnapshot:
    base: dict[str, Any] = dict(
        target=TARGET, datname="postgres", server_version="17.10", max_connections=100, features={},
        connections=[], oldest_transaction_seconds=0, idle_in_transaction_oldest_seconds=0,
        lock_waiting_sessions=0, databases=[], tables=[], table_count=0, indexes=[], index_count=0,
        statements=[], statement_count=0, statements_reset=None, query_errors={})
    return PostgresSnapshot(**{**base, **kw})


def test_share_since_reset_counts_the_other_statements() -> None:
    snap = snapshot(statements=[StatementStat(1, "SELECT 1", 10, 3.0), StatementStat(2, "SELECT 2", 5, 1.0)],
                    statements_other=StatementStat(0, "", 100, 4.0))
    assert share_since_reset(snap, 1) == pytest.approx(3.0 / 8.0)
    assert share_since_reset(snap, 9) is None


def test_table_growth_and_scan_rates_over_the_buffer() -> None:
    def tbl(size: float, seq: float) -> list[Sample]:
        labels = (TARGET, "postgres", "s", "t")
        return [Sample(SIZE, labels, size), Sample(SEQ_SCANS, labels, seq)]

    history = history_of([tbl(1000, 5), tbl(1500, 8), None, tbl(4000, 20)], step=60)
    first = history.times()[0]
    f = table_figures(history, "s", "t", sizes_read_at=first + 170, size_interval=60)
    assert f.growth_bytes == 3000 and f.seconds == 180
    assert f.growth_per_hour == pytest.approx(3000 * 20)
    assert f.seq_scans_per_second == pytest.approx(15 / 180) and f.index_scans_per_second is None
    assert f.next_size_read == first + 230
    assert table_figures(history, "s", "t", size_interval=0).growth_bytes == 3000  # read every poll


def test_no_growth_figure_until_two_size_reads() -> None:
    """Sizes are read every size_interval and kept between reads: the first read alone shows no growth (it was
    "+0 B" while the table grew)."""
    labels = (TARGET, "postgres", "s", "t")
    history = history_of([[Sample(SIZE, labels, 8192.0)]] * 4, step=2)
    first = history.times()[0]
    once = table_figures(history, "s", "t", sizes_read_at=first - 1, size_interval=300)
    assert once.growth_bytes is None and once.growth_per_hour is None
    assert once.next_size_read == first + 299
    assert table_figures(history, "s", "t", sizes_read_at=None, size_interval=300).growth_bytes is None


# --- the advice that concerns it -----------------------------------------------------------------------------
T, U, V = TableId(11, "s", "t"), TableId(12, "s", "u"), TableId(13, "s", "v")


def report() -> AdviceReport:
    missing = Finding("missing_index", "s.t", "e", columns=["a"], queryids=[1, 2], action=1, query="SELECT a",
                      table_id=T)
    slow = Finding("slow_statement", "s.u", "e", queryids=[3], query="SELECT u", table_id=U)
    unused = Finding("unused_index", "s.t", "e", index="s.t_b", action=2, table_id=T)
    serves_2 = [ServedStatement(2, "SELECT a", 1, 0.1, 9)]
    serves_5 = [ServedStatement(5, "SELECT v", 1, 0.1, 9)]
    create = Action(1, "create", "s.t", "r", ["missing_index"], "hypopg",
                    creates=[NewIndex("s.t", ["a"], "CREATE ...", statements=serves_2)], table_id=T)
    drop = Action(2, "drop", "s.t", "r", ["unused_index"], "catalog", drops=["s.t_b"], statements_using=[4],
                  table_id=T)
    other = Action(3, "create", "s.v", "r", ["missing_index"], "hypopg",
                   creates=[NewIndex("s.v", ["x"], "CREATE ...", statements=serves_5)], table_id=V)
    return AdviceReport(TARGET, datetime.now(UTC), None, findings=[missing, slow, unused],
                        plan=Plan(actions=[create, drop, other]), statement_plans={1: "Seq Scan on t"},
                        skipped=[Skipped(6, "SELECT bad", "cannot be planned: syntax error")])


def test_findings_and_plan_actions_matched_to_a_statement() -> None:
    r = report()
    assert [f.kind for f in statement_findings(r, 1)] == ["missing_index"]
    assert [a.order for a in statement_actions(r, 1, statement_findings(r, 1))] == [1]  # carries out its finding
    assert [a.order for a in statement_actions(r, 2, [])] == [1]  # the new index serves it
    assert [a.order for a in statement_actions(r, 4, [])] == [2]  # its plan uses the dropped index
    assert [a.order for a in statement_actions(r, 5, [])] == [3]
    assert statement_findings(r, 99) == [] and statement_actions(None, 1) == []


def test_findings_and_plan_actions_matched_to_a_table() -> None:
    r = report()
    assert sorted(f.kind for f in table_findings(r, T.relid)) == ["missing_index", "unused_index"]
    assert [a.order for a in table_actions(r, T.relid)] == [1, 2]
    assert table_findings(r, 99) == [] and table_actions(None, T.relid) == [] and table_actions(r, None) == []


def test_a_renamed_table_keeps_its_advice_and_its_old_name_gets_none() -> None:
    """The report names the table by the name it had when the advisor ran; the page matches it by oid: after
    ``ALTER TABLE s.t RENAME TO t_old`` and a new ``s.t``, the advice is on t_old's page, not the new t's."""
    r = report()
    created = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
    r.index_history = [IndexEvent(created, "s.t", "s.t_a", "created", True, table_oid=T.relid)]
    snap = snapshot(tables=[TableRow("s", "t_old", relid=T.relid, size_bytes=1.0),
                            TableRow("s", "t", relid=77, size_bytes=1.0)])
    old = detail.table_page(states(snap, history_of([]), advice=r), TARGET, "s.t_old", 1030.0)
    new = detail.table_page(states(snap, history_of([]), advice=r), TARGET, "s.t", 1030.0)
    assert old is not None and new is not None and (old.relid, new.relid) == (T.relid, 77)
    assert [a.order for a in old.advice.actions] == [1, 2] and len(old.advice.findings) == 2
    assert [e.index for e, _ in old.index_history] == ["s.t_a"]
    assert new.advice.actions == [] and new.advice.findings == [] and new.index_history == []
    html = pages.render_table_page(old, "../../", now=1030.0)  # its actions link their table by its (schema, name)
    assert f'<span class="kind">1. create</span> <a class="table-link" href="../../{table_path(TARGET, "s", "t")}">' \
        in html


# --- the pages from the scheduler's state --------------------------------------------------------------------
def states(snap: PostgresSnapshot | None, history: History, up: bool = True,
           advice: AdviceReport | None = None) -> list[SourceState]:
    pg = SourceState(FakePoller("postgres"), history, snapshot=snap, polls=3, up=up,
                     last_error=None if up else "OperationalError: connection refused", last_success=1020.0)
    out = [pg]
    if advice is not None:
        out.append(SourceState(FakePoller("advisor"), History(2, []), snapshot=AdviceSnapshot(advice), polls=1,
                               up=True, last_success=1020.0))
    return out


HOSTILE = 'SELECT "<img src=x onerror=alert(1)>" FROM t WHERE id = $1'


def test_statement_page_content_404s_and_the_plan() -> None:
    snap = snapshot(statements=[StatementStat(1, HOSTILE, 10, 3.0, 10)])
    history = history_of([stmt("1", 5, 1.0, 5), stmt("1", 10, 3.0, 10)])
    page = detail.statement_page(states(snap, history, advice=report()), TARGET, 1, 1030.0)
    assert page is not None and page.text == HOSTILE and page.stat is not None
    assert page.plan == "Seq Scan on t" and page.no_plan == ""
    assert [c.key for c in page.charts] == ["calls", "mean", "rows"]
    assert page.charts[0].lines[0].values == [None, 0.5]
    assert detail.statement_page(states(snap, history), "other-target", 1, 1030.0) is None
    assert detail.statement_page(states(snap, history), TARGET, 77, 1030.0) is None  # unknown while up
    no_advisor = detail.statement_page(states(snap, history), TARGET, 1, 1030.0)
    assert no_advisor is not None and no_advisor.plan is None and no_advisor.no_plan.startswith("no plan: ")
    skipped = detail.statement_page(states(snap, history, advice=report()), TARGET, 6, 1030.0)
    assert skipped is not None and "syntax error" in skipped.no_plan and skipped.text == "SELECT bad"

    html = pages.render_statement_page(page, "../../", now=1030.0)
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'href="../../ui/static/ui.css"' in html and 'src="../../ui/static/ui.js"' in html
    assert 'style="' not in html and html.count("<script") == 1


def test_a_statement_page_says_why_no_action_concerns_it() -> None:
    snap = snapshot(statements=[StatementStat(7, "SELECT sum(x) FROM t", 10, 3.0, 10),
                                StatementStat(8, "SELECT 8", 10, 0.01, 10),
                                StatementStat(9, "SELECT sum(x) FROM t /* other */", 1, 0.1, 1)])
    history = history_of([stmt("7", 10, 3.0, 10)])
    r = report()
    r.coverage = [StatementReason(7, "SELECT sum(x) FROM t", 10, 0.4, "no_candidate",
                                  "no predicate an index can use <b>", variants=[9])]
    for queryid in (7, 9):  # a variant finds its group's reason
        page = detail.statement_page(states(snap, history, advice=r), TARGET, queryid, 1030.0)
        assert page is not None and page.advice.reason is r.coverage[0]
    page = detail.statement_page(states(snap, history, advice=r), TARGET, 7, 1030.0)
    assert page is not None
    html = pages.render_statement_page(page, "../../", now=1030.0)
    assert "<b>no candidate</b>: no predicate an index can use &lt;b&gt;" in html
    assert "40.0 % of the statement time" in html
    quiet = detail.statement_page(states(snap, history, advice=r), TARGET, 8, 1030.0)
    assert quiet is not None and quiet.advice.reason is None
    assert "less of the statement time than the advisor explains" in pages.render_statement_page(quiet, "../../",
                                                                                                   now=1030.0)


def test_a_down_source_shows_its_error_and_no_current_values() -> None:
    snap = snapshot(statements=[StatementStat(1, "SELECT 1", 10, 3.0, 10)],
                    tables=[TableRow("s", "t", seq_scans=3, size_bytes=100.0)])
    labels = (TARGET, "postgres", "s", "t")
    history = history_of([[*stmt("1", 5, 1.0, 5), Sample(SEQ_SCANS, labels, 1)], None])
    page = detail.statement_page(states(snap, history, up=False), TARGET, 1, 1030.0)
    assert page is not None and page.source.down == "OperationalError: connection refused"
    assert page.stat is None and page.share_since_reset is None and page.text == "SELECT 1"
    assert page.charts[0].down == [(1000.0, 1010.0)]
    html = pages.render_statement_page(page, "../../", now=1030.0)
    assert "source down: OperationalError: connection refused" in html and 'data-gaps="1"' in html
    table = detail.table_page(states(snap, history, up=False), TARGET, "s.t", 1030.0)
    assert table is not None and table.row is None and table.source.down
    assert "Rows and maintenance" not in pages.render_table_page(table, "../../", now=1030.0)


def test_table_page_finds_a_table_whose_names_hold_dots() -> None:
    snap = snapshot(tables=[TableRow("a.b", "c.d", size_bytes=1.0)],
                    indexes=[IndexRow("a.b", "c.d", "i2", scans=1, size_bytes=9.0),
                             IndexRow("a.b", "c.d", "i1", scans=5, size_bytes=8.0), IndexRow("x", "y", "i3")])
    page = detail.table_page(states(snap, history_of([])), TARGET, "a.b.c.d", 1030.0)
    assert page is not None and (page.schema, page.table) == ("a.b", "c.d")
    assert [i.index for i in page.indexes] == ["i1", "i2"]
    assert detail.table_page(states(snap, history_of([])), TARGET, "a.b.c", 1030.0) is None
    html = pages.render_table_page(page, "../../", now=1030.0)
    assert 'class="indexes sortable"' in html and '<button type="button" class="sort" data-sort="num">' in html


def test_not_found_page_escapes_what_was_asked() -> None:
    html = pages.render_not_found("no table <script>x</script>", "../")
    assert "<script>x" not in html and "&lt;script&gt;x&lt;/script&gt;" in html


# --- a target watching its cluster's other databases (postgres.targets[].databases) ----------------------------
def test_a_table_page_per_database_and_the_databases_listed() -> None:
    from collectors.postgres.databases import DatabasesPart, DatabaseStats
    from monitor.core.scheduler import Scheduler

    shop = DatabaseStats("shop", 16384, tables=[TableRow("public", "orders", relid=16400, seq_scans=9,
                                                          size_bytes=5.0)],
                         table_count=1, indexes=[IndexRow("public", "orders", "orders_pkey", scans=2)],
                         index_count=1, statement_count=4, read_at=1015.0)
    others = DatabasesPart(databases=(shop,), watched=2, left_out={"max": 3}, refresh_interval=300.0)
    snap = snapshot(tables=[TableRow("public", "orders", seq_scans=1)], others=others)
    # One table of the same name in each database: its series differ by datname only.
    history = history_of([[Sample(SEQ_SCANS, (TARGET, db, "public", "orders"), n * i) for db, n in
                           (("postgres", 1), ("shop", 3))] for i in range(3)])
    main = AdviceReport(TARGET, datetime.now(UTC), None, findings=[])
    in_shop = AdviceReport(f"{TARGET}/shop", datetime.now(UTC), None,
                           findings=[Finding("missing_index", "public.orders", "e", columns=["a"],
                                             table_id=TableId(16400, "public", "orders"))])
    pg = SourceState(FakePoller("postgres"), history, snapshot=snap, polls=3, up=True, last_success=1020.0)
    advisor = SourceState(FakePoller("advisor"), History(2, []), snapshot=AdviceSnapshot(main, (in_shop,)), polls=1,
                          up=True, last_success=1020.0)
    page = detail.table_page([pg, advisor], f"{TARGET}/shop", "public.orders", 1030.0)
    assert page is not None and page.target == f"{TARGET}/shop"
    assert page.row is not None and page.row.seq_scans == 9
    assert [i.index for i in page.indexes] == ["orders_pkey"]
    assert [f.kind for f in page.advice.findings] == ["missing_index"]  # the shop database's advice only
    assert page.figures.seq_scans_per_second == pytest.approx(0.3)  # its own series: 3 scans per 10 s
    dsn_page = detail.table_page([pg, advisor], TARGET, "public.orders", 1030.0)
    assert dsn_page is not None and dsn_page.row is not None and dsn_page.row.seq_scans == 1
    assert dsn_page.advice.findings == []
    assert dsn_page.figures.seq_scans_per_second == pytest.approx(0.1)  # the DSN's database's series, not shop's
    assert detail.table_page([pg, advisor], f"{TARGET}/nope", "public.orders", 1030.0) is None
    assert "public.orders" in pages.render_table_page(page, "../../", now=1030.0)
    scheduler = Scheduler([])
    scheduler.states = [pg, advisor]
    html = pages.render_sections(scheduler, now=1030.0)
    assert "Databases (2 watched, 3 left out" in html
    assert 'href="' + table_path(f"{TARGET}/shop", "public", "orders") + '"' in html
    # Linked from the databases table, and the shop database's advice has its own block in the advice section.
    assert html.count('href="advice.html?target=127.0.0.1%3A5432/postgres/shop"') == 2
    assert html.count('href="advice.html?target=127.0.0.1%3A5432/postgres"') == 1


def test_a_statement_page_per_database_linked_from_the_databases_table() -> None:
    """The same statement (one queryid) in two databases: each page shows its own database's counters, share,
    history and advice."""
    from collectors.postgres.databases import DatabasesPart, DatabaseStats
    from monitor.core.scheduler import Scheduler

    def series(db: str, queryid: str, calls: float, exec_: float) -> list[Sample]:
        labels = (TARGET, db, queryid)
        return [Sample(CALLS, labels, calls), Sample(EXEC, labels, exec_), Sample(ROWS, labels, calls)]

    shop = DatabaseStats("shop", 16384, statements=[StatementStat(7, "SELECT * FROM orders WHERE id = $1", calls=40,
                                                                  exec_seconds=3.0)],
                         statements_other=StatementStat(0, "__other__", calls=5, exec_seconds=1.0), statement_count=2,
                         read_at=1015.0)
    others = DatabasesPart(databases=(shop,), watched=2, left_out={}, refresh_interval=300.0)
    snap = snapshot(others=others, statements=[StatementStat(7, "SELECT * FROM orders WHERE id = $1", calls=10,
                                                             exec_seconds=1.0)])
    history = history_of([series("postgres", "7", 10 * i, 1.0 * i) + series("shop", "7", 40 * i, 3.0 * i)
                          + series("shop", "__other__", 5 * i, 1.0 * i) for i in range(3)])
    main = AdviceReport(TARGET, datetime.now(UTC), None, findings=[])
    in_shop = AdviceReport(f"{TARGET}/shop", datetime.now(UTC), None, findings=[
        Finding("missing_index", "public.orders", "e", columns=["id"], queryids=[7])])
    pg = SourceState(FakePoller("postgres"), history, snapshot=snap, polls=3, up=True, last_success=1020.0)
    advisor = SourceState(FakePoller("advisor"), History(2, []), snapshot=AdviceSnapshot(main, (in_shop,)), polls=1,
                          up=True, last_success=1020.0)
    page = detail.statement_page([pg, advisor], f"{TARGET}/shop", 7, 1030.0)
    assert page is not None and page.target == f"{TARGET}/shop"
    assert page.stat is not None and page.stat.calls == 40
    assert page.share_since_reset == pytest.approx(0.75)  # of shop's time: 3 of 3 + 1
    assert page.figures.calls_per_second == pytest.approx(4.0)  # its own series: 40 calls per 10 s
    assert page.figures.share_of_time == pytest.approx(0.75)
    assert [f.kind for f in page.advice.findings] == ["missing_index"]  # the shop database's advice
    dsn_page = detail.statement_page([pg, advisor], TARGET, 7, 1030.0)
    assert dsn_page is not None and dsn_page.stat is not None and dsn_page.stat.calls == 10
    assert dsn_page.figures.calls_per_second == pytest.approx(1.0) and dsn_page.advice.findings == []
    # for ranges from Prometheus: the series are the base target's, told apart by datname
    assert (page.source.state.poller.target, page.datname) == (TARGET, "shop")
    assert (dsn_page.source.state.poller.target, dsn_page.datname) == (TARGET, "postgres")
    assert detail.statement_page([pg, advisor], f"{TARGET}/nope", 7, 1030.0) is None
    assert detail.statement_page([pg, advisor], f"{TARGET}/shop", 8, 1030.0) is None
    html = pages.render_statement_page(page, "../../", now=1030.0)
    assert "SELECT * FROM orders WHERE id = $1" in html and f"{TARGET}/shop" in html
    scheduler = Scheduler([])
    scheduler.states = [pg, advisor]
    sections = pages.render_sections(scheduler, now=1030.0)
    assert 'href="' + statement_path(f"{TARGET}/shop", 7) + '"' in sections


def test_a_table_page_shows_its_index_history_newest_first_with_the_outcome_still_followed() -> None:
    created = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
    dropped = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    r = report()
    r.index_history = [IndexEvent(created, "s.t", "ix_t_a", "created", True, table_oid=T.relid),
                       IndexEvent(created, "s.other", "ix_other", "created", False, table_oid=14),
                       IndexEvent(dropped, "s.t", "ix_t_old", "dropped", False)]  # kept before oids: by name
    r.outcomes = [Outcome("s.t", "ix_t_a", "created", created, True,
                          [StatementOutcome(7, "SELECT 1", Window(30, 3.0, 30, 300), Window(60, 0.5, 60, 60),
                                            "improvement")], table_oid=T.relid)]
    snap = snapshot(tables=[TableRow("s", "t", relid=T.relid, size_bytes=1.0)])
    page = detail.table_page(states(snap, history_of([]), advice=r), TARGET, "s.t", 1030.0)
    assert page is not None
    assert [(e.index, o is not None) for e, o in page.index_history] == [("ix_t_old", False), ("ix_t_a", True)]
    html = pages.render_table_page(page, "../../", now=1030.0)
    assert 'id="index-history"' in html and "ix_other" not in html
    assert "ix_t_a</span> created 4 Dec 2026 09:30 UTC, as advised · 1 statement 12x faster since (improvement)" in html
    quiet = detail.table_page(states(snap, history_of([]), advice=report()), TARGET, "s.t", 1030.0)
    assert quiet is not None and 'id="index-history"' not in pages.render_table_page(quiet, "../../", now=1030.0)


def test_each_database_s_report_shows_its_own_age() -> None:
    # Seen live with databases: auto: the advisor reads one database per run, yet every report said the age of
    # the last run ("report 53.9 s ago" for a report of three minutes before).
    from monitor.core.scheduler import Scheduler

    now = 10_000.0
    main = AdviceReport(TARGET, datetime.fromtimestamp(now - 180, UTC), None, findings=[])
    in_shop = AdviceReport(f"{TARGET}/shop", datetime.fromtimestamp(now - 54, UTC), None, findings=[])
    advisor = SourceState(FakePoller("advisor"), History(2, []), snapshot=AdviceSnapshot(main, (in_shop,)), polls=3,
                          up=True, last_success=now - 54)
    scheduler = Scheduler([])
    scheduler.states = [advisor]
    html = pages.render_sections(scheduler, now=now)
    assert re.findall(r"report ([^<·]+?) ago", html) == ["3.0 min", "54.0 s"]
