"""What one advisor run carries from step to step (``Advisor._run``: read → analyze → candidates → verify →
plan → patterns → outcomes). Each step reads the fields the earlier ones set and writes its own notes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from collectors.postgres.statements import StatementStat

from .candidates import Candidate, Workload
from .catalog import Catalog
from .findings import AdviceReport, VerificationStats
from .query_analysis import StatementAnalysis
from .rates import Rates
from .selection import Selection
from .settings import Thresholds
from .validate import Refused
from .variants import StatementVariants
from .whatif import WhatIf


@dataclass
class RunContext:
    conn: psycopg.Connection[Any]
    cat: Catalog
    settings: Thresholds
    report: AdviceReport
    # read: pg_stat_statements (None: not readable), grouped by fingerprint, and the window since the last run
    statements: list[StatementStat] | None = None
    statements_reset: datetime | None = None
    first_run: bool = True
    variants: StatementVariants = field(default_factory=StatementVariants)
    current: list[StatementStat] = field(default_factory=list)
    window_stats: list[StatementStat] = field(default_factory=list)
    no_drops: tuple[str, datetime | None] | None = None
    # analyze: the app's statements that parsed, and the workload they form
    items: list[tuple[StatementStat, StatementAnalysis]] = field(default_factory=list)
    by_id: dict[int, StatementAnalysis] = field(default_factory=dict)
    workload: Workload = field(default_factory=lambda: Workload([]))
    unplannable: dict[int, str] = field(default_factory=dict)  # queryid -> why it cannot be planned
    rates: Rates = field(default_factory=Rates)
    # candidates, verify
    candidates: list[Candidate] = field(default_factory=list)
    refused: Refused = field(default_factory=Refused)
    selection: Selection = field(default_factory=Selection)
    whatif: WhatIf | None = None  # HypoPG's session, reset when the plan is built
    stats: VerificationStats = field(default_factory=VerificationStats)
    cover_explains: int = 0
