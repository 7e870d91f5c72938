"""What the statement page and the table page show, built from the scheduler's state: no database is touched.

``/statements/<target>/<queryid>`` and ``/tables/<target>/<schema>.<table>``:
each part of the path is percent-encoded (``quote(..., safe="")``: a target
such as ``127.0.0.1:5432/postgres`` holds ``:`` and ``/``, a queryid may be
negative, a schema or table name may hold anything). ``statement_path`` and
``table_path`` make the links, ``parse_statement_path`` and
``parse_table_path`` read the raw request path back, so the two agree.

The figures over the buffer come from each source's ``History`` (the metric
names in ``DETAIL_METRICS``, which the service records); the current values
from the latest snapshot, shown only while the source is up (a down source
shows its error and the gap in the charts, never its last values as if they
were current). The advice on a statement or table is the findings and plan
actions of the target's last advisor report that name it. A table page finds
its table by the name in its path once (``find_table``), takes its oid from
the snapshot (``relid_of``), and matches the advice, the outcomes and the
index history by that oid: a table renamed since the report keeps its advice,
and a new table under an old name does not inherit it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from urllib.parse import quote, unquote

from collectors.postgres.databases import DatabasesPart, DatabaseStats
from collectors.postgres.snapshot import IndexRow, PostgresSnapshot, TableRow
from collectors.postgres.spec import SPEC as POSTGRES
from collectors.postgres.statements import StatementStat
from monitor.advisor.actions import Action, StatementReason
from monitor.advisor.findings import AdviceReport, Finding, IndexEvent
from monitor.advisor.outcomes import Outcome
from monitor.advisor.poller import ADVISOR, report_of, reports_of
from monitor.advisor.report import STATUS_TEXT
from monitor.core.history import History, Series, delta_ratio, increase, rate
from monitor.core.scheduler import SourceState
from monitor.web.charts import Chart, Line, gaps

CALLS = "dbpulse_pg_statement_calls_total"
EXEC = "dbpulse_pg_statement_exec_seconds_total"
ROWS = "dbpulse_pg_statement_rows_total"
SIZE = "dbpulse_pg_table_size_bytes"
SEQ_SCANS = "dbpulse_pg_table_seq_scans_total"
INDEX_SCANS = "dbpulse_pg_table_index_scans_total"
DEAD_ROWS = "dbpulse_pg_table_dead_rows"
LIVE_ROWS = "dbpulse_pg_table_live_rows"
# The metric names the statement and table pages draw from History (the service records them).
DETAIL_METRICS: tuple[str, ...] = (CALLS, EXEC, ROWS, SIZE, SEQ_SCANS, INDEX_SCANS, DEAD_ROWS, LIVE_ROWS)
OTHER = "__other__"


# --- paths ----------------------------------------------------------------------------------------------------
def _part(text: str) -> str:
    return quote(text, safe="")


def statement_path(target: str, queryid: int) -> str:
    """The statement page's path relative to the root (no leading slash: pages link with ``root``)."""
    return f"statements/{_part(target)}/{int(queryid)}"


def table_path(target: str, schema: str, table: str) -> str:
    return f"tables/{_part(target)}/{_part(f'{schema}.{table}')}"


def _split(raw: str, prefix: str) -> tuple[str, str] | None:
    """The raw (still encoded) path after ``prefix`` split at its last slash: (target, last part), decoded."""
    path = raw.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith(prefix):
        return None
    rest = path[len(prefix):]
    if "/" not in rest:
        return None
    target, last = rest.rsplit("/", 1)
    target, last = unquote(target), unquote(last)
    return (target, last) if target and last else None


def parse_statement_path(raw: str) -> tuple[str, int] | None:
    """``/statements/<target>/<queryid>`` -> (target, queryid); ``None`` if it is not one."""
    split = _split(raw, "/statements/")
    if split is None:
        return None
    target, queryid = split
    digits = queryid[1:] if queryid.startswith("-") else queryid
    if not digits.isascii() or not digits.isdigit() or len(digits) > 20:
        return None
    return target, int(queryid)


def parse_table_path(raw: str) -> tuple[str, str] | None:
    """``/tables/<target>/<schema>.<table>`` -> (target, "schema.table"); the split into schema and table is
    made against the tables known (a name may hold dots): ``find_table``."""
    return _split(raw, "/tables/")


def root_of(raw: str) -> str:
    """The relative prefix from a page at ``raw`` back to the root (``../`` per directory level)."""
    path = raw.split("?", 1)[0].split("#", 1)[0]
    return "../" * max(0, path.count("/") - 1)


# --- the figures ----------------------------------------------------------------------------------------------
def _per(part: tuple[float, float] | None, whole: tuple[float, float] | None) -> float | None:
    if part is None or whole is None or whole[0] <= 0:
        return None
    return part[0] / whole[0]


def total_series(history: History, name: str, **match: str) -> Series:
    """The sum of every series of ``name`` (whose labels include ``match``) at each held poll (the top-K and
    ``__other__``: an exact total even as statements move in and out of the top-K); ``None`` where the poll
    failed or held none of them."""
    times, ups = history.times(), history.ups()
    totals: list[float | None] = [None] * len(times)
    for series in history.series(name, **match):
        for i, value in enumerate(series.values):
            if value is not None and ups[i]:
                totals[i] = (totals[i] or 0.0) + value
    return Series(name, {}, times, totals)


@dataclass(frozen=True)
class StatementFigures:
    """A statement over the whole buffer: from the first to the last value held."""

    seconds: float | None = None  # the span the figures cover
    calls: float | None = None
    calls_per_second: float | None = None
    mean_exec_seconds: float | None = None
    rows_per_call: float | None = None
    share_of_time: float | None = None  # its execution time over all statements' (with __other__)


def statement_figures(history: History, queryid: int, **in_db: str) -> StatementFigures:
    """``in_db``: ``datname=`` the statement's database, when the target watches several (its share is of
    that database's time)."""
    key = str(queryid)
    calls, exec_, rows = (history.one(n, queryid=key, **in_db) for n in (CALLS, EXEC, ROWS))
    d_calls = increase(calls) if calls else None
    d_exec = increase(exec_) if exec_ else None
    d_rows = increase(rows) if rows else None
    d_total = increase(total_series(history, EXEC, **in_db))
    share = None
    if d_exec is not None and d_total is not None and d_total[0] > 0:
        share = min(1.0, d_exec[0] / d_total[0])
    return StatementFigures(
        seconds=d_calls[1] if d_calls else None,
        calls=d_calls[0] if d_calls else None,
        calls_per_second=d_calls[0] / d_calls[1] if d_calls else None,
        mean_exec_seconds=_per(d_exec, d_calls),
        rows_per_call=_per(d_rows, d_calls),
        share_of_time=share,
    )


def share_since_reset(snap: PostgresSnapshot | DatabaseStats, queryid: int) -> float | None:
    """The statement's execution time over every statement's (the top-K and ``__other__``) of its database,
    since the statistics were reset; ``None`` if the statement is not in the top-K."""
    stat = next((s for s in snap.statements if s.queryid == queryid), None)
    if stat is None:
        return None
    total = sum(s.exec_seconds for s in snap.statements)
    total += snap.statements_other.exec_seconds if snap.statements_other else 0.0
    return stat.exec_seconds / total if total > 0 else None


@dataclass(frozen=True)
class TableFigures:
    seconds: float | None = None
    size_first: float | None = None  # None until two size reads are in the buffer: no growth figure before
    size_last: float | None = None
    seq_scans_per_second: float | None = None
    index_scans_per_second: float | None = None
    sizes_read_at: float | None = None  # when the sizes were last read (epoch seconds)
    size_interval: float = 0.0  # they are read again that many seconds later (postgres.size_interval)

    @property
    def growth_bytes(self) -> float | None:
        if self.size_first is None or self.size_last is None:
            return None
        return self.size_last - self.size_first

    @property
    def growth_per_hour(self) -> float | None:
        growth = self.growth_bytes
        return growth / self.seconds * 3600 if growth is not None and self.seconds else None

    @property
    def next_size_read(self) -> float | None:
        return None if self.sizes_read_at is None else self.sizes_read_at + self.size_interval


def _held(series: Series | None) -> list[tuple[float, float]]:
    if series is None:
        return []
    return [(t, v) for t, v in zip(series.times, series.values, strict=True) if v is not None]


def table_figures(history: History, schema: str, table: str, sizes_read_at: float | None = None,
                  size_interval: float = 0.0, datname: str | None = None) -> TableFigures:
    """Growth and scan rates over the buffer. Sizes are read every ``size_interval`` and kept in between, so a
    growth needs two reads in the buffer: the last one (``sizes_read_at``) after the first point held.
    ``datname``: the table's database, when the target watches several (``postgres.targets[].databases``)."""
    match = _table_match(schema, table, datname)
    size = _held(history.one(SIZE, **match))
    seq, idx = (history.one(n, **match) for n in (SEQ_SCANS, INDEX_SCANS))
    d_seq = increase(seq) if seq else None
    d_idx = increase(idx) if idx else None
    two_reads = len(size) >= 2 and (size_interval == 0 or (sizes_read_at is not None and sizes_read_at > size[0][0]))
    spans = [d[1] for d in (d_seq, d_idx) if d] + ([size[-1][0] - size[0][0]] if two_reads else [])
    return TableFigures(
        seconds=max(spans) if spans else None,
        size_first=size[0][1] if two_reads else None,
        size_last=size[-1][1] if two_reads else None,
        seq_scans_per_second=d_seq[0] / d_seq[1] if d_seq else None,
        index_scans_per_second=d_idx[0] / d_idx[1] if d_idx else None,
        sizes_read_at=sizes_read_at,
        size_interval=size_interval,
    )


# --- the advice that concerns it ------------------------------------------------------------------------------
def statement_findings(report: AdviceReport | None, queryid: int) -> list[Finding]:
    if report is None:
        return []
    return [f for f in report.ordered_findings() if queryid in (f.queryids or []) or f.parent_queryid == queryid]


def statement_actions(report: AdviceReport | None, queryid: int, findings: Iterable[Finding] = ()) -> list[Action]:
    """Plan actions that create an index serving the statement, drop one its plan uses, or carry out one of
    its findings."""
    if report is None:
        return []
    orders = {f.action for f in findings if f.action is not None}
    return [a for a in report.plan.actions
            if a.order in orders or queryid in a.statements_using
            or any(queryid == s.queryid or queryid in s.variants for n in a.creates for s in n.statements)]


def statement_reason(report: AdviceReport | None, queryid: int) -> StatementReason | None:
    """The report's word on a statement at reason_min_share of the time or more (its group's, for a variant)."""
    if report is None:
        return None
    return next((c for c in report.coverage if c.queryid == queryid or queryid in c.variants), None)


def table_findings(report: AdviceReport | None, relid: int | None) -> list[Finding]:
    """The findings on the table whose oid is ``relid`` (None: a table whose oid is not known has none)."""
    if report is None or relid is None:
        return []
    return [f for f in report.ordered_findings() if f.concerns(relid)]


def table_history(report: AdviceReport | None, relid: int | None,
                  qualified: str) -> list[tuple[IndexEvent, Outcome | None]]:
    """The index changes seen on the table ``relid``, newest first, each with its outcome while the report still
    has it. ``qualified`` only for the changes an old state file kept without their table's oid."""
    if report is None:
        return []
    outcomes: dict[tuple[str, str, datetime], Outcome] = {
        (o.index, o.change, o.detected_at): o for o in report.outcomes if relid is not None and o.concerns(relid)}
    return [(e, outcomes.get((e.index, e.change, e.at)))
            for e in reversed(report.index_history) if e.concerns(relid, qualified)]


def table_actions(report: AdviceReport | None, relid: int | None) -> list[Action]:
    if report is None or relid is None:
        return []
    return [a for a in report.plan.actions if a.concerns(relid)]


# --- the pages ------------------------------------------------------------------------------------------------
def _window(history: History, interval: float, now: float) -> tuple[float, float]:
    """From the oldest poll held (the whole buffer once it is full) to now."""
    times = history.times()
    start = times[0] if times else now - interval
    return (min(start, now - interval), now)


def _chart(key: str, title: str, unit: str, lines: Sequence[Line], state: SourceState, now: float) -> Chart:
    history = state.history
    return Chart(title=title, unit=unit, lines=lines, window=_window(history, state.poller.interval, now), key=key,
                 down=gaps(history.times(), history.ups()))


def _ratio_line(label: str, part: Series | None, whole: Series | None) -> list[Line]:
    if part is None or whole is None:
        return []
    return [Line(label, part.times, delta_ratio(part, whole))]


@dataclass(frozen=True)
class Advice:
    """The advisor's word on one statement or table."""

    state: SourceState | None  # the advisor of the target (None: no advisor runs for it)
    report: AdviceReport | None
    findings: list[Finding] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    reason: StatementReason | None = None  # a statement's action or why it has none (report.coverage)
    reason_status: str = ""  # its status in words


@dataclass(frozen=True)
class Source:
    """The PostgreSQL source of a page: its state and, while it is up, its latest snapshot."""

    state: SourceState
    snap: PostgresSnapshot | None  # None while the source is down or before its first poll

    @property
    def down(self) -> str | None:
        """Why there are no current values: the source's error, or that it has not been polled yet."""
        if self.snap is not None:
            return None
        if self.state.polls == 0:
            return "no poll yet"
        return self.state.last_error or "the last poll failed"


@dataclass(frozen=True)
class StatementPage:
    target: str
    queryid: int
    source: Source
    text: str  # the normalized text (from the snapshot, else the advice)
    stat: StatementStat | None  # current counters (None: source down, or the statement is in __other__)
    share_since_reset: float | None
    figures: StatementFigures
    charts: list[Chart]
    advice: Advice
    plan: str | None  # the generic plan's text from the advisor's last report
    no_plan: str  # why there is no plan, when there is none
    variants: list[StatementStat] = field(default_factory=list)  # the others with its fingerprint (top-K)
    datname: str | None = None  # its database, named in its series when the target watches several


@dataclass(frozen=True)
class TablePage:
    target: str
    schema: str
    table: str
    source: Source
    row: TableRow | None
    indexes: list[IndexRow]
    figures: TableFigures
    charts: list[Chart]
    advice: Advice
    datname: str | None = None  # its database, named in its series when the target watches several
    relid: int | None = None  # its oid, what its advice is matched by (None: not known, so no advice shown)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def index_history(self) -> list[tuple[IndexEvent, Outcome | None]]:
        return table_history(self.advice.report, self.relid, self.qualified)


def _states(states: Iterable[SourceState], target: str) -> tuple[SourceState | None, SourceState | None]:
    pg = advisor = None
    for state in states:
        if state.poller.target != target:
            continue
        if state.poller.source == POSTGRES.name:
            pg = state
        elif state.poller.source == ADVISOR:
            advisor = state
    return pg, advisor


def _report(state: SourceState | None) -> AdviceReport | None:
    return report_of(state.snapshot) if state is not None else None


def _last_snapshot(state: SourceState) -> PostgresSnapshot | None:
    snap: PostgresSnapshot | None = POSTGRES.of(state.snapshot)
    return snap


def _source(state: SourceState) -> Source:
    return Source(state, _last_snapshot(state) if state.up else None)


def _statement_text(queryid: int, last: PostgresSnapshot | DatabaseStats | None,
                    report: AdviceReport | None) -> str | None:
    """The statement's normalized text: the longest of the snapshot's (also the last one of a source now down: a
    text is not a measurement; the collector reads ``statement_text_length`` characters) and the advice's (the
    advisor reads whole texts); ``None`` if nothing names the statement."""
    texts = [stat.query for stat in (last.statements if last else ()) if stat.queryid == queryid]
    if report is not None:
        texts += [f.query or "" for f in report.findings if queryid in (f.queryids or [])]
        texts += [f.parent_query or "" for f in report.findings if f.parent_queryid == queryid]
        texts += [s.query for a in report.plan.actions for n in a.creates for s in n.statements if s.queryid == queryid]
        texts += [sk.query for sk in report.skipped if sk.queryid == queryid]
    return max(texts, key=len) if texts else None


def statement_page(states: Iterable[SourceState], target: str, queryid: int, now: float) -> StatementPage | None:
    """The statement page's content; ``None`` (a 404) for a target without a PostgreSQL source, or a statement
    that neither the snapshot, the history nor the advice knows (while the source is up). ``target`` may name
    one of a target's other databases, ``<target>/<database>`` (``postgres.targets[].databases``): its
    statements are that database's last rotating read, its history and its database's advice."""
    states = list(states)
    pg, advisor = _states(states, target)
    datname = None
    if pg is None and "/" in target:
        base, datname = target.rsplit("/", 1)
        pg, advisor = _states(states, base)
    if pg is None:
        return None
    source = _source(pg)
    last = _last_snapshot(pg)
    history = pg.history
    key = str(queryid)
    current: PostgresSnapshot | DatabaseStats | None
    if datname is None:
        report = _report(advisor)
        named: PostgresSnapshot | DatabaseStats | None = last
        in_db = {"datname": last.datname} if last is not None and last.others is not None else {}
        current = source.snap
    else:
        others = last.others if last is not None and isinstance(last.others, DatabasesPart) else None
        named = next((d for d in others.databases if d.datname == datname), None) if others else None
        if named is None:
            return None
        report = next((r for r in reports_of(advisor.snapshot) if r.target == target), None) if advisor else None
        in_db = {"datname": datname}
        current = named if source.snap is not None else None
    text = _statement_text(queryid, named, report)
    in_history = history.one(CALLS, queryid=key, **in_db) is not None
    if text is None and not in_history and (source.snap is not None or pg.polls == 0):
        # up (or never polled) and unknown: a 404; a source now down keeps the pages of what its history held
        return None
    stat = next((s for s in current.statements if s.queryid == queryid), None) if current else None
    calls, exec_, rows = (history.one(n, queryid=key, **in_db) for n in (CALLS, EXEC, ROWS))
    charts = [
        _chart("calls", "calls per second", "/s", [Line("calls/s", calls.times, rate(calls).values)] if calls else [],
               pg, now),
        _chart("mean", "mean execution time", "seconds", _ratio_line("mean", exec_, calls), pg, now),
        _chart("rows", "rows per call", "count", _ratio_line("rows/call", rows, calls), pg, now),
    ]
    findings = statement_findings(report, queryid)
    reason = statement_reason(report, queryid)
    advice = Advice(advisor, report, findings, statement_actions(report, queryid, findings), reason,
                    STATUS_TEXT.get(reason.status, reason.status) if reason else "")
    plan = report.statement_plans.get(queryid) if report else None
    if plan:
        no_plan = ""
    elif advisor is None:
        no_plan = "no plan: the advisor does not run for this target (advisor.enabled)"
    elif report is None:
        no_plan = "no plan: the advisor has not reported yet" + (
            f" ({advisor.last_error})" if advisor.last_error else "")
    else:
        skipped = next((sk for sk in report.skipped if sk.queryid == queryid), None)
        no_plan = (f"no plan: the advisor could not plan it ({skipped.reason})" if skipped else
                   "no plan: the advisor's last report did not plan this statement (not among the statements it "
                   "covered, or over its EXPLAIN budget)")
    return StatementPage(target=target, queryid=queryid, source=source, text=text or "", stat=stat,
                         share_since_reset=share_since_reset(current, queryid) if current else None,
                         figures=statement_figures(history, queryid, **in_db), charts=charts, advice=advice,
                         plan=plan, no_plan=no_plan,
                         variants=variants_of(source.snap, queryid) if source.snap and datname is None else [],
                         datname=in_db.get("datname"))


def variants_of(snap: PostgresSnapshot, queryid: int) -> list[StatementStat]:
    """The other exported statements with the fingerprint of ``queryid`` (IN lists of other lengths)."""
    found = snap.variant_keys.get(queryid)
    if found is None:
        return []
    return sorted((s for s in snap.statements if s.queryid != queryid and snap.variant_keys.get(s.queryid) == found),
                  key=lambda s: -s.exec_seconds)


def _table_match(schema: str, table: str, datname: str | None) -> dict[str, str]:
    """The labels of one table's series; its database's too when known (a target may watch several)."""
    return {"schema": schema, "table": table} | ({"datname": datname} if datname is not None else {})


def find_table(name: str, last: PostgresSnapshot | DatabaseStats | None, history: History,
               report: AdviceReport | None, datname: str | None = None) -> tuple[str, str] | None:
    """(schema, table) whose ``schema.table`` is ``name``, among the tables the snapshot (or one of the
    target's other databases), the history (of ``datname`` when given) and the advice know: the text is
    matched against the pairs they hold, never split (either name may hold dots)."""
    known: list[tuple[str, str]] = []
    if last is not None:
        known += [(t.schema, t.table) for t in last.tables] + [(i.schema, i.table) for i in last.indexes]
    in_db = {"datname": datname} if datname is not None else {}
    known += [(s.labels["schema"], s.labels["table"]) for s in history.series(SEQ_SCANS, **in_db)]
    if report is not None:
        ids = [f.table_id for f in report.findings] + [a.table_id for a in report.plan.actions]
        known += [(i.schema, i.name) for i in ids if i is not None]
    return next((pair for pair in known if f"{pair[0]}.{pair[1]}" == name and pair[1] != OTHER), None)


def relid_of(found: tuple[str, str], last: PostgresSnapshot | DatabaseStats | None,
             report: AdviceReport | None) -> int | None:
    """The oid of the table named ``found`` now: the snapshot's row (its name as of the last poll), else the
    table the advice names so (the advisor read the catalog more recently); None when neither knows it."""
    if last is not None:
        row = next((t for t in last.tables if (t.schema, t.table) == found and t.relid), None)
        if row is not None:
            return row.relid
    if report is not None:
        ids = [f.table_id for f in report.findings] + [a.table_id for a in report.plan.actions]
        return next((i.relid for i in ids if i is not None and (i.schema, i.name) == found), None)
    return None


def table_page(states: Iterable[SourceState], target: str, name: str, now: float) -> TablePage | None:
    """The table page's content; ``None`` (a 404) for an unknown target or table. ``target`` may name one of a
    target's other databases, ``<target>/<database>`` (``postgres.targets[].databases``)."""
    states = list(states)
    pg, advisor = _states(states, target)
    if pg is None and "/" in target:
        base, other = target.rsplit("/", 1)
        pg, advisor = _states(states, base)
        return _other_database_table(pg, advisor, target, other, name, now) if pg is not None else None
    if pg is None:
        return None
    source = _source(pg)
    report = _report(advisor)
    last = _last_snapshot(pg)  # when the sizes were read, also while the source is down
    datname = last.datname if last is not None and last.others is not None else None
    found = find_table(name, last, pg.history, report, datname)
    if found is None:
        return None
    snap = source.snap
    row = next((t for t in snap.tables if (t.schema, t.table) == found), None) if snap else None
    indexes = sorted((i for i in snap.indexes if (i.schema, i.table) == found), key=lambda i: i.index) if snap else []
    figures = table_figures(pg.history, *found, last.sizes_read_at if last else None,
                            last.size_interval if last else 0.0, datname)
    page = TablePage(target=target, schema=found[0], table=found[1], source=source, row=row, indexes=indexes,
                     figures=figures, charts=[], advice=Advice(advisor, report), datname=datname,
                     relid=relid_of(found, last, report))
    return _with_charts_and_advice(page, pg, datname, now)


def _other_database_table(pg: SourceState, advisor: SourceState | None, target: str, datname: str, name: str,
                          now: float) -> TablePage | None:
    """A table of one of the target's other databases: its last rotating read, its history, its database's
    advice (reported as ``<target>/<database>``)."""
    last = _last_snapshot(pg)
    others = last.others if last is not None and isinstance(last.others, DatabasesPart) else None
    database = next((d for d in others.databases if d.datname == datname), None) if others else None
    if others is None or database is None:
        return None
    report = next((r for r in reports_of(advisor.snapshot) if r.target == target), None) if advisor else None
    found = find_table(name, database, pg.history, report, datname)
    if found is None:
        return None
    source = _source(pg)
    current = database if source.snap is not None else None
    row = next((t for t in current.tables if (t.schema, t.table) == found), None) if current else None
    indexes = sorted((i for i in current.indexes if (i.schema, i.table) == found),
                     key=lambda i: i.index) if current else []
    figures = table_figures(pg.history, *found, database.read_at, others.refresh_interval, datname)
    page = TablePage(target=target, schema=found[0], table=found[1], source=source, row=row, indexes=indexes,
                     figures=figures, charts=[], advice=Advice(advisor, report), datname=datname,
                     relid=relid_of(found, database, report))
    return _with_charts_and_advice(page, pg, datname, now)


def _with_charts_and_advice(page: TablePage, pg: SourceState, datname: str | None, now: float) -> TablePage:
    """``page`` with its charts and the advice that concerns its table."""
    match = _table_match(page.schema, page.table, datname)
    size, seq, idx, dead = (pg.history.one(n, **match) for n in (SIZE, SEQ_SCANS, INDEX_SCANS, DEAD_ROWS))
    scans = [Line(label, s.times, rate(s).values) for label, s in (("seq", seq), ("index", idx)) if s is not None]
    charts = [
        _chart("size", "total size", "bytes", [Line("size", size.times, size.values)] if size else [], pg, now),
        _chart("scans", "scans per second (sequential, index)", "/s", scans, pg, now),
        _chart("dead", "dead rows", "count", [Line("dead rows", dead.times, dead.values)] if dead else [], pg, now),
    ]
    report = page.advice.report
    advice = Advice(page.advice.state, report, table_findings(report, page.relid),
                    table_actions(report, page.relid))
    return replace(page, charts=charts, advice=advice)
