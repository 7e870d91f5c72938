"""One advisor per database of a target that watches its cluster's other databases (``databases`` set).

Each run advises one database, in turn: the DSN's, then each other database watched (in name order), so
a run costs what one database's run costs however many there are; every database's last report is kept
and published. The databases are the collector's selection (``collectors/postgres/discovery.py``),
looked up again on the target's ``discovery_interval``: a new database gets its advisor, a dropped one's
advisor and report are retired. A database's report is named ``<target>/<database>`` (its ``target``
label, its ``/advice?target=``); the DSN's keeps the target's own name.

Advising a database needs ``pg_stat_statements`` (and, to verify indexes, HypoPG) created in it: the
advisor reads the statements of the database it is connected to.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from collectors.postgres.access import PasswordSource
from collectors.postgres.discovery import DISCOVERY, DatabaseSelection, select
from monitor.advisor.advisor import Advisor, Thresholds
from monitor.advisor.findings import AdviceReport

log = logging.getLogger("dbpulse.advisor")


def sub_target(target: str, datname: str) -> str:
    """The name of one database's advice: ``<target>/<database>``."""
    return f"{target}/{datname}"


class DatabaseAdvisors:
    """The advisors of one target's databases, run one per ``run`` (see the module's docstring)."""

    def __init__(self, main: Advisor, selection: DatabaseSelection, thresholds: Thresholds,
                 password: PasswordSource = None) -> None:
        self.main = main
        self.target = main.target
        self.selection = selection
        self.clock: Callable[[], float] = time.monotonic
        self._thresholds = thresholds
        self._password = password
        self._advisors: dict[str, Advisor] = {}  # the other databases'
        self._reports: dict[str, AdviceReport] = {}  # database ('' for the DSN's) -> last report
        self._discovered_at: float | None = None
        self._next = 0  # the turn: 0 the DSN's database, i the i-th other one

    def cancel(self) -> None:
        self.main.cancel()
        for advisor in list(self._advisors.values()):
            advisor.cancel()

    def run(self) -> tuple[AdviceReport, tuple[AdviceReport, ...]]:
        """Advise the database whose turn it is; every database's last report (the DSN's, then the others)."""
        self._discover()
        names = sorted(self._advisors)
        turn = self._next % (len(names) + 1) if "" in self._reports else 0  # the DSN's first, until it succeeds
        self._next = turn + 1
        if turn == 0:
            self._reports[""] = self.main.run()
        else:
            name = names[turn - 1]
            try:
                self._reports[name] = self._advisors[name].run()
            except Exception as exc:  # one database failing does not stop the others' advice
                log.warning("%s: advisor run on database %s failed: %s", self.target, name, exc)
        others = tuple(self._reports[n] for n in names if n in self._reports)
        return self._reports[""], others

    def _discover(self) -> None:
        now = self.clock()
        if self._discovered_at is not None and now - self._discovered_at < self.selection.discovery_interval:
            return
        with self.main.connect() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(DISCOVERY.required_sql(conn.info.server_version).encode())
            found = select(cur.fetchall(), self.selection, conn.info.dbname)
        self._discovered_at = now
        for name in [n for n in self._advisors if n not in found.watched]:
            del self._advisors[name]
            self._reports.pop(name, None)
        for name in found.watched:
            if name not in self._advisors:
                dsn = make_conninfo(self.main.dsn, dbname=name)
                self._advisors[name] = Advisor(dsn, sub_target(self.target, name), self._thresholds,
                                               password=self._password, store=self.main.store)
