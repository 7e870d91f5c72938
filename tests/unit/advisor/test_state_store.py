"""The advisor's durable state (store.py): a tracker saved and loaded again judges as the one kept in memory;
a file written by schema version 1 is upgraded and read; a file that is not SQLite, a newer file, or a
directory that cannot be used fails loudly naming the path, or falls back to memory with a warning."""

from __future__ import annotations

import logging
import os
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collectors.postgres.settings import PostgresSettings
from collectors.postgres.statements import StatementStat
from monitor.advisor.catalog import Catalog, Index, Table
from monitor.advisor.outcomes import OutcomeTracker, advice_key
from monitor.advisor.poller import AdvisorPoller, pollers
from monitor.advisor.query_analysis import Key
from monitor.advisor.settings import AdvisorSettings, Thresholds
from monitor.advisor.store import (
    FILE_NAME,
    SCHEMA_VERSION,
    AdvisorMemory,
    StateError,
    StateStore,
    check_state,
    open_store,
)
from monitor.cli import main

T0 = datetime(2025, 1, 1, tzinfo=UTC)
QUERY = "SELECT * FROM orders WHERE customer = $1"

# The version-1 schema as dbpulse shipped it, written out here (not imported) so that the upgrade test
# keeps testing what old files hold even if the module's copy were ever edited.
V1_DDL = """
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
PRAGMA user_version = 1;
"""


def _catalog(with_index: bool) -> Catalog:
    cat = Catalog()
    cat.tables[1] = Table(1, "public", "orders", 10_000, 0, 0, 0, 0)
    if with_index:
        cat.indexes.append(Index(50, "public", "orders_customer_idx", 1, "btree", False, False, True, True, 1,
                                 (Key("customer", False),), (), (), (), None, False, 0, 8192))
    return cat


def _window(calls: int, mean_ms: float) -> StatementStat:
    return StatementStat(7, QUERY, calls, calls * mean_ms / 1000, calls, calls * 4, 0)


def _run(tracker: OutcomeTracker, n: int, mean_ms: float, with_index: bool) -> list[tuple[str, str, float | None]]:
    outcomes, _ = tracker.update([_window(20, mean_ms)], {7: {1}}, _catalog(with_index), T0 + timedelta(minutes=5 * n))
    return [(o.index, st.verdict, st.ratio) for o in outcomes for st in o.statements]


def test_a_restarted_tracker_reports_the_outcome_the_kept_one_does(tmp_path: Path) -> None:
    kept = OutcomeTracker(Thresholds())
    store = StateStore(tmp_path)
    for n in range(3):
        _run(kept, n, 8.0, with_index=False)
    _run(kept, 3, 1.0, with_index=True)  # the index appears: its change is followed from here
    store.save("shop", kept, AdvisorMemory({7: _window(100, 8.0)}, {(50, "public.orders_customer_idx"): T0}))

    restarted = OutcomeTracker(Thresholds())
    memory = StateStore(tmp_path).load("shop", restarted)  # a new process opens the same directory
    assert memory.previous is not None and memory.previous[7].calls == 100
    assert memory.first_seen == {(50, "public.orders_customer_idx"): T0}
    assert restarted.runs == kept.runs == 4
    assert _run(restarted, 4, 1.0, with_index=True) == _run(kept, 4, 1.0, with_index=True)
    ((index, verdict, ratio),) = _run(restarted, 5, 1.0, with_index=True)
    assert (index, verdict) == ("public.orders_customer_idx", "improvement") and ratio == pytest.approx(1 / 8)
    assert OutcomeTracker(Thresholds()).runs == 0 and StateStore(tmp_path).load("other", OutcomeTracker(
        Thresholds())).previous is None  # another target's rows are its own


def test_a_change_while_dbpulse_was_down_is_seen_against_the_saved_baseline(tmp_path: Path) -> None:
    before = OutcomeTracker(Thresholds())
    for n in range(3):
        _run(before, n, 8.0, with_index=False)
    StateStore(tmp_path).save("shop", before, AdvisorMemory())
    after = OutcomeTracker(Thresholds())
    StateStore(tmp_path).load("shop", after)
    ((index, verdict, _),) = _run(after, 3, 1.0, with_index=True)  # created while no dbpulse ran
    assert index == "public.orders_customer_idx" and verdict == "improvement"
    assert _run(OutcomeTracker(Thresholds()), 3, 1.0, with_index=True) == []  # in memory only: no baseline


def test_advice_history_keeps_when_each_advice_began(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.record_advice("shop", T0, [("create", 1, "customer")])
    store.record_advice("shop", T0 + timedelta(minutes=5), [("create", 1, "customer")])  # the same: not again
    store.record_advice("shop", T0 + timedelta(minutes=10), [])
    assert store.advice("shop") == [(T0, "create", 1, "customer"), (T0 + timedelta(minutes=10), "none", None, "")]
    tracker = OutcomeTracker(Thresholds())
    store.save("shop", tracker, AdvisorMemory())
    store.record_advice("shop", T0 + timedelta(minutes=15), [("create", 1, "customer"), ("drop", None, "77")])
    store.load("shop", tracker)
    assert tracker.advised_creates == {(1, ("customer",))} and tracker.advised_drops == {77}
    # advised again after a break: it began anew at 15 min, not at T0
    assert tracker.advice_since == {advice_key("create", 1, ("customer",)): T0 + timedelta(minutes=15),
                                    advice_key("drop", 77): T0 + timedelta(minutes=15)}
    store.record_advice("shop", T0 + timedelta(minutes=20), [("drop", None, "77")])
    restarted = OutcomeTracker(Thresholds())
    store.load("shop", restarted)
    assert restarted.advice_since == {advice_key("drop", 77): T0 + timedelta(minutes=15)}  # kept since 15 min


def test_a_tracker_keeps_when_each_piece_of_advice_began() -> None:
    tracker = OutcomeTracker(Thresholds())
    tracker.remember_advice([(1, ("c:a",))], [], T0)
    tracker.remember_advice([(1, ("c:a",)), (2, ("c:b",))], [9], T0 + timedelta(minutes=5))
    tracker.remember_advice([(2, ("c:b",))], [9], T0 + timedelta(minutes=10))
    tracker.remember_advice([(1, ("c:a",)), (2, ("c:b",))], [], T0 + timedelta(minutes=15))
    assert tracker.advice_since == {advice_key("create", 1, ("c:a",)): T0 + timedelta(minutes=15),
                                    advice_key("create", 2, ("c:b",)): T0 + timedelta(minutes=5)}


def test_a_version_1_file_is_upgraded_and_read(tmp_path: Path) -> None:
    with closing(sqlite3.connect(tmp_path / FILE_NAME)) as db, db:
        db.executescript(V1_DDL)
        db.execute("INSERT INTO tracker VALUES ('shop', 4)")
        db.execute("INSERT INTO table_seen VALUES ('shop', 1, 3)")
        db.execute("INSERT INTO index_valid VALUES ('shop', 1, 50, 'public.orders_customer_idx')")
        db.execute("INSERT INTO statement_text VALUES ('shop', 7, ?)", (QUERY,))
        db.execute("INSERT INTO index_change VALUES (1, 'shop', 'public.orders', 1, 'public.orders_customer_idx', "
                   "'created', ?, 1, ?)", ((T0 + timedelta(minutes=15)).isoformat(), (T0 + timedelta(hours=2))
                                          .isoformat()))
        db.execute("INSERT INTO change_statement VALUES (1, 7, 'before', 60, 0.48, 60, 240)")
        db.execute("INSERT INTO change_statement VALUES (1, 7, 'after', 20, 0.02, 20, 80)")
    tracker = OutcomeTracker(Thresholds())
    StateStore(tmp_path).load("shop", tracker)
    with closing(sqlite3.connect(tmp_path / FILE_NAME)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    ((index, verdict, ratio),) = _run(tracker, 4, 1.0, with_index=True)
    assert (index, verdict) == ("public.orders_customer_idx", "improvement")
    assert ratio == pytest.approx(1.0 / 8.0)  # (0.02 + 0.02) s / 40 calls after, 0.48 s / 60 before
    assert tracker.followed[0].outcome.advised and tracker.advised_creates == set()  # v1 kept no advice


def test_a_file_that_is_not_sqlite_fails_naming_it_or_falls_back_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / FILE_NAME).write_bytes(b"this is not a database, it is a text file of some length\n" * 20)
    with pytest.raises(StateError, match=f"{tmp_path / FILE_NAME} cannot be used: file is not a database"):
        open_store(tmp_path, "fail")
    assert check_state(tmp_path) == f"{tmp_path / FILE_NAME} cannot be used: file is not a database"
    with caplog.at_level(logging.WARNING, logger="dbpulse.advisor.state"):
        assert open_store(tmp_path, "memory") is None
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert str(tmp_path / FILE_NAME) in warning.getMessage() and "memory only" in warning.getMessage()


def test_a_file_of_a_newer_dbpulse_is_refused(tmp_path: Path) -> None:
    with closing(sqlite3.connect(tmp_path / FILE_NAME)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StateError, match="newer dbpulse"):
        StateStore(tmp_path)
    assert "newer dbpulse" in (check_state(tmp_path) or "")


def test_a_directory_that_cannot_be_used(tmp_path: Path) -> None:
    with pytest.raises(StateError, match=f"{tmp_path / 'missing'} does not exist"):
        StateStore(tmp_path / "missing")
    (tmp_path / "a-file").write_text("")
    assert check_state(tmp_path / "a-file") == f"{tmp_path / 'a-file'} is not a directory"
    assert open_store(None, "fail") is None  # unset: memory only, as before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_a_read_only_directory(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        assert (check_state(tmp_path) or "").startswith(f"{tmp_path} cannot be written")
    finally:
        tmp_path.chmod(0o700)


def test_check_config_names_the_key_and_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "dbpulse.yaml"
    config.write_text(f"advisor: {{state_dir: {tmp_path / 'missing'}}}\n"
                      "postgres: {targets: [{name: a, dsn: 'postgresql://u@h/db'}]}\n")
    assert main(["check-config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"invalid configuration in {config}" in err
    assert f"advisor.state_dir: {tmp_path / 'missing'} does not exist" in err
    config.write_text(f"advisor: {{state_dir: {tmp_path}}}\npostgres: {{targets: [{{name: a, dsn: 'host=h'}}]}}\n")
    assert main(["check-config", str(config)]) == 0
    assert not (tmp_path / FILE_NAME).exists()  # checking writes nothing


def test_the_service_does_not_start_on_a_state_file_it_cannot_use(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).write_bytes(b"not sqlite\n" * 100)
    sections = {"postgres": PostgresSettings.model_validate({"targets": [{"name": "a", "dsn": "host=h"}]})}
    with pytest.raises(StateError, match=str(tmp_path / FILE_NAME)):
        pollers(AdvisorSettings(state_dir=tmp_path), sections)
    (poller,) = pollers(AdvisorSettings(state_dir=tmp_path, state_fallback="memory"), sections)
    assert isinstance(poller, AdvisorPoller) and poller.advisor.store is None
    (tmp_path / FILE_NAME).unlink()
    (poller,) = pollers(AdvisorSettings(state_dir=tmp_path), sections)
    assert isinstance(poller, AdvisorPoller) and poller.advisor.store is not None
    assert (tmp_path / FILE_NAME).exists()


def test_a_relative_state_dir_is_checked_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "state").mkdir()
    StateStore(tmp_path / "state")  # a valid file there
    monkeypatch.chdir(tmp_path)
    assert check_state(Path("state")) is None
    (tmp_path / "state" / FILE_NAME).write_bytes(b"not sqlite\n" * 100)
    assert check_state(Path("state")) == f"{Path('state') / FILE_NAME} cannot be used: file is not a database"


def test_index_changes_are_kept_after_their_outcome_is_no_longer_reported(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    tracker = OutcomeTracker(Thresholds(outcome_keep_seconds=3600))
    for n in range(3):
        _run(tracker, n, 8.0, with_index=False)
    _run(tracker, 3, 1.0, with_index=True)
    store.save("shop", tracker, AdvisorMemory())
    detected = T0 + timedelta(minutes=15)
    assert _run(tracker, 40, 1.0, with_index=True) == []  # 3 h later: the outcome is no longer reported
    store.save("shop", tracker, AdvisorMemory())
    with closing(sqlite3.connect(tmp_path / FILE_NAME)) as db:
        assert db.execute("SELECT count(*) FROM index_change").fetchone()[0] == 0
    assert store.index_events("shop") == [
        (detected, "public.orders", "public.orders_customer_idx", "created", False, None, 1)]


def test_a_version_3_file_s_index_history_gets_its_tables_oids(tmp_path: Path) -> None:
    """Version 4 keeps each index change's table oid (pages match by it). A version-3 file's changes get it from
    the change still followed, else from the index's table while the index stays; one with neither stays
    without, and is matched by the name it was seen with."""
    from monitor.advisor import store
    from monitor.advisor.findings import IndexEvent

    seen = [(T0 + timedelta(minutes=m)).isoformat() for m in (5, 10, 15)]
    with closing(sqlite3.connect(tmp_path / FILE_NAME)) as db:
        for migration in store.MIGRATIONS[:3]:
            migration(db)
        db.execute("PRAGMA user_version = 3")
        db.execute("INSERT INTO tracker VALUES ('shop', 4)")
        db.execute("INSERT INTO index_valid VALUES ('shop', 2, 60, 'public.items_sku_idx')")
        db.execute("INSERT INTO index_change (id, target, table_name, table_oid, index_name, change, detected_at, "
                   "advised, follow_until) VALUES (1, 'shop', 'public.orders', 1, 'public.orders_customer_idx', "
                   "'created', ?, 1, ?)", (seen[2], (T0 + timedelta(hours=2)).isoformat()))
        db.executemany("INSERT INTO index_event VALUES ('shop', ?, ?, ?, ?, 0, NULL)", [
            ("public.gone", "public.gone_idx", "dropped", seen[0]),
            ("public.items", "public.items_sku_idx", "created", seen[1]),
            ("public.orders", "public.orders_customer_idx", "created", seen[2])])
        db.commit()
    kept = StateStore(tmp_path)
    tracker = OutcomeTracker(Thresholds())
    kept.load("shop", tracker)
    assert [e[-1] for e in kept.index_events("shop")] == [None, 2, 1]
    assert tracker.followed[0].outcome.table_oid == 1
    gone, items, _ = (IndexEvent(*e) for e in kept.index_events("shop"))
    assert items.concerns(2, "public.renamed") and not items.concerns(1, "public.items")  # by oid only
    assert gone.concerns(None, "public.gone") and not gone.concerns(None, "public.other")  # unresolved: by name


def test_a_migration_cut_short_leaves_the_file_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each migration is one transaction with its version: one that fails half-way (here after its first
    ALTER) is rolled back, and the next start upgrades the file, instead of failing on a column it half added."""
    from monitor.advisor import store

    def half_then_fail(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE index_event ADD COLUMN advised_at TEXT")
        raise sqlite3.OperationalError("disk I/O error (planted)")

    path = tmp_path / FILE_NAME
    monkeypatch.setattr(store, "MIGRATIONS", [*store.MIGRATIONS[:2], half_then_fail])
    with closing(sqlite3.connect(path)) as db, pytest.raises(sqlite3.OperationalError, match="planted"):
        store.migrate(db)
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        assert "advised_at" not in {row[1] for row in db.execute("PRAGMA table_info(index_event)")}
    monkeypatch.undo()
    with closing(sqlite3.connect(path)) as db:
        assert store.migrate(db) == 2 and db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
