"""One thing in a snapshot that needs attention, worst first on the main page's summary.

PostgreSQL's are found by ``collectors/postgres/triage.py``; a source's spec says where its own are.
"""

from __future__ import annotations

from dataclasses import dataclass

SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Attention:
    severity: str  # critical | warning | info
    area: str  # replication, vacuum, locks, wal, sequences, bloat, activity, access
    subject: str  # what it is about (a standby, a slot, a table, ...), untrusted text
    problem: str
    value: float | None = None
    unit: str = ""  # bytes | seconds | ratio | count | "" (no value)
    limit: float | None = None  # the threshold it crossed
    advice: str = ""
    query: str = ""  # a statement it is about (a blocker's), untrusted text

    @property
    def score(self) -> float:
        """How far past its threshold; orders items of one severity."""
        if self.value is None or not self.limit:
            return 0.0
        return self.value / self.limit

