"""An advisor run in a forked child (advisor.run_in_child): the same object runs with the same state, carried
from child to child; its failures reach the service as they are; shared objects are used, not copied; and
cancel ends the child."""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import UTC, datetime

import pytest

from collectors.postgres.settings import PostgresSettings
from monitor.advisor.advisor import AdvisorConnectionError
from monitor.advisor.child import ChildFailed, ChildRunner
from monitor.advisor.findings import AdviceReport
from monitor.advisor.poller import AdvisorPoller, pollers
from monitor.advisor.settings import AdvisorSettings

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX's")


class CountingAdvisor:
    """Remembers its runs (state, as an advisor's previous counters are) and says where it ran."""

    target = "shop"

    def __init__(self, lock: threading.Lock, fail_at: int = 0) -> None:
        self.lock = lock  # does not pickle: shared with the child by reference
        self.fail_at = fail_at
        self.runs = 0
        self.cancelled = False

    def run(self) -> AdviceReport:
        self.runs += 1
        if self.runs == self.fail_at:
            raise AdvisorConnectionError("cannot connect to shop: refused")
        with self.lock:
            report = AdviceReport(target="shop", generated_at=datetime.now(UTC), stats_reset=None)
        report.notes.append(f"run {self.runs} in process {os.getpid()}")
        return report

    def cancel(self) -> None:
        self.cancelled = True


async def test_each_run_is_a_child_and_the_state_goes_on() -> None:
    lock = threading.Lock()
    advisor = CountingAdvisor(lock)
    poller = AdvisorPoller(advisor, interval=60, timeout=30, in_child=True, shared=(lock,))  # type: ignore[arg-type]
    first = (await poller.poll()).report.notes[0]
    assert first.startswith("run 1 in process ") and first != f"run 1 in process {os.getpid()}"
    assert (await poller.poll()).report.notes[0].startswith("run 2 in process ")
    assert advisor.runs == 0  # the service's copy never ran: the memory of the runs was the children's


def test_a_failure_is_raised_as_it_was_and_its_state_kept() -> None:
    lock = threading.Lock()
    child = ChildRunner(CountingAdvisor(lock, fail_at=2), (lock,))
    assert child.run(CountingAdvisor.run).notes[0].startswith("run 1 ")
    with pytest.raises(AdvisorConnectionError, match="cannot connect to shop: refused"):  # as raised, in the child
        child.run(CountingAdvisor.run)
    assert child.run(CountingAdvisor.run).notes[0].startswith("run 3 ")  # the failed run counted, as in a thread


def test_a_cancelled_child_ends_and_its_run_fails() -> None:
    class Sleeper:
        target = "shop"

        def run(self) -> AdviceReport:
            time.sleep(60)
            raise AssertionError("not cancelled")

    child = ChildRunner(Sleeper(), ())
    failure: list[BaseException] = []

    def run() -> None:
        try:
            child.run(lambda advisor: advisor.run())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    while child._pid is None:
        time.sleep(0.01)
    child.cancel()
    thread.join(30)
    assert not thread.is_alive()
    assert len(failure) == 1 and isinstance(failure[0], ChildFailed) and "signal 15" in str(failure[0])


def test_a_child_stuck_on_a_lock_held_at_the_fork_is_ended_at_its_limit() -> None:
    """A forked child inherits a lock another thread held at the fork: it never gets it. Without the limit the run,
    and the advisor's thread with it, waits for ever; with it the child is ended, the run fails, and the next goes
    on from the state before."""
    lock = threading.Lock()
    child = ChildRunner(CountingAdvisor(lock), (lock,))
    assert child.run(CountingAdvisor.run, limit=30).notes[0].startswith("run 1 ")
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(child.run(CountingAdvisor.run, limit=1.0))
        except BaseException as exc:
            outcome.append(exc)

    with lock:  # held by this thread while the child is forked (as a service thread might hold an I/O lock)
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(20)
    assert not thread.is_alive(), "the stuck child was not ended"
    (failure,) = outcome
    assert isinstance(failure, ChildFailed) and "ran past its limit of 1 s" in str(failure)
    assert child.run(CountingAdvisor.run, limit=30).notes[0].startswith("run 2 ")  # the stuck run left no state


def test_a_connection_the_service_closes_during_a_run_is_closed_for_its_peer() -> None:
    """The child lets go of the service's sockets: a keep-alive connection the service closes while a run lasts
    reaches its peer as EOF at once, not when the child ends (a scraper reusing it would wait until then)."""
    class Sleeper:
        target = "shop"

        def run(self) -> AdviceReport:
            time.sleep(60)
            raise AssertionError("not cancelled")

    served, peer = socket.socketpair()
    child = ChildRunner(Sleeper(), ())
    ended: list[BaseException] = []

    def run() -> None:
        try:
            child.run(Sleeper.run)
        except BaseException as exc:
            ended.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        while child._pid is None:
            time.sleep(0.01)
        time.sleep(0.5)  # the child is past its start
        served.close()  # the service ends the connection
        peer.settimeout(20)
        assert peer.recv(1) == b"", "the peer got EOF"  # before: a timeout, the child's copy kept it open
    finally:
        child.cancel()
        thread.join(30)
        peer.close()
    assert len(ended) == 1 and isinstance(ended[0], ChildFailed)


def test_the_service_runs_its_advisor_in_a_child_unless_told_otherwise() -> None:
    sections = {"postgres": PostgresSettings.model_validate(
        {"targets": [{"name": "shop", "dsn": "postgresql://u@127.0.0.1:1/shop"}]})}
    (default,) = pollers(AdvisorSettings(), sections)
    (threaded,) = pollers(AdvisorSettings(run_in_child=False), sections)
    assert isinstance(default, AdvisorPoller) and default._child is not None
    assert isinstance(threaded, AdvisorPoller) and threaded._child is None
