"""What the targets tell each other's views and samples: the links of a connection chain (``collectors/base/chain.py``).

A source whose view joins other targets' links (PgBouncer's pool chain) declares ``SourceSpec.joined_view`` for the
page and ``SourceSpec.joined_samples`` for its metrics; both read ``links_of`` every target's latest poll.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from collectors.base.chain import Link
from collectors.base.poller import Poller, Snapshot
from collectors.base.redact import redact
from collectors.base.samples import Sample
from collectors.registry import source

log = logging.getLogger("dbpulse.scheduler")


class Polled(Protocol):
    """What is read of a target's state (``scheduler.SourceState``, which imports this module)."""

    poller: Poller
    snapshot: Snapshot | None
    up: bool


def links_of(states: Sequence[Polled]) -> list[Link]:
    """What every target that answered its last poll tells the other sources' views (``SourceSpec.links``)."""
    return [link for s in states if s.up and (spec := source(s.poller.source)) is not None
            and (snap := spec.of(s.snapshot)) is not None for link in spec.links(snap)]


def joined_samples(source_name: str, snapshot: Snapshot, states: Sequence[Polled]) -> list[Sample]:
    """The samples ``snapshot``'s source joins from the other targets' links (none for most sources)."""
    spec = source(source_name)
    if spec is None or spec.joined_samples is None or (snap := spec.of(snapshot)) is None:
        return []
    try:
        return list(spec.joined_samples(snap, links_of(states)))
    except Exception as exc:  # a join that fails leaves the poll's own samples standing
        log.warning("%s: joining the other targets' links failed: %s", source_name, redact(repr(exc)))
        return []
