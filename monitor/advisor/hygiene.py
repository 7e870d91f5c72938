"""Findings about the indexes that exist: invalid, duplicate, redundant, unused, low-selectivity.

Each index gets at most one of these findings, in that order of precedence: an
invalid index is dropped and rebuilt whatever its scans; a duplicate is
reported as a duplicate even if it is also unused, so the advice reads once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.core import units

from .catalog import Catalog, Index, Table
from .findings import Finding
from .settings import Thresholds


def _age_text(seconds: float | None) -> str:
    if seconds is None:
        return "since statistics collection began (never reset)"
    days = seconds / 86400
    if days >= 1:
        return f"since the statistics reset {days:.1f} days ago"
    return f"since the statistics reset {seconds / 3600:.1f} hours ago"


def _keep_first(a: Index, b: Index) -> tuple[Index, Index]:
    """(keep, drop) among two equivalent indexes: the enforcing one, then more scans, then older."""
    def rank(i: Index) -> tuple[int, int, int]:
        return (0 if i.protected else 1, -i.scans, i.oid)
    return (a, b) if rank(a) <= rank(b) else (b, a)


@dataclass
class _Found:
    """The hygiene findings so far; an index gets one finding at most (the first kind that applies)."""

    cat: Catalog
    findings: list[Finding] = field(default_factory=list)
    reported: set[int] = field(default_factory=set)

    def table_of(self, index: Index) -> Table | None:
        return self.cat.tables.get(index.table_oid)

    def emit(self, index: Index, finding: Finding) -> None:
        self.reported.add(index.oid)
        finding.index = index.qualified
        finding.index_oid = index.oid
        finding.columns = [k.text for k in index.keys]
        finding.index_size_bytes = index.size_bytes
        finding.scans = index.scans
        finding.benefit = float(index.size_bytes) / 1e9  # bigger drops first among hygiene findings
        self.findings.append(finding)


def hygiene_findings(cat: Catalog, settings: Thresholds) -> list[Finding]:
    found = _Found(cat)
    _invalid(found)
    valid = [i for i in cat.indexes if i.is_valid and i.oid not in found.reported and found.table_of(i)]
    _duplicates(found, valid)
    _redundant(found, valid)
    _unused(found, valid, settings)
    _low_selectivity(found, valid, settings)
    return found.findings


def _invalid(found: _Found) -> None:
    for index in found.cat.indexes:
        table = found.table_of(index)
        if table is None or index.is_valid or index.building:
            continue
        found.emit(index, Finding(
            kind="invalid_index", table=table.qualified, table_id=table.id,
            evidence=(f"Index {index.qualified} is invalid (indisvalid = false), most likely left by a "
                      f"failed CREATE INDEX CONCURRENTLY; it is maintained on every write but never "
                      f"used. Drop it, then create it again."),
            ddl=index.drop_ddl(),
        ))


def _duplicates(found: _Found, valid: list[Index]) -> None:
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
            table = found.table_of(index)
            assert table is not None
            found.emit(index, Finding(
                kind="duplicate_index", table=table.qualified, table_id=table.id,
                evidence=(f"Index {index.qualified} has the same columns, predicate and method as "
                          f"{keep.qualified}; it doubles write cost and storage ({units.size(index.size_bytes)}) "
                          f"for nothing."),
                ddl=index.drop_ddl(), duplicate_of=keep.qualified,
            ))


def _redundant(found: _Found, valid: list[Index]) -> None:
    # Compared within a table only: linear in the number of indexes, not quadratic.
    by_table: dict[int, list[Index]] = {}
    for index in valid:
        by_table.setdefault(index.table_oid, []).append(index)
    for index in valid:
        if index.oid in found.reported or index.protected or index.predicate is not None:
            continue
        sig = index.key_signature()
        for other in by_table[index.table_oid]:
            if other is index or other.oid in found.reported:
                continue
            if other.method != index.method or other.method != "btree" or other.predicate is not None:
                continue
            other_sig = other.key_signature()
            if len(other_sig) > len(sig) and other_sig[: len(sig)] == sig and \
                    other.opclasses[: len(sig)] == index.opclasses:
                table = found.table_of(index)
                assert table is not None
                found.emit(index, Finding(
                    kind="redundant_index", table=table.qualified, table_id=table.id,
                    evidence=(f"The columns of {index.qualified} ({', '.join(k.text for k in index.keys)}) "
                              f"are a leading prefix of {other.qualified}, which serves the same lookups."),
                    ddl=index.drop_ddl(), covered_by=other.qualified,
                ))
                break


def _unused(found: _Found, valid: list[Index], settings: Thresholds) -> None:
    cat = found.cat
    age = (cat.now - cat.stats_reset).total_seconds() if cat.now and cat.stats_reset else None
    for index in valid:
        if index.oid in found.reported or not zero_scan_droppable(index, cat, settings):
            continue
        table = found.table_of(index)
        assert table is not None
        found.emit(index, Finding(
            kind="unused_index", table=table.qualified, table_id=table.id,
            evidence=(f"Index {index.qualified} ({units.size(index.size_bytes)}) has not been scanned "
                      f"{_age_text(age)}, while {table.writes} rows were written to {table.qualified}."),
            ddl=index.drop_ddl(),
        ))


def _low_selectivity(found: _Found, valid: list[Index], settings: Thresholds) -> None:
    for index in valid:
        table = found.table_of(index)
        if index.oid in found.reported or table is None:
            continue
        distinct = low_selectivity_distinct(index, table, settings)
        if distinct is None:
            continue
        if len(index.keys) == 1:
            what = f"The leading column {index.keys[0].text} of {index.qualified} has about {distinct:.0f}"
        else:
            what = (f"The key columns ({', '.join(k.text for k in index.keys)}) of {index.qualified} have "
                    f"at most about {distinct:.0f} combinations of")
        found.emit(index, Finding(
            kind="low_selectivity_index", table=table.qualified, table_id=table.id,
            evidence=(f"{what} distinct values over {table.rows:.0f} rows: a lookup on it reads a large share of "
                      f"the table, so the planner rarely wants it ({index.scans} scans). Drop it, or "
                      f"replace it with a partial index on the rare value."),
            ddl=index.drop_ddl(),
        ))


def stats_age_seconds(stats_reset: datetime | None, now: datetime | None) -> float | None:
    return (now - stats_reset).total_seconds() if stats_reset and now else None


def stats_old_enough(cat: Catalog, settings: Thresholds) -> bool:
    """Statistics cover the unused-index window (an unknown age, never reset, is accepted)."""
    age = stats_age_seconds(cat.stats_reset, cat.now)
    return age is None or age >= settings.unused_min_stats_age_seconds


def zero_scan(index: Index, settings: Thresholds) -> bool:
    """Never scanned, droppable, and big enough to mention; says nothing about the statistics' age."""
    return (index.is_valid and not index.building and not index.protected and index.scans == 0
            and index.size_bytes >= settings.unused_min_size_bytes)


def index_age_seconds(index: Index, cat: Catalog) -> float | None:
    """How long the index is known to have existed (None: unknown)."""
    return stats_age_seconds(index.known_since, cat.now)


def index_old_enough(index: Index, cat: Catalog, settings: Thresholds) -> bool:
    """The index has existed for the whole unused window: zero scans over a shorter life prove nothing, and
    an index the advisor just advised must not be called unused by the next report."""
    age, window = index_age_seconds(index, cat), settings.unused_min_stats_age_seconds
    return window <= 0 or (age is not None and age >= window)


def zero_scan_droppable(index: Index, cat: Catalog, settings: Thresholds) -> bool:
    """Unused: never scanned over statistics old enough to tell, and the index is that old too."""
    return zero_scan(index, settings) and stats_old_enough(cat, settings) and index_old_enough(index, cat, settings)


def young_zero_scan(cat: Catalog, settings: Thresholds) -> list[tuple[Index, str, datetime | None]]:
    """Zero-scan indexes that are not called unused because they, or the statistics, are younger than the
    window: (index, why, the date they can be judged; None when no date can be given)."""
    out: list[tuple[Index, str, datetime | None]] = []
    window = settings.unused_min_stats_age_seconds
    for index in cat.indexes:
        if index.table_oid not in cat.tables or not zero_scan(index, settings) or zero_scan_droppable(
                index, cat, settings):
            continue
        stats_age = stats_age_seconds(cat.stats_reset, cat.now)
        age = index_age_seconds(index, cat)
        since = [t for t in (cat.stats_reset, index.known_since or cat.now) if t is not None]
        ready = max(since) + timedelta(seconds=window) if since else None
        if age is None:
            how = ("its age is unknown: track_commit_timestamp is off, so a one-shot run cannot tell when it was "
                   "created (the service judges it once it has seen it for the window; or turn "
                   "track_commit_timestamp on)")
        elif age < window:
            how = f"it has existed for only {units.duration(age)} as far as dbpulse can tell"
        else:
            how = f"statistics are {units.duration(stats_age or 0)} old"
        out.append((index, f"not called unused: {how}, under the {units.duration(window)} unused window; zero scans "
                           "over a shorter time prove nothing", ready))
    return out


def low_selectivity_distinct(index: Index, table: Table, settings: Thresholds) -> float | None:
    """The distinct key combinations of a low-selectivity index, None when it is selective or unknown.

    A composite is judged by all its columns: the product of the columns' distinct values (an upper
    bound of the combinations, capped at the table's rows) must stay under the threshold, so
    ``(estado, fecha)`` with 4 states and many dates is selective even though ``estado`` is not.
    """
    if index.protected or index.predicate is not None or not index.keys or index.method != "btree":
        return None
    if table.rows < settings.low_selectivity_min_rows:
        return None
    combinations = 1.0
    for key in index.keys:
        distinct = None if key.is_expression else table.distinct_values(key.text)
        if distinct is None:
            return None
        combinations *= max(distinct, 1.0)
    combinations = min(combinations, table.rows)
    return combinations if combinations <= settings.low_selectivity_max_distinct else None


def unused_held_back_note(cat: Catalog, settings: Thresholds) -> str | None:
    """What the unused-index check would look at once the statistics are old enough, and from when."""
    age = stats_age_seconds(cat.stats_reset, cat.now)
    if age is None or cat.stats_reset is None or age >= settings.unused_min_stats_age_seconds:
        return None
    waiting = sorted(i.qualified for i in cat.indexes if i.table_oid in cat.tables and zero_scan(i, settings))
    ready = cat.stats_reset + timedelta(seconds=settings.unused_min_stats_age_seconds)
    names = ", ".join(waiting[:5]) + (f" and {len(waiting) - 5} more" if len(waiting) > 5 else "")
    found = f"{len(waiting)} zero-scan index(es) wait for it ({names})" if waiting else "no index has zero scans yet"
    return (f"unused_index held back: statistics are {units.duration(age)} old, under the "
            f"{units.duration(settings.unused_min_stats_age_seconds)} window; {found}. They can be judged from "
            f"{ready.replace(microsecond=0).isoformat()}; to judge earlier, lower unused_min_stats_age_seconds.")
