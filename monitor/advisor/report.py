"""Renderers for people: Markdown and a standalone HTML page (no external assets).

Every name and query text comes from the monitored database and is untrusted:
HTML escapes everything with ``html.escape``; Markdown puts texts in code
spans/fences whose delimiters are longer than any backtick run inside.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from .findings import AdviceReport, Finding

_TITLES = {
    "missing_index": "Missing index",
    "n_plus_one": "N+1 query pattern",
    "slow_statement": "Slow statement",
    "invalid_index": "Invalid index",
    "duplicate_index": "Duplicate index",
    "redundant_index": "Redundant index",
    "unused_index": "Unused index",
    "low_selectivity_index": "Low-selectivity index",
}


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
    out: list[tuple[str, str]] = []
    if f.columns:
        out.append(("columns", ", ".join(f.columns)))
    for label, value in (
        ("verified", f.verified), ("duplicate of", f.duplicate_of), ("covered by", f.covered_by),
    ):
        if value:
            out.append((label, value))
    if f.cost_before is not None and f.cost_after is not None:
        out.append(("weighted cost", f"{f.cost_before:.0f} -> {f.cost_after:.0f}"))
    if f.index_size_bytes is not None:
        out.append(("index size", f"{f.index_size_bytes} bytes"))
    if f.calls is not None:
        out.append(("calls", str(f.calls)))
    if f.rows_per_call is not None:
        out.append(("rows per call", f"{f.rows_per_call:.2f}"))
    if f.mean_exec_seconds is not None:
        out.append(("mean time", f"{f.mean_exec_seconds * 1000:.1f} ms"))
    if f.queryids:
        out.append(("queryids", ", ".join(str(q) for q in f.queryids)))
    return out


def render_json(report: AdviceReport) -> str:
    return json.dumps(report.to_json_dict(), indent=2, sort_keys=False)


def render_markdown(report: AdviceReport) -> str:
    data: dict[str, Any] = report.to_json_dict()
    lines = [f"# dbpulse index advice: {_md_text(report.target)}", ""]
    lines.append(f"Generated at {data['generated_at']}; statistics reset: {data['stats_reset'] or 'never'}.")
    counts = ", ".join(f"{k}: {v}" for k, v in report.counts_by_kind().items() if v)
    lines += ["", f"Findings: {len(report.findings)} ({counts or 'none'}); "
              f"statements analyzed: {report.statements_analyzed}, skipped: {report.skipped_count}.", ""]
    for note in report.notes:
        lines.append(f"> Note: {_md_text(note)}")
    if report.notes:
        lines.append("")
    for n, f in enumerate(report.ordered_findings(), 1):
        subject = f.index or f.table or "statement"
        lines += [f"## {n}. {_TITLES.get(f.kind, f.kind)}: {_code(subject)}", ""]
        lines += [_md_text(f.evidence), ""]
        if f.table:
            lines.append(f"- table: {_code(f.table)}")
        for label, value in _facts(f):
            lines.append(f"- {label}: {_code(value)}")
        if f.query:
            fence = _fence(f.query)
            lines += ["", f"{fence}sql", f.query, fence]
        if f.ddl:
            fence = _fence(f.ddl)
            lines += ["", f"{fence}sql", f.ddl, fence]
        lines.append("")
    if report.skipped:
        lines += ["## Skipped statements", ""]
        for sk in report.skipped:
            reason, query = _md_text(sk.reason), _code(sk.query[:200])
            lines.append(f"- {_code(str(sk.queryid))} ({sk.calls} calls): {reason}: {query}")
        lines.append("")
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
.kind{display:inline-block;padding:.1rem .5rem;border-radius:.3rem;background:#eef;font-size:.85rem}
pre{background:#f6f6f6;padding:.6rem;overflow-x:auto;white-space:pre-wrap}
table{border-collapse:collapse}td,th{padding:.2rem .6rem;border-bottom:1px solid #ddd;text-align:left}
.note{background:#fff6e0;padding:.4rem .8rem;border-left:4px solid #e0a000}
"""


def render_html(report: AdviceReport) -> str:
    e = html.escape
    data: dict[str, Any] = report.to_json_dict()
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>dbpulse index advice: {e(report.target)}</title><style>{_CSS}</style></head><body>",
        f"<h1>dbpulse index advice: {e(report.target)}</h1>",
        f"<p>Generated at {e(data['generated_at'])}; statistics reset: {e(data['stats_reset'] or 'never')}. "
        f"Statements analyzed: {report.statements_analyzed}, skipped: {report.skipped_count}.</p>",
        "<table><tr><th>kind</th><th>findings</th></tr>",
        *(f"<tr><td>{e(k)}</td><td>{v}</td></tr>" for k, v in report.counts_by_kind().items()),
        "</table>",
        *(f'<p class="note">{e(n)}</p>' for n in report.notes),
    ]
    for n, f in enumerate(report.ordered_findings(), 1):
        subject = f.index or f.table or "statement"
        parts.append(f'<section><h2>{n}. <span class="kind">{e(f.kind)}</span> {e(subject)}</h2>')
        parts.append(f"<p>{e(f.evidence)}</p><table>")
        if f.table:
            parts.append(f"<tr><th>table</th><td>{e(f.table)}</td></tr>")
        parts += [f"<tr><th>{e(label)}</th><td>{e(value)}</td></tr>" for label, value in _facts(f)]
        parts.append("</table>")
        if f.query:
            parts.append(f"<pre><code>{e(f.query)}</code></pre>")
        if f.ddl:
            parts.append(f"<pre><code>{e(f.ddl)}</code></pre>")
        parts.append("</section>")
    if report.skipped:
        parts.append("<h2>Skipped statements</h2><table><tr><th>queryid</th><th>calls</th><th>reason</th>"
                     "<th>query</th></tr>")
        parts += [
            f"<tr><td>{e(str(sk.queryid))}</td><td>{sk.calls}</td><td>{e(sk.reason)}</td>"
            f"<td><code>{e(sk.query[:300])}</code></td></tr>"
            for sk in report.skipped
        ]
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
