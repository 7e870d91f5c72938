"""Safety rules checked on the whole plan: what it must never drop, whatever a finding says.

1. **Blind**: no drop while the advisor cannot see what uses an index: statement texts hidden from the role
   (no ``pg_read_all_stats``), ``pg_stat_statements`` unreadable, or statistics younger than the unused
   window. An invalid index is the exception: no plan can use it.
2. **Foreign keys**: never leave the referencing columns of a foreign key without an index that leads with
   them when one exists today (deleting or updating a referenced row would scan the table).
3. **Statements**: never drop an index that a statement's plan uses unless an index that stays serves its
   lookups (``plan.py``: with HypoPG on the plans with every create in place, otherwise on the plans with
   the real indexes).

``plan.py`` applies them and holds back what they keep, with the reason; a held-back finding loses its DDL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from monitor.core import units

from .candidates import Candidate
from .catalog import Catalog, Index, Table, key_signature
from .settings import Thresholds


def drops_blocked(cat: Catalog, settings: Thresholds, statements_reset: datetime | None,
                  statements_readable: bool) -> tuple[str, datetime | None] | None:
    """Why no index may be dropped in this run, and from when that can change (None: drops may go ahead)."""
    reasons: list[str] = []
    ready: datetime | None = None
    if not statements_readable:
        reasons.append("pg_stat_statements is not readable, so which statements use an index is unknown")
    elif not cat.reads_all_stats:
        reasons.append("the advisor's role lacks pg_read_all_stats, so the statement texts of other roles are "
                       "hidden and which statements use an index is unknown (GRANT pg_read_all_stats TO the role)")
    window = settings.unused_min_stats_age_seconds
    for what, since in (("the statistics were", cat.stats_reset), ("pg_stat_statements was", statements_reset)):
        if since is not None and cat.now is not None and (cat.now - since).total_seconds() < window:
            age = (cat.now - since).total_seconds()
            reasons.append(f"{what} reset {units.duration(age)} ago, under the {units.duration(window)} window, so a "
                           "statement that runs less often may not be seen yet")
            ready = max(ready or since, since + timedelta(seconds=window))
    if not reasons:
        return None
    return "; ".join(reasons), ready


def leads_with(index: Index, columns: Sequence[str]) -> bool:
    """A valid, non-partial btree whose first keys are ``columns`` in any order."""
    if not index.is_valid or index.predicate is not None or index.method != "btree":
        return False
    lead = index.key_signature()[: len(columns)]
    return len(lead) == len(columns) and set(lead) == {f"c:{c}" for c in columns}


def _created_leads_with(cand: Candidate, columns: Sequence[str]) -> bool:
    lead = [key_signature(k) for k, _ in cand.keys][: len(columns)]
    return (cand.predicate is None and cand.method == "btree" and len(lead) == len(columns)
            and set(lead) == {f"c:{c}" for c in columns})


def foreign_key_keeps(dropped: Sequence[Index], relied_on: dict[str, int], created: Sequence[Candidate],
                      cat: Catalog) -> list[tuple[Index, str]]:
    """The drops to hold back so that every foreign key that has a leading index today keeps one.

    ``relied_on`` counts, per index name, the other drops that rely on it (a redundant index on its cover):
    keeping that one keeps their reasoning true, so it is kept first; then a drop that stands on its own."""
    keep: list[tuple[Index, str]] = []
    gone = {i.oid for i in dropped}
    for table in cat.tables.values():
        for fk in table.foreign_keys:
            serving = [i for i in cat.indexes_of(table) if leads_with(i, fk)]
            if not serving or any(i.oid not in gone for i in serving) or any(
                    c.table.oid == table.oid and _created_leads_with(c, fk) for c in created):
                continue
            chosen = min(serving, key=lambda i: (-relied_on.get(i.qualified, 0), i.size_bytes, i.qualified))
            gone.discard(chosen.oid)
            keep.append((chosen, _fk_reason(table, fk, serving)))
    return keep


def _fk_reason(table: Table, fk: Sequence[str], serving: Sequence[Index]) -> str:
    cols = ", ".join(fk)
    names = ", ".join(i.qualified for i in serving)
    return (f"not dropped: it is kept as the index that leads with the foreign key {table.qualified} ({cols}) "
            f"(today: {names}); without one, deleting or updating a referenced row scans {table.qualified}")
