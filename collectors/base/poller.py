"""What the scheduler polls: one ``Poller`` per source and target."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol

from collectors.base.samples import Sample, SampleList


class Snapshot(Protocol):
    """The latest state read from a source; turned into samples once per poll."""

    def samples(self) -> list[Sample]: ...


class Poller(ABC):
    source: str  # its source's name (the folder of collectors, SourceSpec.name), or the service's "advisor"
    target: str
    interval: float
    timeout: float
    up_metric: str | None = None  # its source's up gauge, if it has one

    @abstractmethod
    async def poll(self) -> Snapshot:
        """Read the source once. Raise on failure.

        The scheduler abandons a poll still running at ``timeout`` and cancels it in the background,
        perhaps more than once, while the next poll starts on time. So what a poll uses (a connection)
        is taken out of the poller for the poll and put back only after it succeeded: the next poll
        never waits on, nor shares, what an abandoned one holds, which closes it as it is cancelled.
        """

    def down_samples(self) -> list[Sample]:
        """Samples to export while the source is failing: its ``up_metric`` at 0 (e.g. ``dbpulse_pg_up 0``)."""
        if self.up_metric is None:
            return []
        out = SampleList(target=self.target)
        out.add(self.up_metric, 0)
        return out.samples

    async def close(self) -> None:  # noqa: B027 - optional hook, most pollers hold a connection
        """Release connections; called once at shutdown."""
