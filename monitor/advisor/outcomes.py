"""Outcomes: what changed for a table's statements after one of its indexes appeared or vanished.

The service's ``Advisor`` is kept across runs and keeps an ``OutcomeTracker``:
per statement, its calls, execution time, rows and blocks in each advisor
window (the ``pg_stat_statements`` deltas between two runs, a bounded number
of windows), and per table the OIDs of its valid indexes. When a run sees a
new or vanished index OID on a table (any index, advised by dbpulse or not),
it records the change with a baseline of that table's statements (their
windows before this one) and follows them in the windows from then on:
before against after, judged per statement as an improvement, a regression,
unchanged, or too few calls to tell.

Separately, a statement whose mean time in the last window rose several-fold
against its own baseline (the median of its earlier windows) is a regression
whatever the cause (a deploy, a plan flip, data growth).

The window in which the change was seen is counted as *after*: it may hold
calls from before the change, which dilutes the difference but never invents
one. The one-shot command has no history, so it has no outcomes.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from collectors.postgres.statements import StatementStat

from .catalog import Catalog, Index, TableId
from .settings import Thresholds

Verdict = Literal["improvement", "regression", "unchanged", "insufficient_data"]
VERDICTS: tuple[Verdict, ...] = ("improvement", "regression", "unchanged", "insufficient_data")
Change = Literal["created", "dropped"]
CHANGES: tuple[Change, ...] = ("created", "dropped")
QUERY_CHARS = 300


@dataclass(frozen=True, slots=True)
class Window:
    """One statement's counters over one advisor window."""

    calls: int
    exec_seconds: float
    rows: int
    blocks: int  # shared blocks hit + read

    @property
    def mean_exec_seconds(self) -> float:
        return self.exec_seconds / self.calls if self.calls else 0.0

    def to_json_dict(self) -> dict[str, Any]:
        calls = max(self.calls, 1)
        return {"calls": self.calls, "mean_exec_seconds": round(self.mean_exec_seconds, 9),
                "rows_per_call": round(self.rows / calls, 3), "blocks_per_call": round(self.blocks / calls, 3)}


def merged(windows: Iterable[Window]) -> Window:
    calls = exec_s = rows = blocks = 0.0
    for w in windows:
        calls += w.calls
        exec_s += w.exec_seconds
        rows += w.rows
        blocks += w.blocks
    return Window(int(calls), exec_s, int(rows), int(blocks))


AdviceKey = tuple[str, str]  # (create, "<table oid>\t<key signature>") or (drop, "<index oid>")


def advice_key(action: str, oid: int | None, subject: object = None) -> AdviceKey:
    """One key for a piece of advice, as remembered and as read back from the store's advice rows: a create by
    its table oid and key signature (a tuple, or the store's tab-joined text), a drop by its index oid."""
    if action == "drop":
        return ("drop", str(subject if oid is None else oid))
    signature = subject if isinstance(subject, str) else "\t".join(subject)  # type: ignore[arg-type]
    return ("create", f"{oid}\t{signature}")


@dataclass
class StatementOutcome:
    queryid: int
    query: str
    before: Window
    after: Window
    verdict: Verdict

    @property
    def ratio(self) -> float | None:
        """after / before mean time."""
        if self.before.mean_exec_seconds <= 0 or not self.after.calls:
            return None
        return self.after.mean_exec_seconds / self.before.mean_exec_seconds

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"queryid": self.queryid, "query": self.query, "before": self.before.to_json_dict(),
                               "after": self.after.to_json_dict(), "verdict": self.verdict}
        if self.ratio is not None:
            out["mean_time_ratio"] = round(self.ratio, 4)
        return out


@dataclass
class Outcome:
    """An index that appeared or vanished on a table, and its statements before against after."""

    table: str
    index: str
    change: Change
    detected_at: datetime
    advised: bool  # the plan of the run before the change advised exactly this
    statements: list[StatementOutcome] = field(default_factory=list)
    advised_at: datetime | None = None  # when that advice began (the first of the runs that kept advising it)
    table_oid: int | None = None  # the table by oid, how it is matched (``table`` displays it)

    def concerns(self, relid: int) -> bool:
        return self.table_oid == relid

    @property
    def verdict(self) -> Verdict:
        verdicts = {s.verdict for s in self.statements}
        order: tuple[Verdict, ...] = ("regression", "improvement", "unchanged")
        for v in order:
            if v in verdicts:
                return v
        return "insufficient_data"

    @property
    def speedup(self) -> float | None:
        """Before / after mean time over the statements measured on both sides, weighted by their calls since
        the change (the time those calls took against the time they would have taken before); > 1 is faster."""
        measured = [s for s in self.statements if s.after.calls and s.before.calls]
        after = sum(s.after.exec_seconds for s in measured)
        if after <= 0:
            return None
        return sum(s.after.calls * s.before.mean_exec_seconds for s in measured) / after

    def in_words(self) -> str:
        """The outcome as the history line says it, from its verdict: "2 statements 12x faster since", "1
        statement slower since", … Only statements measured on both sides are counted."""
        def counted(n: int) -> str:
            return f"{n} statement{'' if n == 1 else 's'}"
        by_verdict = {v: sum(1 for s in self.statements if s.verdict == v) for v in ("improvement", "regression")}
        measured = sum(1 for s in self.statements if s.after.calls and s.before.calls)
        speedup = self.speedup
        if self.verdict == "regression":
            faster = by_verdict["improvement"]
            return f"{counted(by_verdict['regression'])} slower since" + (f", {faster} faster" if faster else "")
        if self.verdict == "improvement":
            if speedup is not None and speedup >= 1:
                return f"{counted(measured)} {speedup:.3g}x faster since"
            return f"{counted(by_verdict['improvement'])} faster since"
        if self.verdict == "unchanged":
            return f"{counted(measured)} unchanged since"
        return f"{counted(len(self.statements))} followed, too few calls since to judge"

    def to_json_dict(self) -> dict[str, Any]:
        relid = {} if self.table_oid is None else {"relid": self.table_oid}
        return {"table": self.table, **relid, "index": self.index, "change": self.change,
                "detected_at": self.detected_at.isoformat(), "advised": self.advised,
                "advised_at": self.advised_at.isoformat() if self.advised_at else None, "verdict": self.verdict,
                "statements": [s.to_json_dict() for s in self.statements]}


@dataclass(frozen=True)
class Regression:
    """A statement whose mean time rose several-fold: after an index change, or against its own baseline."""

    queryid: int
    query: str
    table: str  # qualified name, for display
    baseline: Window
    current: Window
    cause: str  # one line for people
    table_id: TableId | None = None  # the table (None: none of the statement's tables is known)


@dataclass
class _Followed:
    outcome: Outcome
    table_oid: int
    before: dict[int, Window]
    after: dict[int, list[Window]]
    until: datetime  # windows after this are no longer added


@dataclass(frozen=True)
class _IndexChange:
    """An index that appeared on or left a table since the previous run."""

    table: str  # qualified name, for display
    table_oid: int
    index: str
    change: Change
    advised: bool  # the previous plan advised it
    advised_at: datetime | None = None  # when that advice began


@dataclass(frozen=True)
class _Seen:
    """This run's time, and the statements' windows before and in it."""

    now: datetime
    previous: Mapping[int, Sequence[tuple[int, Window]]]
    current: Mapping[int, Window]


@dataclass
class OutcomeTracker:
    """Per-statement windows and per-table index OIDs across advisor runs (the service's memory)."""

    settings: Thresholds
    # queryid -> its last outcome_windows (run, window), oldest first: a tuple, not a deque (a deque's first block
    # is about 600 bytes: with thousands of statements, most of this memory)
    windows: dict[int, tuple[tuple[int, Window], ...]] = field(default_factory=dict)
    runs: int = 0
    changed_at: dict[int, int] = field(default_factory=dict)  # table oid -> run that saw its last index change
    texts: dict[int, str] = field(default_factory=dict)
    indexes: dict[int, dict[int, str]] | None = None  # table oid -> {index oid: qualified name}
    followed: list[_Followed] = field(default_factory=list)
    advised_creates: set[tuple[int, tuple[str, ...]]] = field(default_factory=set)  # (table oid, key signature)
    advised_drops: set[int] = field(default_factory=set)  # index oids
    advice_since: dict[AdviceKey, datetime] = field(default_factory=dict)  # when each piece of advice began

    def update(self, window_stats: list[StatementStat], tables_of: Mapping[int, set[int]], cat: Catalog,
               now: datetime) -> tuple[list[Outcome], list[Regression]]:
        """Record this run's window; return the outcomes to report and the regressions found."""
        s = self.settings
        current = {st.queryid: Window(st.calls, st.exec_seconds, st.rows, st.blks_hit + st.blks_read)
                   for st in window_stats if st.calls > 0}
        for st in window_stats:
            self.texts[st.queryid] = st.query[:QUERY_CHARS]
        self.runs += 1
        previous = dict(self.windows)
        for q, w in current.items():
            self.windows[q] = (*self.windows.get(q, ()), (self.runs, w))[-s.outcome_windows:]
        for q in [q for q in self.windows if q not in tables_of and q not in current]:
            del self.windows[q]  # left the workload we read: forget it, memory stays bounded
            self.texts.pop(q, None)

        statements_of: dict[int, list[int]] = {}
        for q, tables in tables_of.items():
            for oid in tables:
                statements_of.setdefault(oid, []).append(q)

        now_indexes = _valid_indexes(cat)
        seen = _Seen(now, previous, current)
        if self.indexes is not None:
            for table_oid, members in now_indexes.items():
                before_members = self.indexes.get(table_oid)
                if before_members is None:
                    continue  # a new table: nothing to compare with
                table = cat.tables[table_oid]
                for oid, name in members.items():
                    if oid not in before_members:
                        index = next(i for i in cat.indexes if i.oid == oid)
                        key = (table_oid, index.key_signature())
                        advised = key in self.advised_creates
                        since = self.advice_since.get(advice_key("create", *key)) if advised else None
                        self._follow(_IndexChange(table.qualified, table_oid, name, "created", advised, since),
                                     statements_of.get(table_oid, []), seen)
                for oid, name in before_members.items():
                    if oid not in members:
                        dropped = oid in self.advised_drops
                        since = self.advice_since.get(advice_key("drop", oid)) if dropped else None
                        self._follow(_IndexChange(table.qualified, table_oid, name, "dropped", dropped, since),
                                     statements_of.get(table_oid, []), seen)
        self.indexes = now_indexes

        keep_after = now - timedelta(seconds=s.outcome_keep_seconds)
        self.followed = [f for f in self.followed if f.outcome.detected_at >= keep_after]
        for f in self.followed:
            if f.outcome.detected_at < now <= f.until:
                for q in f.before:
                    if q in current:
                        f.after.setdefault(q, []).append(current[q])
            f.outcome.statements = self._judge(f)
        outcomes = [f.outcome for f in self.followed]
        return outcomes, self._regressions(self.followed, current, previous, tables_of, cat)

    def remember_advice(self, creates: Iterable[tuple[int, tuple[str, ...]]], drops: Iterable[int],
                        at: datetime) -> None:
        """What the last plan advised, so a change that follows it is marked ``advised``, and since when."""
        self.advised_creates = set(creates)
        self.advised_drops = set(drops)
        keys = [advice_key("create", *c) for c in self.advised_creates]
        keys += [advice_key("drop", d) for d in self.advised_drops]
        self.advice_since = {k: self.advice_since.get(k, at) for k in keys}

    def _follow(self, change: _IndexChange, statements: list[int], seen: _Seen) -> None:
        s = self.settings
        # The baseline: the statement's windows since the table's previous index change (the window that
        # saw it included), not across it.
        since = self.changed_at.get(change.table_oid, 0)
        before: dict[int, Window] = {}
        for q in statements:
            windows = [w for run, w in seen.previous.get(q, []) if run >= since]
            if windows:
                before[q] = merged(windows[-s.outcome_baseline_windows:])
        self.changed_at[change.table_oid] = self.runs
        after = {q: [seen.current[q]] for q in before if q in seen.current}
        outcome = Outcome(change.table, change.index, change.change, seen.now, change.advised,
                          advised_at=change.advised_at, table_oid=change.table_oid)
        self.followed.append(_Followed(outcome, change.table_oid, before, after,
                                       seen.now + timedelta(seconds=s.outcome_follow_seconds)))

    def _judge(self, f: _Followed) -> list[StatementOutcome]:
        out = []
        for q, before in sorted(f.before.items(), key=lambda kv: -kv[1].exec_seconds):
            after = merged(f.after.get(q, []))
            out.append(StatementOutcome(q, self.texts.get(q, ""), before, after, self.verdict(before, after)))
        return out

    def verdict(self, before: Window, after: Window) -> Verdict:
        s = self.settings
        if before.calls < s.outcome_min_calls or after.calls < s.outcome_min_calls:
            return "insufficient_data"
        b, a = before.mean_exec_seconds, after.mean_exec_seconds
        if abs(a - b) < s.outcome_min_delta_seconds:
            return "unchanged"
        if a >= b * s.outcome_regression_ratio:
            return "regression"
        if a <= b * s.outcome_improvement_ratio:
            return "improvement"
        return "unchanged"

    def _regressions(self, followed: list[_Followed], current: Mapping[int, Window],
                     previous: Mapping[int, Sequence[tuple[int, Window]]], tables_of: Mapping[int, set[int]],
                     cat: Catalog) -> list[Regression]:
        s = self.settings
        found: dict[int, Regression] = {}
        for f in followed:
            outcome, table = f.outcome, cat.tables.get(f.table_oid)
            for st in outcome.statements:
                now_w = current.get(st.queryid)
                still = now_w is not None and now_w.calls >= s.outcome_min_calls and \
                    now_w.mean_exec_seconds >= st.before.mean_exec_seconds * s.outcome_regression_ratio
                if st.verdict == "regression" and still:
                    cause = (f"after index {outcome.index} was {outcome.change} on {outcome.table} "
                             f"({outcome.detected_at.replace(microsecond=0).isoformat()})")
                    found.setdefault(st.queryid, Regression(st.queryid, st.query, outcome.table, st.before,
                                                            st.after, cause, table.id if table else None))
        for q, now_w in current.items():
            if q in found or now_w.calls < s.regression_min_calls:
                continue
            earlier = [w for _, w in previous.get(q, []) if w.calls >= s.regression_min_calls]
            if len(earlier) < s.regression_min_windows:
                continue
            baseline = statistics.median(w.mean_exec_seconds for w in earlier)
            mean = now_w.mean_exec_seconds
            if mean >= baseline * s.regression_factor and mean - baseline >= s.outcome_min_delta_seconds:
                on = next((cat.tables[t] for t in sorted(tables_of.get(q, ())) if t in cat.tables), None)
                found[q] = Regression(q, self.texts.get(q, ""), on.qualified if on else "", merged(earlier), now_w,
                                      f"against its own baseline (median of {len(earlier)} earlier windows), "
                                      "with no index change on its tables: a deploy, a plan change or data growth",
                                      on.id if on else None)
        return sorted(found.values(), key=lambda r: -r.current.exec_seconds)


def _valid_indexes(cat: Catalog) -> dict[int, dict[int, str]]:
    out: dict[int, dict[int, str]] = {oid: {} for oid in cat.tables}
    for index in cat.indexes:
        if _counts(index) and index.table_oid in out:
            out[index.table_oid][index.oid] = index.qualified
    return out


def _counts(index: Index) -> bool:
    """An index plans can use: valid, ready, not still being built."""
    return index.is_valid and index.is_ready and not index.building
