"""Every HTML page dbpulse makes: the web UI at ``/`` and the advice report, from Jinja2 templates.

One way to make HTML: templates in ``templates/`` with autoescaping on (every
name and query text comes from a monitored system and is untrusted; it only
reaches a page escaped), ``StrictUndefined`` (a misspelt attribute fails the
tests, not a page), one template per source section (``templates/sections/``)
holding its ``section`` and ``summary`` macros. The renderers take the
project's own snapshot types; the pages never query a database.

Served pages link ``ui/static/ui.css`` and ``ui.js`` under a strict
Content-Security-Policy (``app.SECURITY_HEADERS``); the report written by
``dbpulse advise --format html`` is one standalone file with the same
stylesheet inlined.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup

from collectors.base.attention import SEVERITY_RANK, Attention
from collectors.base.poller import Snapshot
from collectors.base.spec import SourceSpec
from collectors.registry import source, sources
from monitor import __version__
from monitor.advisor.actions import Action
from monitor.advisor.facts import finding_facts
from monitor.advisor.findings import AdviceReport, Finding
from monitor.advisor.kinds import KINDS, pattern_kinds
from monitor.advisor.poller import ADVISOR, reports_of
from monitor.advisor.poller import report_of as advice_of
from monitor.advisor.report import STATUS_TEXT, not_planned, utility_counts
from monitor.core import units
from monitor.core.joined import links_of
from monitor.core.scheduler import Scheduler, SourceState
from monitor.web import charts
from monitor.web.detail import StatementPage, TablePage, statement_path, table_path
from monitor.web.history import Shown
from monitor.web.trends import Frame, charts_of

STATIC = Path(__file__).parent / "static"
QUERY_CHARS = 400
DASH = units.DASH
ADVISOR_ORDER = 99  # the advice section comes after every source's


# --- formatting (filters: monitor/core/units.py) --------------------------------------------------
def compact(text: str, limit: int = QUERY_CHARS) -> str:
    """A query text on one line, cut at ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def anchor(*parts: str) -> str:
    """An id made of letters, digits and dashes."""
    return "".join(c if c.isalnum() else "-" for c in "-".join(parts))


def ratio(part: float | None, whole: float | None) -> float | None:
    return part / whole if part is not None and whole else None


# --- what the advice section shows ---------------------------------------------------------------
@dataclass(frozen=True)
class AdvisorView:
    state: SourceState
    report: AdviceReport | None
    name: str = ""  # whose advice: the report's target (<target>/<database> for a target's other databases)

    @property
    def target(self) -> str:
        return self.name or self.state.poller.target

    @property
    def index_findings(self) -> list[Finding]:
        return [f for f in self.ordered() if f.kind not in pattern_kinds()]

    @property
    def pattern_findings(self) -> list[Finding]:
        return [f for f in self.ordered() if f.kind in pattern_kinds()]

    def ordered(self) -> list[Finding]:
        return self.report.ordered_findings() if self.report else []

    @property
    def unserved_patterns(self) -> list[Finding]:
        """N+1 and slow-statement findings no plan action serves: shown in full."""
        served = self.report.plan.served_by() if self.report else {}
        return [f for f in self.pattern_findings if not (f.kind == "slow_statement" and self._action_of(f, served))]

    def served_slow(self) -> list[tuple[Action, list[Finding]]]:
        """Slow statements a plan action serves, by action: a link to it rather than their statements again."""
        served = self.report.plan.served_by() if self.report else {}
        groups: dict[int, tuple[Action, list[Finding]]] = {}
        for f in self.pattern_findings:
            action = self._action_of(f, served) if f.kind == "slow_statement" else None
            if action is not None:
                groups.setdefault(action.order, (action, []))[1].append(f)
        return [groups[order] for order in sorted(groups)]

    @staticmethod
    def _action_of(f: Finding, served: dict[int, Action]) -> Action | None:
        return next((served[q] for q in f.queryids or [] if q in served), None)

    def counts(self) -> list[tuple[str, int]]:
        """(title, count) of every kind with findings, in registry order."""
        if self.report is None:
            return []
        return [(KINDS[name].title, n) for name, n in self.report.counts_by_kind().items() if n]


# --- the summary at the top of the main page: what needs attention ---------------------------------
SUMMARY_PROBLEMS = 5  # health problems listed in the summary; every one is in its target's Health section
SUMMARY_ACTIONS = 6  # plan actions shown one line each; the rest behind one more line
# Advisor notes that say how the report was made, not what it lacks: shown grey, not as a warning.
ABOUT_THE_REPORT = re.compile(r"^(pg_stat_statements was reset|plan checked as a whole|"
                              r"\d+ statement\(s\) (were planned in an equivalent rewritten form|compare a parameter))")


def note_tone(note: str) -> str:
    """``muted`` for a note about how the advice was made, ``note`` (a warning) for one about what it lacks."""
    return "muted" if ABOUT_THE_REPORT.match(note) else "note"


def plan_ident(target: str) -> str:
    """The id prefix of a target's plan on the main page; action N is ``<prefix>-aN``."""
    return anchor("plan", target)


@dataclass(frozen=True)
class Problem:
    """One health problem of one target, from its source's triage (``SourceSpec.attention``)."""

    source: str
    target: str
    item: Attention

    @property
    def ident(self) -> str:
        """The id of its target's Health block, where it is shown in full."""
        return anchor(f"{self.source}-health", self.target)


@dataclass(frozen=True)
class ActionLine:
    """A plan action in one line (what, where, time saved per hour, statements served); it expands in place."""

    target: str
    action: Action

    @property
    def ident(self) -> str:
        return f"{plan_ident(self.target)}-a{self.action.order}"

    @property
    def subject(self) -> str:
        """The indexes it creates, else the ones it drops."""
        return ", ".join([n.label for n in self.action.creates] or self.action.drops)

    @property
    def served(self) -> int:
        """Statements its new indexes serve: one per statement the plan lists, its variants counted in it."""
        return sum(len(n.statements) for n in self.action.creates)

    @property
    def variants(self) -> int:
        """The other variants of those statements (IN lists of other lengths), served with them."""
        return sum(len(st.variants) for n in self.action.creates for st in n.statements)


@dataclass(frozen=True)
class Summary:
    problems: list[Problem]  # worst first
    actions: list[ActionLine]  # in plan order, target by target
    triaged: list[str] = field(default_factory=list)  # the titles of the sources watched that triage their health

    def severities(self) -> list[tuple[str, int]]:
        counts = {s: sum(1 for p in self.problems if p.item.severity == s) for s in SEVERITY_RANK}
        return [(s, n) for s, n in counts.items() if n]

    @property
    def saved_seconds_per_hour(self) -> float | None:
        values = [a.action.saved_seconds_per_hour for a in self.actions]
        known = [v for v in values if v is not None]
        return sum(known) if known else None


def summary_of(states: Sequence[SourceState]) -> Summary:
    problems = [Problem(s.poller.source, s.poller.target, item) for s in states if (spec := source(s.poller.source))
                and (snap := spec.of(s.snapshot)) is not None for item in spec.attention(snap)]
    problems.sort(key=lambda p: (SEVERITY_RANK[p.item.severity], -p.item.score))
    actions = [ActionLine(r.target, a) for s in states for r in reports_of(s.snapshot) for a in r.plan.actions]
    watched = {s.poller.source for s in states}
    return Summary(problems, actions, [spec.title for spec in sources() if spec.triaged and spec.name in watched])


# --- a source's status badge ---------------------------------------------------------------------
@dataclass(frozen=True)
class SourceStatus:
    css: str  # the badge's class: ok, warning, bad or unknown
    label: str
    detail: str = ""  # what is failing, when the poll itself did not fail


def status_of(state: SourceState) -> SourceStatus:
    """The poll's outcome and what the source says is failing (a health target's endpoints: an application
    whose endpoints fail is not "up" because dbpulse could probe it)."""
    if not state.polls:
        return SourceStatus("unknown", "starting")
    if not state.up:
        return SourceStatus("bad", "down", state.last_error or "")
    spec = source(state.poller.source)
    snap = spec.of(state.snapshot) if spec else None
    if spec and snap is not None and (degraded := spec.degraded(snap)):
        if degraded.failing == degraded.total:
            return SourceStatus("bad", "failing", degraded.detail)
        return SourceStatus("warning", f"{degraded.failing} of {degraded.total} failing", degraded.detail)
    return SourceStatus("ok", "up")


def _advisor_views(state: SourceState) -> list[AdvisorView]:
    """An advisor's reports, one view each (a target watching its other databases has one per database); one
    view waiting for its first report before it has any."""
    reports = reports_of(state.snapshot)
    return [AdvisorView(state, r, r.target) for r in reports] if reports else [AdvisorView(state, None)]


def report_of(state: SourceState) -> AdviceReport | None:
    return advice_of(state.snapshot)



# --- the environment ---------------------------------------------------------------------------
@cache
def environment() -> Environment:
    """The template environment, made once (on first use, so importing this module stays cheap)."""
    env = Environment(
        loader=PackageLoader("monitor.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.do"],
    )
    env.filters.update(num=units.num, ratio=units.ratio, ms=units.ms, seconds=units.seconds, bytes=units.bytes_,
                       compact=compact, less=units.less)
    env.globals.update(
        age=units.age, anchor=anchor, ratio=ratio, kinds=KINDS, facts=finding_facts, version=__version__,
        view_of=view_of, template_of=template_of, report_of=report_of, snapshot_of=_snapshot_for,
        status_of=status_of, root="",
        charts_of=_charts_of, chart=charts.svg, statement_path=statement_path, table_path=table_path,
        note_tone=note_tone, plan_ident=plan_ident, utility_counts=utility_counts, not_planned=not_planned,
        status_text=STATUS_TEXT,
        limits={"problems": SUMMARY_PROBLEMS, "actions": SUMMARY_ACTIONS},
    )
    return env



def _states_in_page_order(scheduler: Scheduler) -> list[SourceState]:
    def order(state: SourceState) -> tuple[int, str]:
        spec = source(state.poller.source)
        return (spec.order if spec else ADVISOR_ORDER, state.poller.target)

    return sorted(scheduler.states, key=order)


def _snapshot_for(state: SourceState) -> Snapshot | None:
    """The state's snapshot if it is the type its section template is written for."""
    spec = source(state.poller.source)
    return spec.of(state.snapshot) if spec else None


def _spec_of(snapshot: Snapshot) -> SourceSpec[Any, Any]:
    spec = next((s for s in sources() if s.of(snapshot) is not None), None)
    if spec is None:
        raise TypeError(f"no registered source has snapshots of type {type(snapshot).__name__}")
    return spec


@pass_context
def _charts_of(context: Context, state: SourceState, scope: Mapping[str, str] | None = None) -> list[charts.Chart]:
    """A section's charts: over the page's range (``frames``, from Prometheus) when it has one, else the ring."""
    frames: Mapping[str, Frame] = context.get("frames") or {}
    return charts_of(state, scope, frames.get(f"{state.poller.source}:{state.poller.target}"))


@pass_context
def view_of(context: Context, snapshot: Snapshot) -> object:
    """What a section template shows of its source's snapshot (``SourceSpec.view``); a view that joins sources
    (``SourceSpec.joined_view``) also gets every target's links, which ``render_sections`` puts on the page."""
    spec = _spec_of(snapshot)
    if spec.joined_view is not None:
        return spec.joined_view(snapshot, context.get("links", ()))
    return spec.view(snapshot)


def template_of(state: SourceState) -> str:
    """The section template of a source's state (``SourceSpec.template``)."""
    spec = source(state.poller.source)
    if spec is None:
        raise KeyError(f"{state.poller.source!r} is not a registered source")
    return spec.template


def render_sections(scheduler: Scheduler, now: float | None = None, frames: Mapping[str, Frame] | None = None,
                    shown: Shown | None = None) -> str:
    """The live part of the page (what the script re-fetches); ``frames``: the charts' range read from Prometheus
    (``history.HistoryReader.frames``), by ``source:target``, and ``shown`` where they come from."""
    now = time.time() if now is None else now
    states = _states_in_page_order(scheduler)
    # One view per report: a target watching its other databases has one for each (postgres.targets[].databases).
    advisors = [view for s in states if s.poller.source == ADVISOR for view in _advisor_views(s)]
    watched = [(s, _snapshot_for(s)) for s in states if source(s.poller.source) is not None]
    return environment().get_template("sections.html").render(
        states=states, advisors=advisors, sources=watched, links=links_of(states), now=now,
        frames=frames or {}, shown=shown or Shown(),
        version_stamp=scheduler.version,
        summary=summary_of(states),
        stamp=time.strftime("%H:%M:%S", time.localtime(now)))


def refresh_seconds(scheduler: Scheduler) -> int:
    intervals = [s.poller.interval for s in scheduler.states if source(s.poller.source) is not None]
    return int(min(max(min(intervals, default=5.0), 2.0), 30.0))


def render_index(scheduler: Scheduler, frames: Mapping[str, Frame] | None = None, shown: Shown | None = None) -> str:
    return environment().get_template("index.html").render(
        refresh=refresh_seconds(scheduler), sections=Markup(render_sections(scheduler, frames=frames, shown=shown)),
        standalone=False)


def render_advice_report(report: AdviceReport, standalone: bool = False) -> str:
    """The report of one target; ``standalone`` inlines the stylesheet (a file, not a served page)."""
    return environment().get_template("advice_report.html").render(
        report=report, data=report.to_json_dict(), standalone=standalone, css=_css() if standalone else "")


def render_advice_index(targets: Sequence[str]) -> str:
    return environment().get_template("advice_index.html").render(targets=targets, standalone=False)


def _css() -> Markup:
    return Markup((STATIC / "ui.css").read_text(encoding="utf-8"))  # our own file, not input


def render_statement_page(page: StatementPage, root: str, now: float | None = None, shown: Shown | None = None) -> str:
    """``/statements/<target>/<queryid>``; ``root`` leads back to the root from the page's path; ``shown``: where
    its charts come from (``history.HistoryReader``), memory by default."""
    now = time.time() if now is None else now
    return environment().get_template("statement.html").render(p=page, root=root, now=now, standalone=False,
                                                               shown=shown or Shown())


def render_table_page(page: TablePage, root: str, now: float | None = None, shown: Shown | None = None) -> str:
    now = time.time() if now is None else now
    return environment().get_template("table.html").render(p=page, root=root, now=now, standalone=False,
                                                           shown=shown or Shown())


def render_not_found(what: str, root: str = "") -> str:
    """A 404 page; ``what`` (from the request path: untrusted) is escaped like everything else."""
    return environment().get_template("not_found.html").render(what=what, root=root, standalone=False)
