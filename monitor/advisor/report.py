"""Renderers for people and programs: Markdown and JSON (HTML is the templates' job, monitor/web/).

Every name and query text comes from the monitored database and is untrusted:
Markdown puts texts in code spans/fences whose delimiters are longer than any
backtick run inside, and escapes plain text.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from monitor.core import units

from .actions import Action, NewIndex, Plan
from .facts import finding_facts
from .findings import AdviceReport, Finding, Skipped
from .kinds import title
from .outcomes import Outcome

# Keywords of utility statements that name what they act on: "CREATE TABLE", not just "CREATE".
_OBJECT_VERBS = frozenset({"CREATE", "ALTER", "DROP", "COMMENT", "REFRESH", "TRUNCATE"})
_MODIFIERS = frozenset({"OR", "REPLACE", "UNIQUE", "TEMP", "TEMPORARY", "UNLOGGED", "GLOBAL", "LOCAL",
                        "MATERIALIZED", "IF", "NOT", "EXISTS", "CONCURRENTLY", "ON"})


def statement_type(query: str) -> str:
    """A utility statement's type, from its first keywords: ``BEGIN``, ``CREATE TABLE``, ``GRANT``."""
    words = [w.strip("(;").upper() for w in _without_leading_comments(query).split()[:6]]
    if not words or not words[0].isalpha():
        return "other"
    if words[0] not in _OBJECT_VERBS:
        return words[0]
    rest = [w for w in words[1:] if w not in _MODIFIERS]
    kind = " ".join(w for w in words[1:] if w == "MATERIALIZED")
    return " ".join(p for p in (words[0], kind, rest[0] if rest else "") if p)


def _without_leading_comments(query: str) -> str:
    text = query.lstrip()
    while text.startswith(("--", "/*")):
        end = text.find("\n") if text.startswith("--") else text.find("*/")
        text = "" if end < 0 else text[end + (1 if text.startswith("--") else 2):].lstrip()
    return text


def utility_counts(skipped: Iterable[Skipped]) -> list[tuple[str, int]]:
    """Utility statements by type, most first: they need no index, so they are counted, not listed."""
    counts = Counter(statement_type(s.query) for s in skipped if s.category == "utility")
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def not_planned(skipped: Iterable[Skipped]) -> list[Skipped]:
    """Skipped statements that are not utility ones: the advice does not cover them, each is listed."""
    return [s for s in skipped if s.category != "utility"]


SIZE_SOURCE = "HypoPG's estimate; it ignores btree deduplication, so the built index may be smaller"


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _code(text: str) -> str:
    text = text.replace("\n", " ")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    return f"{ticks} {text} {ticks}"


def _md_text(text: str) -> str:
    """Plain text in Markdown: escape characters that would start markup or HTML."""
    return re.sub(r"([\\`*_{}\[\]()#+!|<>&~])", r"\\\1", text.replace("\n", " "))


def _facts(f: Finding) -> list[tuple[str, str]]:
    """The finding's numbers, with its columns first and its statements last (no links in plain text)."""
    out = [("columns", ", ".join(f.columns))] if f.columns else []
    out += finding_facts(f)
    if f.queryids:
        out.append(("queryids", ", ".join(str(q) for q in f.queryids)))
    return out


def _per_hour(seconds: float | None) -> str:
    return "unknown" if seconds is None else f"{units.duration(seconds)} per hour (estimate)"


def write_rate(new: NewIndex) -> str:
    """What the new index adds to the table's writes, in words."""
    if new.table_writes_per_hour is None:
        return "the table's write rate is not known yet (the next advisor run measures it)"
    return (f"{new.table_writes_per_hour:,.0f} inserts + updates per hour on the table, about "
            f"{new.write_overhead_rows_per_hour or 0:,.0f} row-equivalents per hour written to the index")


def _new_index_lines(new: NewIndex) -> list[str]:
    lines = [f"New index {_code(new.label)}:", ""]
    if new.why_this_order:
        lines.append(f"- column order: {_md_text(new.why_this_order)}")
    if new.index_size_bytes is not None:
        lines.append(f"- size: {units.size(new.index_size_bytes)} ({SIZE_SOURCE})")
    if new.write_overhead_ratio is not None:
        lines.append(f"- write overhead: {new.write_overhead_ratio:.2f} of each row written "
                     f"({_md_text(write_rate(new))})")
    lines.append(f"- time saved: {_per_hour(new.saved_seconds_per_hour)}")
    for st in new.statements:
        removed = st.cost_removed_ratio
        lines += ["", f"Statement {_code(str(st.queryid))}: {st.calls} calls, "
                  f"{units.duration(st.mean_exec_seconds)} mean, generic-plan cost {st.cost_before:.0f} -> "
                  f"{'?' if st.cost_after is None else f'{st.cost_after:.0f}'}"
                  f"{'' if removed is None else f' ({units.percent_less(removed)} less)'}, "
                  f"saved {_per_hour(st.saved_seconds_per_hour)}", "", _code(st.query), ""]
        if st.variants:
            lines += [f"- its {len(st.variants)} other variant(s) (IN lists of other lengths, calls added up): "
                      f"{_code(', '.join(map(str, st.variants)))}", ""]
        if st.plan_before:
            lines.append(f"- plan before: {_code(st.plan_before)}")
        if st.plan_after:
            lines.append(f"- plan after: {_code(st.plan_after)}")
        for label, text in (("before", st.plan_before_text), ("after", st.plan_after_text)):
            if text:
                fence = _fence(text)
                lines += ["", f"Full plan {label}:", "", fence, text, fence]
    return lines


def _action_lines(a: Action) -> list[str]:
    lines = [f"### {a.order}. {a.action} on {_code(a.table)}", "", _md_text(a.reason), ""]
    steps = "\n".join(a.steps)
    fence = _fence(steps)
    lines += ["Steps, in this order:", "", f"{fence}sql", steps, fence, ""]
    for label, value in (("supersedes", ", ".join(a.supersedes)), ("replaced by", a.replaced_by or ""),
                         ("relies on", ", ".join(a.relies_on)), ("checked", a.checked),
                         ("statements using the dropped index", ", ".join(map(str, a.statements_using)))):
        if value:
            lines.append(f"- {label}: {_code(value)}")
    lines.append("")
    for new in a.creates:
        lines += [*_new_index_lines(new), ""]
    return lines


def _outcome_lines(o: Outcome) -> list[str]:
    advised = "advised by dbpulse" if o.advised else "not advised by dbpulse"
    lines = [f"### {_code(o.index)} {o.change} on {_code(o.table)}: {o.verdict.replace('_', ' ')}", "",
             f"Seen at {o.detected_at.replace(microsecond=0).isoformat()} ({advised}).", ""]
    for st in o.statements:
        after = ("no calls yet" if not st.after.calls else
                 f"{units.duration(st.after.mean_exec_seconds)} ({st.after.calls} calls)")
        lines.append(f"- {_code(str(st.queryid))}: {units.duration(st.before.mean_exec_seconds)} "
                     f"({st.before.calls} calls) "
                     f"-> {after}: **{st.verdict.replace('_', ' ')}**: {_code(st.query[:120])}")
    if not o.statements:
        lines.append("- no statement of this table had calls before the change")
    return [*lines, ""]


def how_checked(plan: Plan) -> str:
    """How the plan was checked, in words."""
    if plan.checked_as_whole:
        return (f"checked as a whole with HypoPG ({plan.statements_checked} statements planned with every create in "
                f"place); drops checked by {plan.drop_check}")
    return "not checked as a whole (no HypoPG, or its budget ran out): drops checked by the catalog"


def plan_markdown(report: AdviceReport) -> list[str]:
    plan = report.plan
    if not plan.actions and not plan.held_back:
        return []
    lines = ["## Plan", "", f"Run the actions in this order; each is {_md_text(how_checked(plan))}.", ""]
    for a in plan.actions:
        lines += _action_lines(a)
    if plan.held_back:
        lines += ["### Held back", ""]
        for h in plan.held_back:
            when = f"; can be judged from {h.judged_from.replace(microsecond=0).isoformat()}" if h.judged_from else ""
            lines.append(f"- {_code(h.subject)} ({h.kind}): {_md_text(h.reason + when)}")
        lines.append("")
    return lines


STATUS_TEXT = {
    "action": "in the plan", "served": "already served", "below_threshold": "cost removed below the threshold",
    "write_cost": "rejected on write cost", "over_budget": "over the index budget",
    "unplannable": "cannot be planned", "no_candidate": "no candidate",
    "not_costed": "not costed", "not_analyzed": "not analyzed",
}


def coverage_markdown(report: AdviceReport) -> list[str]:
    """Every statement at reason_min_share of the time or more: its action, or why it has none."""
    if not report.coverage:
        return []
    lines = ["## Statements by time: action or reason", ""]
    for c in report.coverage:
        variants = f", {len(c.variants) + 1} variants" if c.variants else ""
        lines.append(f"- {_code(str(c.queryid))} ({c.share_of_time:.1%} of the time, {c.calls:,} calls"
                     f"{variants}): **{STATUS_TEXT.get(c.status, c.status)}**: {_md_text(c.reason)}. "
                     f"{_code(c.query[:200])}")
    return [*lines, ""]


def render_json(report: AdviceReport) -> str:
    return json.dumps(report.to_json_dict(), indent=2, sort_keys=False)


def render_markdown(report: AdviceReport) -> str:
    data: dict[str, Any] = report.to_json_dict()
    lines = [f"# dbpulse index advice: {_md_text(report.target)}", ""]
    lines.append(f"Generated at {data['generated_at']}; time base: {_md_text(report.time_base)}.")
    counts = ", ".join(f"{k}: {v}" for k, v in report.counts_by_kind().items() if v)
    lines += ["", f"Findings: {len(report.findings)} ({counts or 'none'}); "
              f"statements analyzed: {report.statements_analyzed}, skipped: {report.skipped_count}.", ""]
    for note in report.notes:
        lines.append(f"> Note: {_md_text(note)}")
    if report.notes:
        lines.append("")
    lines += plan_markdown(report)
    lines += coverage_markdown(report)
    if report.outcomes:
        lines += ["## Outcomes of index changes", ""]
        for o in report.outcomes:
            lines += _outcome_lines(o)
    if report.findings:
        lines += ["## Findings", ""]
    for n, f in enumerate(report.ordered_findings(), 1):
        subject = f.index or f.table or "statement"
        lines += [f"### {n}. {title(f.kind)}: {_code(subject)}", ""]
        lines += [_md_text(f.evidence), ""]
        if f.table:
            lines.append(f"- table: {_code(f.table)}")
        for label, value in _facts(f):
            lines.append(f"- {label}: {_code(value)}")
        if f.query:
            fence = _fence(f.query)
            lines += ["", f"{fence}sql", f.query, fence]
        if f.parent_queryid is not None:
            lines += ["", f"Once per row of statement {_code(str(f.parent_queryid))}:"]
            if f.parent_query:
                fence = _fence(f.parent_query)
                lines += ["", f"{fence}sql", f.parent_query, fence]
        if f.ddl:
            fence = _fence(f.ddl)
            lines += ["", f"{fence}sql", f.ddl, fence]
        lines.append("")
    if report.skipped:
        lines += ["## Skipped statements", ""]
        utility = utility_counts(report.skipped)
        if utility:
            counts = ", ".join(f"{kind} {n}" for kind, n in utility)
            lines += [f"Utility statements (no index to advise), counted by type: {_md_text(counts)}.", ""]
        for sk in not_planned(report.skipped):
            reason, query = _md_text(sk.reason), _code(sk.query[:200])
            lines.append(f"- {_code(str(sk.queryid))} ({sk.calls} calls): {reason}: {query}")
        lines.append("")
    return "\n".join(lines)
