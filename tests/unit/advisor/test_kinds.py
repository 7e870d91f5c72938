"""The finding-kind registry: every kind has a docs section, and no other kind can be emitted."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.advisor.findings import AdviceReport, Finding
from monitor.advisor.kinds import KINDS, pattern_kinds

DOCS = Path(__file__).resolve().parents[3] / "docs" / "advisor.md"


def anchors(markdown: str) -> set[str]:
    """GitHub-style anchors of the headings: lower case, punctuation but - and _ dropped, spaces to -."""
    out = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, re.MULTILINE):
        out.add(re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-"))
    return out


def test_every_kind_has_its_section_in_the_advisor_docs() -> None:
    missing = {k.name for k in KINDS.values() if k.anchor not in anchors(DOCS.read_text())}
    assert not missing, f"docs/advisor.md has no section for {sorted(missing)}"


def test_a_kind_missing_from_the_registry_cannot_be_emitted() -> None:
    with pytest.raises(ValueError, match=r"not in monitor/advisor/kinds\.py"):
        Finding(kind="missing_idx", table="public.t", evidence="typo")


def test_counts_have_every_registered_kind_and_the_groups_split_them() -> None:
    report = AdviceReport(target="t", generated_at=datetime.now(UTC), stats_reset=None)
    report.findings.append(Finding(kind="slow_statement", table="", evidence="slow"))
    counts = report.counts_by_kind()
    assert list(counts) == list(KINDS) and counts["slow_statement"] == 1 and sum(counts.values()) == 1
    assert set(pattern_kinds()) == {"n_plus_one", "slow_statement", "statement_regression"}
    assert all(k.title and k.meaning for k in KINDS.values())
