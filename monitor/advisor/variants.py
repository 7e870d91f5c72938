"""Statement variants in the advisor: one statement of the workload per pglast fingerprint.

Up to PostgreSQL 17, ``pg_stat_statements`` keeps every length of an ``IN ($1, ..., $n)`` list as its own
statement; the demo's selectin loads made 20 of them, and one plan action listed all 20. The advisor plans
the texts that share a fingerprint (and their names: libpg_query's fingerprint also ignores the digits that
end a table's name, ``variant_key``) as one statement: the heaviest variant's queryid and text, every
variant's counters added up (``collectors.postgres.statements.group_variants``). The report still names each
variant: a finding's ``queryids`` and a served statement's ``variants`` hold them all, and a variant's
statement page finds its group's plan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from collectors.base.topk import fold
from collectors.postgres.statements import StatementStat, fingerprint, group_variants, variant_key

from .findings import AdviceReport

STATEMENT_KINDS = frozenset({"n_plus_one", "slow_statement", "statement_regression"})  # a finding on one statement


@dataclass
class StatementVariants:
    """Which statements are variants of which: each group under its heaviest variant's queryid."""

    members: dict[int, list[int]] = field(default_factory=dict)  # representative -> every variant, it first
    representative: dict[int, int] = field(default_factory=dict)  # queryid -> its group's representative

    @classmethod
    def of(cls, stats: Iterable[StatementStat]) -> StatementVariants:
        stats = list(stats)
        # the fingerprint first (20 us a text); the names (variant_key, ten times that) only where it is shared
        prints = {s.queryid: fingerprint(s.query) for s in stats}
        shared = Counter(p for p in prints.values() if p is not None)

        def key(stat: StatementStat) -> int | None:
            found = prints[stat.queryid]
            return variant_key(stat.query) if found is not None and shared[found] > 1 else found

        out = cls()
        for group in group_variants(stats, key):
            if group.count > 1:
                out.members[group.total.queryid] = group.queryids
                for q in group.queryids:
                    out.representative[q] = group.total.queryid
        return out

    def grouped(self, stats: Iterable[StatementStat]) -> list[StatementStat]:
        """``stats`` with each group's variants added up into its representative, in the order they came."""
        by_group: dict[int, list[StatementStat]] = {}
        for stat in stats:
            by_group.setdefault(self.representative.get(stat.queryid, stat.queryid), []).append(stat)
        out = []
        for rep, members in by_group.items():
            if len(members) == 1 and members[0].queryid == rep:
                out.append(members[0])
                continue
            head = next((m for m in members if m.queryid == rep), members[0])
            total = fold(members, StatementStat, queryid=rep, query=head.query)
            assert total is not None
            out.append(total)
        return out

    def of_statement(self, queryid: int) -> list[int]:
        """Every variant of the statement ``queryid`` stands for (itself first), or just itself."""
        return self.members.get(queryid, [queryid])

    def others(self, queryid: int) -> list[int]:
        return self.of_statement(queryid)[1:]

    def name_them(self, report: AdviceReport) -> None:
        """Put every variant into the report: the findings' queryids, the served statements' variants, and the
        generic plan of each variant's statement page."""
        if not self.members:
            return
        for finding in report.findings:
            if not finding.queryids:
                continue
            grouped = [q for q in finding.queryids if q in self.members]
            finding.queryids = [v for q in finding.queryids for v in self.of_statement(q)]
            if finding.kind in STATEMENT_KINDS and grouped:
                finding.evidence += (f" It stands for {len(self.members[grouped[0]])} variants (the same statement "
                                     "with IN lists of other lengths), calls and time added up.")
        for action in report.plan.actions:
            for new in action.creates:
                for served in new.statements:
                    served.variants = self.others(served.queryid)
        for rep, variants in self.members.items():
            plan = report.statement_plans.get(rep)
            if plan is not None:
                for q in variants[1:]:
                    report.statement_plans.setdefault(q, plan)
