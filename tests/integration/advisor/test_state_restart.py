"""The advisor's state survives a restart (advisor.state_dir, store.py), on a real database: an index is
created while the service's advisor runs; the advisor is then built again from the same state directory,
as a restarted dbpulse would, and still reports the outcome, before against after, counting the window
from the counters saved before the restart. Without a state directory the restart forgets it."""

from __future__ import annotations

from pathlib import Path

import psycopg

from monitor.advisor import Advisor
from monitor.advisor.findings import IndexEvent
from monitor.advisor.store import FILE_NAME, StateStore
from monitor.web.detail import table_history
from tests.integration.advisor.test_outcomes import SETTINGS, lookups, tickets_db

__all__ = ["tickets_db"]  # the fixture, shared with the outcomes test


def test_the_outcome_of_an_index_created_before_a_restart_is_still_reported(tickets_db: str, tmp_path: Path) -> None:
    advisor = Advisor(tickets_db, "svc", SETTINGS, store=StateStore(tmp_path))
    lookups(tickets_db)
    first = advisor.run()
    (create,) = [a for a in first.plan.actions if a.action == "create"]
    with psycopg.connect(tickets_db, autocommit=True) as conn:
        conn.execute(create.steps[0])
    lookups(tickets_db)
    second = advisor.run()
    (seen,) = second.outcomes
    assert (seen.change, seen.advised, seen.verdict) == ("created", True, "improvement")

    del advisor  # dbpulse stops; a new process opens the same directory
    restarted = Advisor(tickets_db, "svc", SETTINGS, store=StateStore(tmp_path))
    forgetful = Advisor(tickets_db, "svc", SETTINGS)  # memory only, as before this state existed
    lookups(tickets_db)
    third = restarted.run()
    (outcome,) = third.outcomes
    assert (outcome.table, outcome.index, outcome.change) == ("public.tickets", seen.index, "created")
    assert outcome.detected_at == seen.detected_at and outcome.advised is True
    (st,) = [s for s in outcome.statements if "external_ref" in s.query]
    # 30 calls before; after, the 30 of the window that saw the index and the 30 since the restart: the
    # window after the restart is counted from the saved counters, not from the statement's lifetime (90)
    assert st.before.calls == 30 and st.after.calls == 60
    assert st.verdict == "improvement" and st.after.mean_exec_seconds < st.before.mean_exec_seconds / 2
    assert third.to_json_dict()["outcomes"][0]["verdict"] == "improvement"
    assert forgetful.run().outcomes == []  # without the state, the restart lost the before

    events = StateStore(tmp_path).index_events("svc")
    # advised by the first run: the advice began then, and that date outlives the restart
    assert seen.advised_at == first.generated_at and outcome.advised_at == first.generated_at
    relid = outcome.table_oid
    assert relid is not None and seen.table_oid == relid
    assert events == [(seen.detected_at, "public.tickets", seen.index, "created", True, first.generated_at, relid)]
    # the report carries that history for the table page, matched (by the table's oid) to the outcome it still
    # follows
    assert third.index_history == [
        IndexEvent(seen.detected_at, "public.tickets", seen.index, "created", True, first.generated_at, relid)]
    assert [(e.index, o is outcome) for e, o in table_history(third, relid, "")] == [(seen.index, True)]
    assert forgetful.run().index_history == []
    history = StateStore(tmp_path).advice("svc")
    assert history[0][:2] == (first.generated_at, "create") and history[0][3] == "c:external_ref"
    assert history[-1][:2] == (second.generated_at, "none")  # served since: nothing advised


def test_a_state_file_damaged_while_running_is_said_and_the_run_goes_on(tickets_db: str, tmp_path: Path) -> None:
    advisor = Advisor(tickets_db, "svc", SETTINGS, store=StateStore(tmp_path))
    lookups(tickets_db)
    assert not [n for n in advisor.run().notes if "advisor state" in n]
    (tmp_path / FILE_NAME).write_bytes(b"overwritten by something else\n" * 100)
    lookups(tickets_db)
    report = advisor.run()
    assert [a.action for a in report.plan.actions] == ["create"]  # the advice is unchanged
    (note,) = {n for n in report.notes if "advisor state" in n}
    assert f"advisor state write to {tmp_path / FILE_NAME} failed: file is not a database" in note
    assert "kept in memory only" in note
