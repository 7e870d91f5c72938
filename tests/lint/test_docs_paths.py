"""Every file or folder of the repository that the docs cite exists (docs/benchmarks.md once cited a
`monitor/exporter.py` that never did)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP = ("monitor", "collectors", "tests", "bench", "rules", "dashboards", "deploy", "demo", "harness", "scripts",
       "examples", "docs")
# A repository path: one of the top folders at the start of a word (not inside /var/lib/grafana/dashboards/...).
CITED = re.compile(r"(?<![\w/.~-])((?:" + "|".join(TOP) + r")/[\w./-]*[\w/])")


def cited_paths(text: str) -> set[str]:
    return {p for p in CITED.findall(text) if not re.search(r"[<>*{}]", p)}


def test_the_pattern_finds_repository_paths_only() -> None:
    text = "see `monitor/web/exposition.py`, docs/runbook.md, and /var/lib/grafana/dashboards/dbpulse or ~/docs/x"
    assert cited_paths(text) == {"monitor/web/exposition.py", "docs/runbook.md"}


def test_every_cited_path_exists() -> None:
    missing = {f"{doc.relative_to(ROOT)}: {path}" for doc in DOCS
               for path in cited_paths(doc.read_text()) if not (ROOT / path).exists()}
    assert not missing, sorted(missing)
