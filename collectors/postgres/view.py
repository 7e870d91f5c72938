"""What the PostgreSQL section of the main page shows of a snapshot: its statements grouped and ranked.

The source's spec hands it to the section template (``view_of`` there); the
page only lays it out.
"""

from __future__ import annotations

from dataclasses import dataclass

from collectors.postgres.databases import DatabasesPart, DatabaseStats
from collectors.postgres.snapshot import PostgresSnapshot, TableRow
from collectors.postgres.statements import OwnStatements, Variants, group_variants

TOP_STATEMENTS = 15
TOP_TABLES = 10
CONTROL_STATEMENTS = frozenset({"BEGIN", "COMMIT", "ROLLBACK", "START", "END", "SET", "RESET", "SHOW", "DISCARD",
                                "SAVEPOINT", "RELEASE"})


@dataclass(frozen=True)
class PostgresView:
    snap: PostgresSnapshot
    top: list[Variants]  # the statements' variants (one fingerprint) are one entry, counters added up
    slowest: list[Variants]
    busiest: list[Variants]  # the most called
    tables: list[TableRow]

    @property
    def connections(self) -> int:
        return sum(c[3] for c in self.snap.connections)

    @property
    def own(self) -> list[OwnStatements]:
        """dbpulse's own statements (kept out of the tables), the components that have any."""
        return [o for o in self.snap.own_statements if o.statements]

    @property
    def others(self) -> list[DatabaseStats]:
        """The target's other databases (``postgres.targets[].databases``), by name; none without it."""
        return list(self.snap.others.databases) if isinstance(self.snap.others, DatabasesPart) else []

    @property
    def left_out(self) -> int:
        """Databases the selection takes but that are not watched (past ``max``, or not found)."""
        return sum(self.snap.others.left_out.values()) if isinstance(self.snap.others, DatabasesPart) else 0

    @staticmethod
    def busiest_tables(database: DatabaseStats, k: int = 3) -> list[TableRow]:
        """A database's tables with the most sequential scans (``__other__`` never among them)."""
        tables = [t for t in database.tables if t.table != "__other__"]
        return sorted(tables, key=lambda t: (-t.seq_scans, t.schema, t.table))[:k]

    @property
    def application_statements(self) -> int | None:
        """The application's statements pg_stat_statements tracks (every entry but dbpulse's own)."""
        count = self.snap.statement_count
        return None if count is None else count - sum(o.statements for o in self.snap.own_statements)


def postgres_view(snap: PostgresSnapshot) -> PostgresView:
    groups = group_variants(snap.statements, lambda s: snap.variant_keys.get(s.queryid))  # heaviest first
    return PostgresView(
        snap=snap,
        top=groups[:TOP_STATEMENTS],
        slowest=sorted((g for g in groups if g.total.calls), key=lambda g: -g.total.mean_exec_seconds)[:5],
        busiest=sorted((g for g in groups if not _is_control(g.total.query)), key=lambda g: -g.total.calls)[:5],
        tables=sorted(snap.tables, key=lambda t: -t.seq_scans)[:TOP_TABLES],
    )


def _is_control(query: str) -> bool:
    """Transaction control and session statements: not what "most called" is about."""
    words = query.split(None, 1)
    return bool(words) and words[0].upper() in CONTROL_STATEMENTS
