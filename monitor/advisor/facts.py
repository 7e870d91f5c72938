"""A finding's numbers, formatted once for every place that shows them: the terminal, the Markdown and HTML
reports, and the web UI. Columns and queryids are left to each renderer (a title, links)."""

from __future__ import annotations

from monitor.core import units

from .findings import Finding


def finding_facts(f: Finding) -> list[tuple[str, str]]:
    """(label, value) pairs in reading order; a fact the finding does not have is left out."""
    facts: list[tuple[str, str]] = []
    for label, text in (("verified", f.verified), ("duplicate of", f.duplicate_of), ("covered by", f.covered_by)):
        if text:
            facts.append((label, text))
    if f.cost_before is not None and f.cost_after is not None:
        facts.append(("weighted cost", f"{units.num(f.cost_before)} → {units.num(f.cost_after)}"))
    numbers = (
        ("calls", f.calls, units.num),
        ("mean", f.mean_exec_seconds, units.duration),
        ("rows per call", f.rows_per_call, lambda v: units.num(v, 2)),
        ("share of calls", f.share_of_calls, units.ratio),
        ("index size", f.index_size_bytes, units.bytes_),
        ("scans", f.scans, units.num),
    )
    facts += [(label, show(value)) for label, value, show in numbers if value is not None]
    return facts
