"""The ``advisor`` section: when the advisor runs, and every threshold it judges by.

``Thresholds`` is one frozen object shared by a run (``dbpulse advise`` sets it
from flags, the service from ``advisor.thresholds``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from collectors.base.settings import Strict, default_timeout, timeout_below_interval


class Thresholds(Strict):
    # session bounds
    statement_timeout_seconds: float = Field(10.0, gt=0, description="statement_timeout of the advisor's session")
    max_statements: int = Field(5000, ge=1, description="heaviest statements read from pg_stat_statements per run")

    # missing_index
    min_table_rows: int = Field(10_000, ge=0, description="smaller tables get no index advice")
    max_index_columns: int = Field(3, ge=1, le=32)
    min_improvement_ratio: float = Field(0.2, ge=0, le=1, description="an index must cut its statements' cost by this")
    write_penalty_per_row: float = Field(0.5, ge=0, description="cost units per inserted or updated row per new index"
                                         " entry: an index must save more per hour than this costs")
    size_penalty_per_page: float = Field(0.01, ge=0, description="cost units charged per 8 kB page of the index")
    max_candidates_per_table: int = Field(10, ge=1, description="costed with HypoPG, most promising first")
    max_statements_per_candidate: int = Field(20, ge=1, description="heaviest statements a candidate is costed on")
    rescored_candidates: int = Field(8, ge=0, description="runners-up costed again on top of each kept index")
    prefer_smaller_within: float = Field(0.05, ge=0, le=1, description="a candidate whose gain is this close to "
                                         "the best one's and whose btree (deduplicated) is smaller is kept instead")
    index_budget_mb: float = Field(0.0, ge=0, description="the new indexes' total estimated size at most, in MB "
                                   "(0: no limit); what does not fit is chosen again by cost removed per byte")
    verification_max_explains: int = Field(2000, ge=0)
    verification_max_seconds: float = Field(30.0, ge=0)
    use_hypopg: bool = True
    heuristic_max_per_table: int = Field(3, ge=1, description="without HypoPG: advised indexes per table at most, "
                                         "those whose statements take the most time")

    reason_min_share: float = Field(0.01, ge=0, le=1, description="a statement with this share of the statement "
                                    "time gets an action or a stated reason in the report")
    coverage_max_explains: int = Field(1000, ge=0, description="EXPLAINs for planning statements no candidate "
                                       "needed, so unplannable ones are counted")

    # the plan: the final index set checked as a whole
    plan_check_max_explains: int = Field(400, ge=0, description="EXPLAINs for checking the plan as a whole")
    plan_drop_max_cost_increase: float = Field(
        0.1, ge=0, description="with hypopg_hide_index: a drop may raise a statement's cost by this fraction")

    # skew: a parameter on a column with rare values (pg_stats most_common_vals)
    skew_rare_max_fraction: float = Field(0.05, ge=0, le=1,
                                          description="a value on at most this share of the rows is rare")
    skew_min_share: float = Field(0.5, ge=0, le=1, description="a rare value dominates at this share of the calls")

    # unused_index
    unused_min_stats_age_seconds: float = Field(7 * 86400.0, ge=0,
                                                description="statistics younger than this prove nothing")
    unused_min_size_bytes: int = Field(0, ge=0)

    # low_selectivity_index
    low_selectivity_max_distinct: float = Field(10.0, ge=0)
    low_selectivity_min_rows: int = Field(10_000, ge=0)

    # n_plus_one
    n_plus_one_min_calls: int = Field(1000, ge=1)
    n_plus_one_min_share: float = Field(0.05, ge=0, le=1, description="of all calls in the window")
    n_plus_one_max_rows_per_call: float = Field(2.0, ge=0)
    n_plus_one_min_loop: float = Field(2.0, ge=1, description="child calls per call of its parent statement")
    n_plus_one_min_rows_followed: float = Field(0.5, gt=0, le=1, description="child calls per row its parent "
                                                "returned, unless the pair recurs at the same rate")
    n_plus_one_rate_tolerance: float = Field(0.25, ge=0, description="the same rate: child calls per parent call "
                                             "within this fraction of the previous window's")

    # slow_statement
    slow_mean_seconds: float = Field(0.5, ge=0)
    slow_min_calls: int = Field(1, ge=1)

    # outcomes (the service only: it keeps statement windows across runs)
    outcome_windows: int = Field(12, ge=2, description="advisor windows kept per statement")
    outcome_baseline_windows: int = Field(3, ge=1, description="windows before an index change that make its baseline")
    outcome_follow_seconds: float = Field(3600.0, ge=0, description="windows after a change are added for this long")
    outcome_keep_seconds: float = Field(86400.0, ge=0, description="an outcome is reported for this long")
    outcome_min_calls: int = Field(5, ge=1, description="calls before and after to judge a statement")
    outcome_min_delta_seconds: float = Field(0.0005, ge=0, description="smaller mean-time changes are noise")
    outcome_improvement_ratio: float = Field(0.8, gt=0, le=1, description="after/before mean time at most this")
    outcome_regression_ratio: float = Field(1.5, ge=1, description="after/before mean time at least this")

    # statement_regression against a statement's own baseline
    regression_factor: float = Field(3.0, ge=1, description="mean time this many times its baseline's median")
    regression_min_windows: int = Field(3, ge=1, description="earlier windows needed for a baseline")
    regression_min_calls: int = Field(10, ge=1, description="calls a window needs to count")


class AdvisorSettings(Strict):
    """The index advisor in the service: one run per PostgreSQL target every ``interval``."""

    enabled: bool = True
    interval: float = Field(300.0, ge=1, description="seconds between advisor runs")
    timeout: float | None = Field(None, gt=0, description="seconds a run may take; default min(120, 80% of interval)")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    state_dir: Path | None = Field(None, description="directory of the advisor's durable state (advisor.sqlite3): "
                                   "index changes, outcomes' before figures, advice history; unset: memory only")
    state_fallback: Literal["fail", "memory"] = Field(
        "fail", description="when state_dir cannot be used: fail (dbpulse does not start) or memory (a warning)")

    run_in_child: bool = Field(True, description="each run in a short-lived child process (fork), so its working "
                               "set (30-40 MiB at 10,000 statements) goes back to the system when it ends; false: "
                               "in a thread of the service (where fork is missing, always)")

    _timeout = field_validator("timeout")(timeout_below_interval)

    @property
    def effective_timeout(self) -> float:
        return self.timeout if self.timeout is not None else min(120.0, default_timeout(self.interval))

    def run_thresholds(self) -> Thresholds:
        """The thresholds, with the session and the what-if budget fitted inside the run's timeout
        unless they were set explicitly."""
        t, half = self.thresholds, self.effective_timeout / 2
        bounded: dict[str, float] = {}
        if "statement_timeout_seconds" not in t.model_fields_set:
            bounded["statement_timeout_seconds"] = min(t.statement_timeout_seconds, half)
        if "verification_max_seconds" not in t.model_fields_set:
            bounded["verification_max_seconds"] = min(t.verification_max_seconds, half)
        return t.model_copy(update=bounded)
