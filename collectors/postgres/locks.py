"""Lock waits and blocking chains as one PostgreSQL poll read them.

``LOCK_WAITS`` and ``LOCK_BLOCKERS`` in ``queries.py`` run only while a
session waits on a lock. A chain is told by its root blocker: the session
everyone in it waits for, directly or behind another waiter. Roots are
exported grouped by ``application_name`` and state (never by pid); the UI
lists them one by one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.base.samples import OTHER, SampleList


@dataclass(frozen=True)
class LockWaitRow:
    locktype: str
    mode: str
    waiting: int = 0
    longest_wait_seconds: float | None = None


@dataclass(frozen=True)
class BlockerRow:
    pid: int  # 0: a prepared transaction
    application_name: str = ""
    state: str = "unknown"
    xact_age_seconds: float | None = None
    blocked_directly: int = 0
    blocked_total: int = 0  # sessions held up, directly or queued behind others
    longest_wait_seconds: float | None = None
    query: str = ""  # the root's current or last statement (untrusted text, for the UI)


@dataclass
class Locks:
    waits: list[LockWaitRow] = field(default_factory=list)
    blockers: list[BlockerRow] = field(default_factory=list)  # worst first

    @property
    def longest_wait_seconds(self) -> float:
        return max((w.longest_wait_seconds or 0.0 for w in self.waits), default=0.0)

    def grouped(self, top_applications: int) -> dict[tuple[str, str], tuple[int, int, float | None]]:
        """(application_name, state) -> (roots, sessions held up, oldest root transaction age);
        applications beyond the top ones (by sessions held up) as __other__."""
        held: dict[str, int] = {}
        for b in self.blockers:
            held[b.application_name] = held.get(b.application_name, 0) + b.blocked_total
        top = set(sorted(held, key=lambda a: (-held[a], a))[:top_applications])
        out: dict[tuple[str, str], tuple[int, int, float | None]] = {}
        for b in self.blockers:
            key = (b.application_name if b.application_name in top else OTHER, b.state)
            roots, sessions, age = out.get(key, (0, 0, None))
            ages = [a for a in (age, b.xact_age_seconds) if a is not None]
            out[key] = (roots + 1, sessions + b.blocked_total, max(ages) if ages else None)
        return out

    def add_samples(self, out: SampleList, top_applications: int) -> None:
        out.add("dbpulse_pg_lock_wait_longest_seconds", self.longest_wait_seconds)
        for w in self.waits:
            out.add("dbpulse_pg_lock_waits", w.waiting, locktype=w.locktype, mode=w.mode)
        for (app, state), (roots, sessions, age) in sorted(self.grouped(top_applications).items()):
            labels = {"application_name": app or "(none)", "state": state}
            out.add("dbpulse_pg_lock_blockers", roots, **labels)
            out.add("dbpulse_pg_lock_blocked_sessions", sessions, **labels)
            out.add("dbpulse_pg_lock_blocker_transaction_age_seconds", age, **labels)
