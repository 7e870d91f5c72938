"""Findings about the indexes that exist: invalid, duplicate, redundant, unused, low-selectivity.

Each index gets at most one of these findings, in that order of precedence: an
invalid index is dropped and rebuilt whatever its scans; a duplicate is
reported as a duplicate even if it is also unused, so the advice reads once.
"""

from __future__ import annotations

from datetime import datetime

from .catalog import Catalog, Index, Table
from .ddl import drop_index
from .findings import Finding
from .settings import Thresholds


def _age_text(seconds: float | None) -> str:
    if seconds is None:
        return "since statistics collection began (never reset)"
    days = seconds / 86400
    if days >= 1:
        return f"since the statistics reset {days:.1f} days ago"
    return f"since the statistics reset {seconds / 3600:.1f} hours ago"


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]
    return f"{n} B"


def _keep_first(a: Index, b: Index) -> tuple[Index, Index]:
    """(keep, drop) among two equivalent indexes: the enforcing one, then more scans, then older."""
    def rank(i: Index) -> tuple[int, int, int]:
        return (0 if i.protected else 1, -i.scans, i.oid)
    return (a, b) if rank(a) <= rank(b) else (b, a)


def hygiene_findings(cat: Catalog, settings: Thresholds) -> list[Finding]:
    findings: list[Finding] = []
    reported: set[int] = set()
    age = (cat.now - cat.stats_reset).total_seconds() if cat.now and cat.stats_reset else None

    def table_of(index: Index) -> Table | None:
        return cat.tables.get(index.table_oid)

    def emit(index: Index, finding: Finding) -> None:
        reported.add(index.oid)
        finding.index = index.qualified
        finding.columns = [k.text for k in index.keys]
        finding.index_size_bytes = index.size_bytes
        finding.scans = index.scans
        finding.benefit = float(index.size_bytes) / 1e9  # bigger drops first among hygiene findings
        findings.append(finding)

    for index in cat.indexes:
        table = table_of(index)
        if table is None or index.is_valid or index.building:
            continue
        emit(index, Finding(
            kind="invalid_index", table=table.qualified,
            evidence=(f"Index {index.qualified} is invalid (indisvalid = false), most likely left by a "
                      f"failed CREATE INDEX CONCURRENTLY; it is maintained on every write but never "
                      f"used. Drop it, then create it again."),
            ddl=drop_index(index.schema, index.name),
        ))

    valid = [i for i in cat.indexes if i.is_valid and i.oid not in reported and table_of(i)]
    groups: dict[tuple[object, ...], list[Index]] = {}
    for index in valid:
        group_key = (index.table_oid, index.method, index.key_signature(), index.opclasses,
               index.collations, index.predicate or "")
        groups.setdefault(group_key, []).append(index)
    for members in groups.values():
        if len(members) < 2:
            continue
        keep = members[0]
        for other in members[1:]:
            keep, _ = _keep_first(keep, other)
        for index in members:
            if index is keep or (index.protected and keep.protected):
                continue
            if index.constraint_backed:
                continue
            table = table_of(index)
            assert table is not None
            emit(index, Finding(
                kind="duplicate_index", table=table.qualified,
                evidence=(f"Index {index.qualified} has the same columns, predicate and method as "
                          f"{keep.qualified}; it doubles write cost and storage ({_size(index.size_bytes)}) "
                          f"for nothing."),
                ddl=drop_index(index.schema, index.name), duplicate_of=keep.qualified,
            ))

    # Compared within a table only: linear in the number of indexes, not quadratic.
    by_table: dict[int, list[Index]] = {}
    for index in valid:
        by_table.setdefault(index.table_oid, []).append(index)
    for index in valid:
        if index.oid in reported or index.protected or index.predicate is not None:
            continue
        sig = index.key_signature()
        for other in by_table[index.table_oid]:
            if other is index or other.oid in reported:
                continue
            if other.method != index.method or other.method != "btree" or other.predicate is not None:
                continue
            other_sig = other.key_signature()
            if len(other_sig) > len(sig) and other_sig[: len(sig)] == sig and \
                    other.opclasses[: len(sig)] == index.opclasses:
                table = table_of(index)
                assert table is not None
                emit(index, Finding(
                    kind="redundant_index", table=table.qualified,
                    evidence=(f"The columns of {index.qualified} ({', '.join(k.text for k in index.keys)}) "
                              f"are a leading prefix of {other.qualified}, which serves the same lookups."),
                    ddl=drop_index(index.schema, index.name), covered_by=other.qualified,
                ))
                break

    old_enough = age is None or age >= settings.unused_min_stats_age_seconds
    for index in valid:
        if index.oid in reported or index.protected or index.scans > 0 or not old_enough:
            continue
        if index.size_bytes < settings.unused_min_size_bytes:
            continue
        table = table_of(index)
        assert table is not None
        emit(index, Finding(
            kind="unused_index", table=table.qualified,
            evidence=(f"Index {index.qualified} ({_size(index.size_bytes)}) has not been scanned "
                      f"{_age_text(age)}, while {table.writes} rows were written to {table.qualified}."),
            ddl=drop_index(index.schema, index.name),
        ))

    for index in valid:
        table = table_of(index)
        if index.oid in reported or table is None or index.protected or index.predicate is not None:
            continue
        lead = index.keys[0] if index.keys else None
        if lead is None or lead.is_expression or table.rows < settings.low_selectivity_min_rows:
            continue
        distinct = table.distinct_values(lead.text)
        if distinct is None or distinct > settings.low_selectivity_max_distinct:
            continue
        emit(index, Finding(
            kind="low_selectivity_index", table=table.qualified,
            evidence=(f"The leading column {lead.text} of {index.qualified} has about {distinct:.0f} "
                      f"distinct values over {table.rows:.0f} rows: a lookup on it reads a large share of "
                      f"the table, so the planner rarely wants it ({index.scans} scans). Drop it, or "
                      f"replace it with a partial index on the rare value."),
            ddl=drop_index(index.schema, index.name),
        ))
    return findings


def stats_age_seconds(stats_reset: datetime | None, now: datetime | None) -> float | None:
    return (now - stats_reset).total_seconds() if stats_reset and now else None
