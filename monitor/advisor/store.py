"""The advisor's durable state: an SQLite file (the standard library's ``sqlite3``) in ``advisor.state_dir``.

What the service's ``Advisor`` otherwise keeps in memory only, per target, so
that a restart or an upgrade keeps it:

- the indexes seen on each table, with when each was first seen;
- the ``pg_stat_statements`` counters of the last run (the next window is
  counted from them, not from the statements' lifetime);
- the statements' windows and texts, and the index changes followed, with the
  before and after figures of their statements (``outcomes.py``);
- advice history: what each run advised, and every index change seen, kept beyond the
  outcomes' 24 h (schema version 2), with its table's oid (version 4): a table is
  matched by its oid, its name is kept for display.

The whole state of a target is written after each run in one transaction. The
schema is versioned (``PRAGMA user_version``) and upgraded at start by the
ordered ``MIGRATIONS``; a file written by a newer dbpulse is refused. A file
that is not SQLite, or a directory that cannot be written, raises
``StateError`` naming the path (the service does not start), unless
``advisor.state_fallback`` is ``memory``: then a warning is logged and the
state is kept in memory only.
"""

from __future__ import annotations

import logging
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from collectors.postgres.statements import StatementStat

from .outcomes import Outcome, OutcomeTracker, Window, _Followed, advice_key, merged

log = logging.getLogger("dbpulse.advisor.state")
FILE_NAME = "advisor.sqlite3"

# Version 1: what outcomes need. Kept verbatim: the upgrade test writes a version-1 file with it.
V1_SCHEMA = """
CREATE TABLE tracker (target TEXT PRIMARY KEY, runs INTEGER NOT NULL);
CREATE TABLE table_seen (target TEXT NOT NULL, table_oid INTEGER NOT NULL, changed_at_run INTEGER,
    PRIMARY KEY (target, table_oid));
CREATE TABLE index_valid (target TEXT NOT NULL, table_oid INTEGER NOT NULL, index_oid INTEGER NOT NULL,
    name TEXT NOT NULL, PRIMARY KEY (target, index_oid));
CREATE TABLE index_first_seen (target TEXT NOT NULL, index_oid INTEGER NOT NULL, name TEXT NOT NULL,
    first_seen TEXT, PRIMARY KEY (target, index_oid, name));
CREATE TABLE statement_counters (target TEXT NOT NULL, queryid INTEGER NOT NULL, query TEXT NOT NULL,
    calls INTEGER NOT NULL, exec_seconds REAL NOT NULL, rows INTEGER NOT NULL, blks_hit INTEGER NOT NULL,
    blks_read INTEGER NOT NULL, plan_seconds REAL NOT NULL, temp_blks_read INTEGER NOT NULL,
    temp_blks_written INTEGER NOT NULL, wal_bytes REAL NOT NULL, PRIMARY KEY (target, queryid));
CREATE TABLE statement_window (target TEXT NOT NULL, queryid INTEGER NOT NULL, run INTEGER NOT NULL,
    calls INTEGER NOT NULL, exec_seconds REAL NOT NULL, rows INTEGER NOT NULL, blocks INTEGER NOT NULL,
    PRIMARY KEY (target, queryid, run));
CREATE TABLE statement_text (target TEXT NOT NULL, queryid INTEGER NOT NULL, query TEXT NOT NULL,
    PRIMARY KEY (target, queryid));
CREATE TABLE index_change (id INTEGER PRIMARY KEY, target TEXT NOT NULL, table_name TEXT NOT NULL,
    table_oid INTEGER NOT NULL, index_name TEXT NOT NULL, change TEXT NOT NULL, detected_at TEXT NOT NULL,
    advised INTEGER NOT NULL, follow_until TEXT NOT NULL);
CREATE TABLE change_statement (change_id INTEGER NOT NULL REFERENCES index_change (id) ON DELETE CASCADE,
    queryid INTEGER NOT NULL, side TEXT NOT NULL, calls INTEGER NOT NULL, exec_seconds REAL NOT NULL,
    rows INTEGER NOT NULL, blocks INTEGER NOT NULL, PRIMARY KEY (change_id, queryid, side));
"""

# Version 2: advice history (what was advised when; the last advice marks changes ``advised``), and the index
# changes seen kept beyond the outcomes' ``outcome_keep_seconds`` (``index_event``).
V2_SCHEMA = """
CREATE TABLE advice (target TEXT NOT NULL, advised_at TEXT NOT NULL, action TEXT NOT NULL,
    table_oid INTEGER, subject TEXT NOT NULL);
CREATE INDEX advice_target_time ON advice (target, advised_at);
CREATE TABLE index_event (target TEXT NOT NULL, table_name TEXT NOT NULL, index_name TEXT NOT NULL,
    change TEXT NOT NULL, detected_at TEXT NOT NULL, advised INTEGER NOT NULL,
    PRIMARY KEY (target, index_name, change, detected_at));
"""


def _script(db: sqlite3.Connection, sql: str) -> None:
    """Statement by statement, inside the caller's transaction (``executescript`` would commit first)."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def _v1(db: sqlite3.Connection) -> None:
    _script(db, V1_SCHEMA)


def _v2(db: sqlite3.Connection) -> None:
    _script(db, V2_SCHEMA)


def _v3(db: sqlite3.Connection) -> None:
    """Version 3: when the advice a change followed began (``advised_at``), for the history in words."""
    _script(db, "ALTER TABLE index_event ADD COLUMN advised_at TEXT; "
                "ALTER TABLE index_change ADD COLUMN advised_at TEXT")


def _v4(db: sqlite3.Connection) -> None:
    """Version 4: each kept index change names its table by oid (``table_oid``), how pages match it to a table
    (a rename keeps the oid; a name may hold dots). Earlier rows get it from the change still followed
    (``index_change`` has had the oid from the start), else from the index's table while the index stays;
    the rest keep NULL, matched by the name they were seen with (``IndexEvent.concerns``)."""
    _script(db, """
        ALTER TABLE index_event ADD COLUMN table_oid INTEGER;
        UPDATE index_event SET table_oid = (SELECT c.table_oid FROM index_change c WHERE c.target = index_event.target
            AND c.index_name = index_event.index_name AND c.change = index_event.change
            AND c.detected_at = index_event.detected_at LIMIT 1);
        UPDATE index_event SET table_oid = (SELECT v.table_oid FROM index_valid v WHERE v.target = index_event.target
            AND v.name = index_event.index_name LIMIT 1) WHERE table_oid IS NULL""")


# Ordered: MIGRATIONS[n] takes a file from version n to n + 1. Append, never edit a shipped one.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2, _v3, _v4]
SCHEMA_VERSION = len(MIGRATIONS)
PER_TARGET = (
    "tracker",
    "table_seen",
    "index_valid",
    "index_first_seen",
    "statement_counters",
    "statement_window",
    "statement_text",
    "index_change",
)
ADVICE_KEEP = 10_000  # advice rows kept per target, newest first
EVENTS_KEEP = 10_000  # index changes kept per target, newest first


class StateError(RuntimeError):
    """The state directory or file cannot be used; the message names the path."""


@dataclass
class AdvisorMemory:
    """What an ``Advisor`` keeps across runs besides its tracker."""

    previous: dict[int, StatementStat] | None = None
    first_seen: dict[tuple[int, str], datetime | None] = field(default_factory=dict)


def check_dir(path: Path) -> str | None:
    """Why ``path`` cannot hold the state (None: it can): it must be a directory this process can write."""
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_dir():
        return f"{path} is not a directory"
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".dbpulse-write-check-"):
            pass
    except OSError as exc:
        return f"{path} cannot be written: {exc.strerror}"
    return None


def check_state(directory: Path) -> str | None:
    """``check_dir``, then that the state file, if there is one, is an SQLite file this dbpulse can read
    (read only: nothing is created or upgraded)."""
    problem = check_dir(directory)
    path = directory / FILE_NAME
    if problem or not path.exists():
        return problem
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        return f"{path} cannot be used: {exc}"
    if version > SCHEMA_VERSION:
        return f"{path} was written by a newer dbpulse (schema version {version}, this one reads {SCHEMA_VERSION})"
    return None


class StateStore:
    """One SQLite file shared by the advisors of every target (each writes its own rows)."""

    def __init__(self, directory: Path) -> None:
        problem = check_dir(directory)
        if problem:
            raise StateError(f"advisor state directory {problem}")
        self.path = directory / FILE_NAME
        self._lock = threading.Lock()  # the advisors run in threads; one writer at a time
        try:
            with closing(self._connect()) as db:
                migrate(db)
        except sqlite3.DatabaseError as exc:
            raise StateError(f"advisor state file {self.path} cannot be used: {exc}") from None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA foreign_keys = ON")
        return db

    @contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        """One connection and transaction, one thread at a time; an SQLite error (disk full, the file
        replaced or damaged since the start) becomes a ``StateError`` naming the file."""
        try:
            with self._lock, closing(self._connect()) as db, db:
                yield db
        except sqlite3.Error as exc:
            raise StateError(f"advisor state {what} {self.path} failed: {exc}") from None

    def load(self, target: str, tracker: OutcomeTracker) -> AdvisorMemory:
        """The target's saved state, into ``tracker``; the rest is returned."""
        with self._transaction("read from") as db:
            return _load(db, target, tracker)

    def save(self, target: str, tracker: OutcomeTracker, memory: AdvisorMemory) -> None:
        with self._transaction("write to") as db:
            _save(db, target, tracker, memory)

    def record_advice(self, target: str, at: datetime, advice: Iterable[tuple[str, int | None, str]]) -> None:
        """Advice history: the run's advice, (action, table oid, subject) — ``create`` with the key signature,
        ``drop`` with the index OID — kept when it differs from the last advice kept (``none``: nothing
        advised), so the history says when each piece of advice began."""
        wanted = sorted(set(advice)) or [("none", None, "")]
        with self._transaction("write to") as db:
            if sorted(_last_advice(db, target)) == wanted:
                return
            rows = [(target, at.isoformat(), action, oid, subject) for action, oid, subject in wanted]
            db.executemany("INSERT INTO advice VALUES (?, ?, ?, ?, ?)", rows)
            db.execute(
                "DELETE FROM advice WHERE target = ? AND rowid NOT IN (SELECT rowid FROM advice "
                "WHERE target = ? ORDER BY advised_at DESC LIMIT ?)",
                (target, target, ADVICE_KEEP),
            )

    def index_events(self, target: str) -> list[tuple[datetime, str, str, str, bool, datetime | None, int | None]]:
        """The index changes seen on ``target``, oldest first: (detected at, table, index, change, advised,
        when that advice began, the table's oid (None: an unresolved row of a version-3 file))."""
        with self._transaction("read from") as db:
            rows = db.execute(
                "SELECT detected_at, table_name, index_name, change, advised, advised_at, table_oid FROM index_event "
                "WHERE target = ? ORDER BY detected_at, rowid",
                (target,),
            ).fetchall()
        return [
            (datetime.fromisoformat(at), table, index, change, bool(advised), _time(advised_at), table_oid)
            for at, table, index, change, advised, advised_at, table_oid in rows
        ]

    def advice(self, target: str) -> list[tuple[datetime, str, int | None, str]]:
        with self._transaction("read from") as db:
            rows = db.execute(
                "SELECT advised_at, action, table_oid, subject FROM advice WHERE target = ? ORDER BY advised_at, rowid",
                (target,),
            ).fetchall()
        return [(datetime.fromisoformat(at), action, oid, subject) for at, action, oid, subject in rows]


def migrate(db: sqlite3.Connection) -> int:
    """Bring the file to ``SCHEMA_VERSION``, one migration per transaction; returns the version it had."""
    found = int(db.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"written by a newer dbpulse (schema version {found}, this one reads {SCHEMA_VERSION})"
        )
    for version in range(found, SCHEMA_VERSION):
        # One transaction per migration, its DDL and the version together (SQLite's DDL is transactional):
        # a migration that fails or is cut short leaves the file as it was, to be upgraded at the next start.
        db.execute("BEGIN")
        try:
            MIGRATIONS[version](db)
            db.execute(f"PRAGMA user_version = {version + 1}")
            db.commit()
        except BaseException:
            db.rollback()
            raise
    if found == 0:
        log.info("advisor state file created (schema version %d)", SCHEMA_VERSION)
    elif found < SCHEMA_VERSION:
        log.info("advisor state schema upgraded from version %d to %d", found, SCHEMA_VERSION)
    return found


def open_store(directory: Path | None, fallback: str) -> StateStore | None:
    """The store in ``directory``; None (memory only) when unset, or when it cannot be used and
    ``fallback`` is ``memory``. Says which, once."""
    if directory is None:
        log.info(
            "advisor.state_dir is not set: the advisor's state (index changes, outcomes) is kept in "
            "memory only and lost when dbpulse restarts"
        )
        return None
    try:
        store = StateStore(directory)
    except StateError as exc:
        if fallback != "memory":
            raise
        log.warning(
            "%s; advisor.state_fallback is memory: the advisor's state is kept in memory only and "
            "lost when dbpulse restarts",
            exc,
        )
        return None
    log.info("advisor state kept in %s", store.path)
    return store


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _window(row: Iterable[float]) -> Window:
    calls, exec_s, rows, blocks = row
    return Window(int(calls), float(exec_s), int(rows), int(blocks))


def _load(db: sqlite3.Connection, target: str, tracker: OutcomeTracker) -> AdvisorMemory:
    q = (target,)
    memory = AdvisorMemory()
    runs = db.execute("SELECT runs FROM tracker WHERE target = ?", q).fetchone()
    if runs is None:
        return memory  # nothing saved for this target yet
    tracker.runs = int(runs[0])
    indexes: dict[int, dict[int, str]] = {}
    for table_oid, changed_at in db.execute("SELECT table_oid, changed_at_run FROM table_seen WHERE target = ?", q):
        indexes[table_oid] = {}
        if changed_at is not None:
            tracker.changed_at[table_oid] = changed_at
    for table_oid, index_oid, name in db.execute(
        "SELECT table_oid, index_oid, name FROM index_valid WHERE target = ?", q
    ):
        indexes.setdefault(table_oid, {})[index_oid] = name
    tracker.indexes = indexes
    for index_oid, name, first in db.execute(
        "SELECT index_oid, name, first_seen FROM index_first_seen WHERE target = ?", q
    ):
        memory.first_seen[(index_oid, name)] = datetime.fromisoformat(first) if first else None
    memory.previous = {
        row[0]: StatementStat(*row)
        for row in db.execute(
            "SELECT queryid, query, calls, exec_seconds, rows, blks_hit, blks_read, plan_seconds, temp_blks_read, "
            "temp_blks_written, wal_bytes FROM statement_counters WHERE target = ?",
            q,
        )
    } or None  # no counters saved (pg_stat_statements was not readable): the next window is the lifetime's
    for queryid, run, *w in db.execute(
        "SELECT queryid, run, calls, exec_seconds, rows, blocks "
        "FROM statement_window WHERE target = ? ORDER BY queryid, run",
        q,
    ):
        kept = (*tracker.windows.get(queryid, ()), (run, _window(w)))
        tracker.windows[queryid] = kept[-tracker.settings.outcome_windows:]
    tracker.texts.update(db.execute("SELECT queryid, query FROM statement_text WHERE target = ?", q).fetchall())
    tracker.followed = _load_followed(db, target)
    if _has_advice(db):
        _load_last_advice(db, target, tracker)
    return memory


def _load_followed(db: sqlite3.Connection, target: str) -> list[_Followed]:
    out = []
    for cid, table, table_oid, index, change, detected, advised, until, advised_at in db.execute(
        "SELECT id, table_name, table_oid, index_name, change, detected_at, advised, follow_until, advised_at "
        "FROM index_change WHERE target = ? ORDER BY detected_at, id",
        (target,),
    ).fetchall():
        followed = _Followed(
            Outcome(table, index, change, datetime.fromisoformat(detected), bool(advised),
                    advised_at=_time(advised_at), table_oid=table_oid),
            table_oid,
            {},
            {},
            datetime.fromisoformat(until),
        )
        for queryid, side, *w in db.execute(
            "SELECT queryid, side, calls, exec_seconds, rows, blocks FROM change_statement WHERE change_id = ?", (cid,)
        ):
            if side == "before":
                followed.before[queryid] = _window(w)
            else:
                followed.after[queryid] = [_window(w)]  # the after windows merged: all that judging reads
        out.append(followed)  # judged again by the next run's update(), which makes every report
    return out


def _has_advice(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'advice'").fetchone() is not None


def _last_advice(db: sqlite3.Connection, target: str) -> list[tuple[str, int | None, str]]:
    last = db.execute("SELECT max(advised_at) FROM advice WHERE target = ?", (target,)).fetchone()[0]
    return (
        []
        if last is None
        else db.execute(
            "SELECT action, table_oid, subject FROM advice WHERE target = ? AND advised_at = ?", (target, last)
        ).fetchall()
    )


def _load_last_advice(db: sqlite3.Connection, target: str, tracker: OutcomeTracker) -> None:
    """The last run's advice, so a change made while dbpulse was down is still marked ``advised``, and when
    each piece of it began: the oldest of the unbroken run of kept advice sets that hold it (one read)."""
    sets: dict[str, set[tuple[str, int | None, str]]] = {}
    for at, action, oid, subject in db.execute(
        "SELECT advised_at, action, table_oid, subject FROM advice WHERE target = ?", (target,)
    ):
        sets.setdefault(at, set()).add((action, oid, subject))
    newest_first = sorted(sets.items(), reverse=True)
    rows = newest_first[0][1] if newest_first else set()
    tracker.advised_creates = {
        (oid, tuple(subject.split("\t"))) for action, oid, subject in rows if action == "create" and oid is not None
    }
    tracker.advised_drops = {int(subject) for action, _, subject in rows if action == "drop"}
    for row in rows:
        if row[0] not in ("create", "drop"):
            continue  # "none": nothing was advised
        began = None
        for at, kept in newest_first:
            if row not in kept:
                break
            began = at
        if began is not None:
            tracker.advice_since[advice_key(*row)] = datetime.fromisoformat(began)


def advice_rows(
    creates: Iterable[tuple[int, tuple[str, ...]]], drops: Iterable[int]
) -> list[tuple[str, int | None, str]]:
    """``remember_advice``'s arguments as advice rows."""
    return [*(("create", oid, "\t".join(sig)) for oid, sig in creates), *(("drop", None, str(oid)) for oid in drops)]


def _save(db: sqlite3.Connection, target: str, tracker: OutcomeTracker, memory: AdvisorMemory) -> None:
    """Replace the target's rows with ``tracker``'s and ``memory``'s (one transaction: the caller's)."""
    q = (target,)
    db.execute("DELETE FROM change_statement WHERE change_id IN (SELECT id FROM index_change WHERE target = ?)", q)
    for table in PER_TARGET:
        db.execute(f"DELETE FROM {table} WHERE target = ?", q)
    db.execute("INSERT INTO tracker VALUES (?, ?)", (target, tracker.runs))
    indexes = tracker.indexes or {}
    db.executemany(
        "INSERT INTO table_seen VALUES (?, ?, ?)",
        [(target, oid, tracker.changed_at.get(oid)) for oid in {*indexes, *tracker.changed_at}],
    )
    db.executemany(
        "INSERT INTO index_valid VALUES (?, ?, ?, ?)",
        [(target, table_oid, oid, name) for table_oid, members in indexes.items() for oid, name in members.items()],
    )
    db.executemany(
        "INSERT INTO index_first_seen VALUES (?, ?, ?, ?)",
        [(target, oid, name, first.isoformat() if first else None) for (oid, name), first in memory.first_seen.items()],
    )
    db.executemany(
        "INSERT INTO statement_counters VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                target,
                st.queryid,
                "",  # the counters only: a window takes its text from the current read
                st.calls,
                st.exec_seconds,
                st.rows,
                st.blks_hit,
                st.blks_read,
                st.plan_seconds,
                st.temp_blks_read,
                st.temp_blks_written,
                st.wal_bytes,
            )
            for st in (memory.previous or {}).values()
        ],
    )
    db.executemany(
        "INSERT INTO statement_window VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (target, queryid, run, w.calls, w.exec_seconds, w.rows, w.blocks)
            for queryid, windows in tracker.windows.items()
            for run, w in windows
        ],
    )
    db.executemany("INSERT INTO statement_text VALUES (?, ?, ?)", [(target, *kv) for kv in tracker.texts.items()])
    _save_followed(db, target, tracker.followed)


def _save_followed(db: sqlite3.Connection, target: str, followed: list[_Followed]) -> None:
    """The index changes followed, with their statements' before and after (merged) figures; each change also
    in the history of index changes, which outlives the outcome."""
    db.executemany(
        "INSERT INTO index_event (target, table_name, index_name, change, detected_at, advised, advised_at, "
        "table_oid) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
        "table_oid = coalesce(index_event.table_oid, excluded.table_oid)",
        [
            (
                target,
                f.outcome.table,
                f.outcome.index,
                f.outcome.change,
                f.outcome.detected_at.isoformat(),
                int(f.outcome.advised),
                _iso(f.outcome.advised_at),
                f.table_oid,
            )
            for f in followed
        ],
    )
    db.execute(
        "DELETE FROM index_event WHERE target = ? AND rowid NOT IN (SELECT rowid FROM index_event "
        "WHERE target = ? ORDER BY detected_at DESC LIMIT ?)",
        (target, target, EVENTS_KEEP),
    )
    for f in followed:
        o = f.outcome
        cid = db.execute(
            "INSERT INTO index_change (target, table_name, table_oid, index_name, change, detected_at, "
            "advised, follow_until, advised_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                target,
                o.table,
                f.table_oid,
                o.index,
                o.change,
                o.detected_at.isoformat(),
                int(o.advised),
                f.until.isoformat(),
                _iso(o.advised_at),
            ),
        ).lastrowid
        rows = [(cid, queryid, "before", w) for queryid, w in f.before.items()]
        rows += [(cid, queryid, "after", merged(ws)) for queryid, ws in f.after.items()]
        db.executemany(
            "INSERT INTO change_statement VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(cid, queryid, side, w.calls, w.exec_seconds, w.rows, w.blocks) for cid, queryid, side, w in rows],
        )
