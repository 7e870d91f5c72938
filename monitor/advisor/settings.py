"""Every advisor threshold, with defaults; one frozen object shared by a run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AdvisorSettings:
    # scheduling (used by the service) and session bounds
    interval_seconds: float = 300.0
    statement_timeout_seconds: float = 10.0
    max_statements: int = 5000  # heaviest statements read from pg_stat_statements per run

    # missing_index
    min_table_rows: int = 10_000  # smaller tables get no index advice
    max_index_columns: int = 3
    min_improvement_ratio: float = 0.2  # an index must cut its statements' cost by 20 %
    write_penalty_per_row: float = 0.5  # cost units charged per written row per extra index
    size_penalty_per_page: float = 0.01  # cost units charged per 8 kB page of the index
    max_candidates_per_table: int = 10  # costed with HypoPG, most promising first
    max_statements_per_candidate: int = 20  # heaviest statements a candidate is costed against
    rescored_candidates: int = 8  # runners-up costed again on top of each kept index
    verification_max_explains: int = 2000
    verification_max_seconds: float = 30.0
    use_hypopg: bool = True

    # unused_index
    unused_min_stats_age_seconds: float = 7 * 86400.0  # statistics younger than this prove nothing
    unused_min_size_bytes: int = 0

    # low_selectivity_index
    low_selectivity_max_distinct: float = 10.0
    low_selectivity_min_rows: int = 10_000

    # n_plus_one
    n_plus_one_min_calls: int = 1000
    n_plus_one_min_share: float = 0.05  # of all calls in the window
    n_plus_one_max_rows_per_call: float = 2.0

    # slow_statement
    slow_mean_seconds: float = 0.5
    slow_min_calls: int = 1
