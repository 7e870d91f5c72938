"""Workload patterns: N+1 lookups and slow statements."""

from __future__ import annotations

from collectors.postgres.statements import StatementStat

from .catalog import Catalog
from .findings import Finding
from .query_analysis import StatementAnalysis
from .settings import Thresholds


def n_plus_one_findings(
    items: list[tuple[StatementStat, StatementAnalysis]], cat: Catalog, settings: Thresholds,
    total_calls: int,
) -> list[Finding]:
    """Very frequent single-row lookups of one table by a primary, unique or foreign key."""
    findings = []
    for stat, analysis in items:
        if analysis.kind != "select" or len(analysis.usages) != 1 or total_calls <= 0:
            continue
        share = stat.calls / total_calls
        if stat.calls < settings.n_plus_one_min_calls or share < settings.n_plus_one_min_share:
            continue
        if stat.rows_per_call > settings.n_plus_one_max_rows_per_call:
            continue
        usage = analysis.usages[0]
        table = cat.table(usage.table)
        if table is None or usage.ranges or usage.joins or usage.in_list or not usage.equality:
            continue
        if any(k.is_expression for k in usage.equality):
            continue
        cols = {k.text for k in usage.equality}
        key_kind, key = None, None
        for candidate in table.unique_keys:
            if set(candidate) == cols:
                key_kind, key = "primary or unique key", candidate
                break
        if key is None:
            for candidate in table.foreign_keys:
                if set(candidate) == cols:
                    key_kind, key = "foreign key", candidate
                    break
        if key is None:
            continue
        findings.append(Finding(
            kind="n_plus_one", table=table.qualified,
            evidence=(f"Statement {stat.queryid} looks up {table.qualified} by its {key_kind} "
                      f"({', '.join(key)}) {stat.calls} times ({100 * share:.0f}% of all calls), "
                      f"{stat.rows_per_call:.2f} rows per call: the signature of a lazy-loaded "
                      f"relationship in a loop. Load it eagerly (selectinload/joinedload) or batch "
                      f"the lookups with = ANY($1)."),
            columns=list(key), queryids=[stat.queryid], calls=stat.calls,
            rows_per_call=round(stat.rows_per_call, 3), share_of_calls=round(share, 4),
            mean_exec_seconds=stat.mean_exec_seconds, benefit=float(stat.calls),
            query=stat.query[:1000],
        ))
    return findings


def slow_findings(
    items: list[tuple[StatementStat, StatementAnalysis | None]], cat: Catalog, settings: Thresholds,
    window: str,
) -> list[Finding]:
    findings = []
    for stat, analysis in items:
        if stat.calls < settings.slow_min_calls or stat.mean_exec_seconds < settings.slow_mean_seconds:
            continue
        table = ""
        for ref in analysis.relations if analysis else []:
            found = cat.table(ref)
            if found is not None:
                table = found.qualified
                break
        findings.append(Finding(
            kind="slow_statement", table=table,
            evidence=(f"Statement {stat.queryid} took {stat.mean_exec_seconds * 1000:.0f} ms per call on "
                      f"average over {stat.calls} calls {window} (threshold "
                      f"{settings.slow_mean_seconds * 1000:.0f} ms)."),
            queryids=[stat.queryid], calls=stat.calls, mean_exec_seconds=stat.mean_exec_seconds,
            rows_per_call=round(stat.rows_per_call, 3), benefit=stat.exec_seconds * 1000,
            query=stat.query[:1000],
        ))
    return findings
