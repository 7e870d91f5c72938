"""The advisor's state survives a restart of the service itself: ``dbpulse run`` advises an index, the index
is created while it runs, dbpulse is stopped and started again on the same state directory
(``DBPULSE_STATE_DIR``), and the restarted process still reports the outcome, before against after, and shows
the index's history on the table page. test_state_restart.py proves the same of the advisor alone; this
proves the service wires the directory through (config, environment, process exit)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from monitor.web.detail import table_path
from tests.integration.advisor.test_outcomes import lookups, tickets_db
from tests.support import DbpulseProcess

__all__ = ["tickets_db"]  # the fixture, shared with the outcomes test

TARGET = "svc"


def _advice_when(svc: DbpulseProcess, ready: Callable[[dict[str, Any]], bool], timeout: float = 90) -> dict[str, Any]:
    """The target's advice report (``/advice?target=``) once ``ready`` holds for it."""
    deadline = time.monotonic() + timeout
    report: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, body = svc.get(f"/advice?target={TARGET}")
        if status == 200:
            report = json.loads(body)
            if ready(report):
                return report
        time.sleep(0.5)
    raise AssertionError(f"no advice report as expected within {timeout} s: {str(report)[:2000]}\n{svc.log}")


def _creates(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in report["plan"]["actions"] if a["action"] == "create"]


def _created_outcomes(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in report["outcomes"] if o["change"] == "created"]


def _run(dsn: str, state_dir: Path) -> DbpulseProcess:
    return DbpulseProcess("--postgres", f"{TARGET}={dsn}", "--interval", "1", "--advisor-interval", "2",
                          env={"DBPULSE_STATE_DIR": str(state_dir)})


def test_a_restarted_service_still_reports_the_outcome_and_the_index_history(tickets_db: str,
                                                                             tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    lookups(tickets_db)
    with _run(tickets_db, state_dir) as svc:
        first = _advice_when(svc, lambda r: bool(_creates(r)))
        (create,) = _creates(first)
        with psycopg.connect(tickets_db, autocommit=True) as conn:
            conn.execute(create["steps"][0])
        lookups(tickets_db)
        before = _advice_when(svc, lambda r: any(o["verdict"] == "improvement" for o in _created_outcomes(r)))
    (seen,) = _created_outcomes(before)
    assert (state_dir / "advisor.sqlite3").is_file()

    lookups(tickets_db)  # statements run while dbpulse was down are still counted after the index
    with _run(tickets_db, state_dir) as svc:
        after = _advice_when(svc, lambda r: bool(_created_outcomes(r)))
        (outcome,) = _created_outcomes(after)
        assert (outcome["table"], outcome["index"], outcome["advised"]) == ("public.tickets", seen["index"], True)
        assert outcome["detected_at"] == seen["detected_at"]  # the first-seen time is the saved one
        assert outcome["verdict"] == "improvement"
        page = svc.wait_for_page("/" + table_path(TARGET, "public", "tickets"), 'id="index-history"')
    history = page.split('id="index-history"', 1)[1].split("</section>", 1)[0]
    advised = datetime.fromisoformat(first["generated_at"]).strftime("%-d %b %Y %H:%M UTC")
    assert outcome["advised_at"] == first["generated_at"]  # the advice began with the first report
    assert f"{seen['index']}</span> advised {advised}, created " in history
    assert "x faster since (improvement)" in history  # the outcome in words, across the restart


def test_without_a_state_directory_a_restart_forgets_the_change(tickets_db: str, tmp_path: Path) -> None:
    """The control: the same steps with memory only lose the before, so the test above can fail."""
    lookups(tickets_db)
    args = ("--postgres", f"{TARGET}={tickets_db}", "--interval", "1", "--advisor-interval", "2")
    with DbpulseProcess(*args) as svc:
        (create,) = _creates(_advice_when(svc, lambda r: bool(_creates(r))))
        with psycopg.connect(tickets_db, autocommit=True) as conn:
            conn.execute(create["steps"][0])
        lookups(tickets_db)
        _advice_when(svc, lambda r: bool(_created_outcomes(r)))
    lookups(tickets_db)
    with DbpulseProcess(*args) as svc:
        report = _advice_when(svc, lambda r: r.get("generated_at") is not None)
        assert _created_outcomes(report) == []
