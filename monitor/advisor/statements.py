"""Reading ``pg_stat_statements`` for the current database, and deltas between polls.

Counters are summed per queryid across users; the advisor's own statements
(tagged ``dbpulse_advisor``) are left out, and an application statement whose
stored text is the advisor's what-if wrapper is read as the statement itself. On PG 14+ only top-level statements
are read: with ``track = all`` the nested ones are mostly extension scripts and
function bodies, which an application engineer does not index for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from collectors.postgres.session import unwrap_statement_text

from .catalog import TAG

STATEMENTS_SQL = f"""
SELECT /* {TAG} */ queryid, min(query), sum(calls)::bigint, sum({{exec_time}})::float8, sum(rows)::bigint
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND queryid IS NOT NULL {{toplevel}}
GROUP BY queryid
ORDER BY sum({{exec_time}}) DESC
LIMIT %s
"""

STATEMENTS_RESET_SQL = f"SELECT /* {TAG} */ stats_reset FROM pg_stat_statements_info"


@dataclass(frozen=True)
class StatementStat:
    queryid: int
    query: str
    calls: int
    total_exec_ms: float
    rows: int

    @property
    def mean_exec_seconds(self) -> float:
        return self.total_exec_ms / self.calls / 1000.0 if self.calls else 0.0

    @property
    def rows_per_call(self) -> float:
        return self.rows / self.calls if self.calls else 0.0


def read_statements(
    conn: psycopg.Connection[Any], server_version_num: int, limit: int
) -> list[StatementStat]:
    """Statements of the current database by total execution time, heaviest first."""
    exec_time = "total_exec_time" if server_version_num >= 130000 else "total_time"
    toplevel = "AND toplevel" if server_version_num >= 140000 else ""
    sql = STATEMENTS_SQL.format(exec_time=exec_time, toplevel=toplevel)
    rows = conn.execute(sql, (limit,)).fetchall()
    stats = [StatementStat(int(q), unwrap_statement_text(str(t)), int(c), float(e), int(r)) for q, t, c, e, r in rows]
    # The advisor's own catalog queries carry the tag; the application's never do.
    return [s for s in stats if TAG not in s.query]


def read_statements_reset(conn: psycopg.Connection[Any], server_version_num: int) -> datetime | None:
    if server_version_num < 140000:
        return None
    row = conn.execute(STATEMENTS_RESET_SQL).fetchone()
    return row[0] if row else None


def deltas(
    current: list[StatementStat], previous: dict[int, StatementStat] | None
) -> list[StatementStat]:
    """Counters since the previous poll; a statement whose counters went back was reset."""
    if previous is None:
        return current
    out = []
    for stat in current:
        before = previous.get(stat.queryid)
        if before is None or stat.calls < before.calls:
            out.append(stat)
            continue
        calls = stat.calls - before.calls
        if calls > 0:
            out.append(
                StatementStat(stat.queryid, stat.query, calls,
                              stat.total_exec_ms - before.total_exec_ms, stat.rows - before.rows)
            )
    return out
