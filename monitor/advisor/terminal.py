"""The report for a terminal: plain text with aligned columns, coloured only where the terminal shows colour.

``dbpulse advise`` writes this when its output is a terminal (``--format text`` asks for it anywhere). It is
drawn with rich, a widely used and maintained library, rather than hand-written escape codes: rich measures
wide characters when it aligns columns, wraps to the terminal's width, and decides whether to colour at all
(not into a pipe or a file, not with ``NO_COLOR`` set or ``TERM=dumb``) and how (8, 256 or true colours).

Every name and query text comes from the monitored database: it goes in as ``Text``, never as rich markup,
so a ``[bold]`` in a table name is printed as it is. Nothing is escaped for Markdown: what is printed is what
to run or read. The full plans before and after stay in ``--format md`` and ``html``; here each new index
lists the statements it serves most, with their numbers.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import IO

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from monitor.core import units

from .actions import Action, NewIndex, ServedStatement
from .facts import finding_facts
from .findings import AdviceReport, Finding
from .kinds import title
from .outcomes import Outcome
from .report import SIZE_SOURCE, STATUS_TEXT, how_checked, not_planned, utility_counts, write_rate

SERVED_SHOWN = 5  # statements listed per new index (those it saves most time on); the rest are counted
QUERY_CHARS = 160  # a statement's text is cut here (one or two lines)
VERB_STYLE = {"create": "green", "drop": "magenta", "replace": "cyan"}


WIDTH = 120  # columns when the output is not a terminal (a file, a pipe)


def render_text(report: AdviceReport, width: int = WIDTH, color: bool = False) -> str:
    """The report as text (for a file, a pipe or a test); ``color`` adds ANSI colours."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system="standard" if color else None, force_terminal=color,
                      no_color=not color, highlight=False, emoji=False, markup=False)
    _print(console, report)
    text = buffer.getvalue()
    return text if color else "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def print_text(report: AdviceReport, file: IO[str] | None = None) -> None:
    """The report on a terminal: rich takes its width and decides on colour (none with NO_COLOR or TERM=dumb)."""
    _print(Console(file=file, highlight=False, emoji=False, markup=False), report)


def _print(console: Console, report: AdviceReport) -> None:
    for renderable in renderables(report):
        console.print(renderable)


def renderables(report: AdviceReport) -> list[RenderableType]:
    out: list[RenderableType] = [_head(report)]
    out += _notes(report.notes)
    out += _plan(report)
    out += _coverage(report)
    out += _outcomes(report.outcomes)
    out += _findings(report)
    out += _skipped(report)
    return out


def _muted(text: str) -> Text:
    return Text(text, style="dim")


def _heading(text: str) -> Text:
    return Text("\n" + text, style="bold")


def _head(report: AdviceReport) -> Text:
    counts = [(title(kind), n) for kind, n in report.counts_by_kind().items() if n]
    found = " · ".join(f"{name}: {n}" for name, n in counts) or "none"
    text = Text("dbpulse index advice: ", style="bold").append(report.target, style="bold")
    text.append("\n")
    text.append(f"generated {report.generated_at.strftime('%Y-%m-%d %H:%M:%S %Z')} · time base: {report.time_base}\n",
                style="dim")
    text.append(f"statements analyzed: {report.statements_analyzed}, skipped: {report.skipped_count}\n")
    text.append(f"findings: {found}")
    return text


def _notes(notes: Sequence[str]) -> list[RenderableType]:
    if not notes:
        return []
    return [_heading("Notes"), *(_bullet(Text(n)) for n in notes)]


def _bullet(text: Text, indent: int = 2) -> Padding:
    return _indent(Text("· ").append_text(text), indent)


def _indent(renderable: RenderableType, columns: int) -> Padding:
    return Padding(renderable, (0, 0, 0, columns), expand=False)


def _plan(report: AdviceReport) -> list[RenderableType]:
    plan = report.plan
    if not plan.actions and not plan.held_back:
        return []
    saved = [a.saved_seconds_per_hour for a in plan.actions if a.saved_seconds_per_hour is not None]
    total = f"; saves about {units.duration(sum(saved))} per hour" if saved else ""
    out: list[RenderableType] = [_heading(f"Plan: {len(plan.actions)} action(s), run in this order{total}"),
                                 _muted(how_checked(plan)), Text("")]
    if plan.actions:
        out.append(_actions_table(plan.actions))
    for action in plan.actions:
        out += _action(action)
    if plan.held_back:
        out.append(_heading("Held back"))
        out += [_bullet(Text(f"{h.subject} ({h.kind}): {h.reason}")) for h in plan.held_back]
    return out


def _coverage(report: AdviceReport) -> list[RenderableType]:
    """Every statement at reason_min_share of the time or more: its action, or why it has none."""
    if not report.coverage:
        return []
    out: list[RenderableType] = [_heading("Statements by time: action or reason")]
    for c in report.coverage:
        variants = f", {len(c.variants) + 1} variants" if c.variants else ""
        line = Text(f"{c.queryid} ({c.share_of_time:.1%} of the time, {c.calls:,} calls{variants}): ")
        line.append(STATUS_TEXT.get(c.status, c.status), style="bold").append(f": {c.reason}")
        out.append(_bullet(line))
        out.append(_indent(Text(_one_line(c.query), style="dim"), 4))
    return out


def _actions_table(actions: Iterable[Action]) -> Table:
    table = _table(("#", "right"), ("action", "left"), ("index", "left"), ("saves per hour", "right"),
                   ("statements", "right"))
    for a in actions:
        subject = ", ".join([n.label for n in a.creates] or [f"{d} on {a.table}" for d in a.drops])
        served = sum(len(n.statements) for n in a.creates)
        table.add_row(str(a.order), Text(a.action, style=VERB_STYLE.get(a.action, "")), Text(subject),
                      units.duration(a.saved_seconds_per_hour) if a.saved_seconds_per_hour is not None else "-",
                      str(served) if served else "-")
    return table


def _table(*columns: tuple[str, str]) -> Table:
    """Aligned columns without borders; a right-aligned (numeric) column is never wrapped, a text one folds."""
    table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0), header_style="bold")
    for name, justify in columns:
        numeric = justify == "right"
        table.add_column(name, justify="right" if numeric else "left", no_wrap=numeric, overflow="fold")
    return table


def _action(a: Action) -> list[RenderableType]:
    subject = ", ".join([n.label for n in a.creates] or a.drops)
    head = Text(f"\n{a.order}. ", style="bold").append(a.action, style=f"bold {VERB_STYLE.get(a.action, '')}")
    head.append(f" {subject}", style="bold")
    body: list[RenderableType] = [Text(a.reason), _indent(Text("\n".join(a.steps), style="bold"), 2)]
    facts = [("checked", a.checked), ("supersedes", ", ".join(a.supersedes)), ("replaced by", a.replaced_by or ""),
             ("relies on", ", ".join(a.relies_on)),
             ("statements using the dropped index", ", ".join(map(str, a.statements_using)))]
    body.append(_muted(" · ".join(f"{label}: {value}" for label, value in facts if value)))
    for new in a.creates:
        body += _new_index(new)
    return [head, _indent(Group(*body), 3)]


def _new_index(new: NewIndex) -> list[RenderableType]:
    facts = []
    if new.index_size_bytes is not None:
        facts.append(f"size {units.size(new.index_size_bytes)} ({SIZE_SOURCE})")
    if new.saved_seconds_per_hour is not None:
        facts.append(f"saves about {units.duration(new.saved_seconds_per_hour)} per hour "
                     "(calls per hour, times the mean time, times the share of the cost removed)")
    if new.write_overhead_ratio is not None:
        facts.append(f"write overhead {new.write_overhead_ratio:.2f} of each row written: {write_rate(new)}")
    out: list[RenderableType] = [Text(f"new index {new.label}", style="bold")]
    out += [_bullet(Text(f), indent=0) for f in facts]
    if new.why_this_order:
        out.append(_bullet(Text(f"column order: {new.why_this_order}"), indent=0))
    if new.statements:
        out.append(_served(new.statements))
    return out


def _served(statements: Sequence[ServedStatement]) -> RenderableType:
    """The statements it saves most time on: their numbers in one table, their texts in the next."""
    ranked = sorted(statements, key=lambda s: -(s.saved_seconds_per_hour or 0.0))[:SERVED_SHOWN]
    numbers = _table(("queryid", "right"), ("calls", "right"), ("mean", "right"),
                     ("generic-plan cost before → after", "right"), ("saves per hour", "right"))
    texts = _table(("queryid", "right"), ("statement", "left"))
    for st in ranked:
        after = "?" if st.cost_after is None else f"{st.cost_after:,.0f}"
        removed = st.cost_removed_ratio
        cut = "" if removed is None else f" ({units.percent_less(removed)} less)"
        saved = "-" if st.saved_seconds_per_hour is None else units.duration(st.saved_seconds_per_hour)
        numbers.add_row(str(st.queryid), f"{st.calls:,}", units.duration(st.mean_exec_seconds),
                        f"{st.cost_before:,.0f} → {after}{cut}", saved)
        variants = f" (and {len(st.variants)} variant(s): IN lists of other lengths)" if st.variants else ""
        texts.add_row(str(st.queryid), Text(_one_line(st.query) + variants))
    parts: list[RenderableType] = [numbers, texts]
    rest = len(statements) - len(ranked)
    if rest > 0:
        parts.append(_muted(f"and {rest} more statement(s) it serves (each with its plans: --format md)"))
    return Group(*parts)


def _one_line(query: str) -> str:
    flat = " ".join(query.split())
    return flat if len(flat) <= QUERY_CHARS else flat[:QUERY_CHARS] + "…"


def _outcomes(outcomes: Sequence[Outcome]) -> list[RenderableType]:
    if not outcomes:
        return []
    out: list[RenderableType] = [_heading("Outcomes of index changes")]
    for o in outcomes:
        advised = "advised by dbpulse" if o.advised else "not advised by dbpulse"
        out.append(Text(f"{o.index} {o.change} on {o.table}: {o.verdict.replace('_', ' ')} "
                        f"(seen {o.detected_at.replace(microsecond=0).isoformat()}, {advised})"))
        if not o.statements:
            out.append(_muted("  no statement of this table had calls before the change"))
            continue
        table = _table(("queryid", "right"), ("before", "right"), ("after", "right"), ("verdict", "left"),
                       ("statement", "left"))
        for st in o.statements:
            after = ("no calls yet" if not st.after.calls else
                     f"{units.duration(st.after.mean_exec_seconds)} ({st.after.calls:,} calls)")
            table.add_row(str(st.queryid), f"{units.duration(st.before.mean_exec_seconds)} "
                          f"({st.before.calls:,} calls)", after, st.verdict.replace("_", " "),
                          Text(_one_line(st.query)))
        out.append(_indent(table, 2))
    return out


def _findings(report: AdviceReport) -> list[RenderableType]:
    findings = report.ordered_findings()
    if not findings:
        return []
    served = {queryid: a.order for queryid, a in report.plan.served_by().items()}
    out: list[RenderableType] = [_heading(f"Findings ({len(findings)})")]
    for f in findings:
        out += _finding(f, served)
    return out


def _finding(f: Finding, served: dict[int, int]) -> list[RenderableType]:
    subject = f.index or f.table
    head = Text(title(f.kind), style="bold yellow").append(f" {subject}", style="bold")
    if f.columns:
        head.append(f" ({', '.join(f.columns)})")
    if f.index:
        head.append(f" on {f.table}")
    if f.action is not None:  # the plan carries it out: its action has the evidence
        head.append(f": plan action {f.action}", style="green")
        return [head]
    speeding = [(q, served[q]) for q in f.queryids or [] if q in served]
    if f.kind == "slow_statement" and speeding:  # a new index serves it: that action has its plans and numbers
        queryid, order = speeding[0]
        head.append(f": statement {queryid}, served by plan action {order}", style="green")
        return [head]
    body: list[RenderableType] = [Text(f.evidence)]
    facts = [*finding_facts(f), ("queryids", ", ".join(map(str, f.queryids or []))), ("held back:", f.held_back or "")]
    line = " · ".join(f"{label} {value}" for label, value in facts if value)
    if line:
        body.append(_muted(line))
    if f.query:
        body.append(Text(_one_line(f.query)))
    if f.ddl and not f.held_back:
        body.append(Text(f.ddl, style="bold"))
    return [head, _indent(Group(*body), 2)]


def _skipped(report: AdviceReport) -> list[RenderableType]:
    if not report.skipped:
        return []
    out: list[RenderableType] = [_heading(f"Skipped statements ({report.skipped_count})")]
    utility = utility_counts(report.skipped)
    if utility:
        counts = ", ".join(f"{kind} {n}" for kind, n in utility)
        out.append(Text(f"utility statements (no index to advise), by type: {counts}"))
    others = not_planned(report.skipped)
    if others:
        out.append(Text("not planned, so the advice does not cover them:"))
        for sk in others:
            out.append(_bullet(Text(f"{sk.queryid} ({sk.calls:,} calls): {sk.reason}")))
            out.append(_indent(Text(_one_line(sk.query), style="dim"), 4))
    return out
