"""What a source declares about itself, so the service can loop over sources without naming one.

Each source folder exports one ``SPEC: SourceSpec`` (``collectors/<source>/spec.py``);
``collectors/registry.py`` finds them. The config, service, command line, web
pages and charts read everything source-specific from it: its section's model,
its pollers, its flags, the charts it draws (as data), its section template and
the typed views its pages show, and which alert rules (``rules/``) and Grafana
dashboards (``dashboards/generate.py``) are its own, which ``dashboards/generate.py``
and ``tests/lint/source_parts.py`` loop over. Adding a source is a folder with a
spec, its template, its catalogue entries, its rules and its dashboard (or none:
a source without alerts says ``rule_groups=()``; one without a dashboard builder
gets one drawn from its charts).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from collectors.base.attention import Attention
from collectors.base.chain import Link
from collectors.base.poller import Poller, Snapshot
from collectors.base.samples import Sample
from collectors.base.settings import PollSettings

S = TypeVar("S", bound=PollSettings)
T = TypeVar("T")  # the snapshot type


@dataclass(frozen=True)
class Flag:
    """A repeatable ``dbpulse run`` flag that adds each value to a list of the source's section."""

    option: str  # "--postgres"
    metavar: str
    help: str
    field: str = "targets"  # the section's list it adds to (lists add up across file, environment and flags)
    convert: Callable[[str], Any] = str  # the flag's text -> the list item as the file would give it


@dataclass(frozen=True)
class ChartSpec:
    """One chart of a source's section on the main page, as data (``monitor/web/trends.py`` draws it).

    Lines are the recorded series of ``metric``; each is named by its ``label``'s value, or ``line`` when the
    chart draws one name. ``combine`` adds the series up per poll (per ``label`` value, else into one line).
    """

    key: str  # stable id, unique in the source (tests and links); with ``each``, "{value}" is the label's value
    title: str  # with ``each``, "{value}" is the label's value
    unit: str  # "ratio", "bytes", "seconds", "count" or a rate unit such as "/s"
    metric: str | tuple[str, ...]
    label: str = ""  # the label whose value names each line
    line: str = ""  # the one line's name, when no label names them
    match: Mapping[str, str] = field(default_factory=dict)  # only the series with these label values
    scoped: bool = False  # narrowed to the section's scope (PostgreSQL: its database), when it has one
    rate: bool = False  # a counter, drawn per second
    combine: bool = False
    optional: bool = False  # left out while nothing is recorded (a primary has no replay lag)
    threshold: str = ""  # the shipped alert whose threshold is drawn dashed (its name in the rules)
    relative: bool = False  # the threshold is a share of the ceiling (drawn only when the ceiling is known)
    ceiling: str | float | None = None  # a hard limit: a number, or the metric whose latest value it is
    ceiling_label: str = ""
    each: str = ""  # one chart per value of this label (an application pool), the ceiling matched on it

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric the chart reads: what the history must record."""
        read = (self.metric,) if isinstance(self.metric, str) else self.metric
        return (*read, self.ceiling) if isinstance(self.ceiling, str) else read


@dataclass(frozen=True)
class Degraded:
    """A source polled fine but reports parts failing (a health target's endpoints): its badge says so."""

    failing: int
    total: int
    detail: str


def _nothing(snapshot: Any) -> Sequence[Attention]:
    return ()


def _healthy(snapshot: Any) -> Degraded | None:
    return None


def _itself(snapshot: Any) -> object:
    return snapshot


def _no_links(snapshot: Any) -> Sequence[Link]:
    return ()


@dataclass(frozen=True)
class SourceSpec(Generic[S, T]):
    """Everything the service needs to know of one source."""

    name: str  # the config section, the poller's ``source``, the template's name
    title: str  # for people: "PostgreSQL"
    order: int  # its place on the main page
    settings: type[S]  # its config section's model
    pollers: Callable[[S], list[Poller]]
    snapshot: type[T]  # what its pollers return, what its section template is written for
    flags: Sequence[Flag] = ()  # the first adds targets
    env: str = ""  # a DBPULSE_* variable of space-separated targets, read like the first flag
    charts: Sequence[ChartSpec] = ()
    additive: tuple[str, ...] = ("targets",)  # the section's lists that add up across layers
    view: Callable[[T], object] = _itself  # what the section template shows (``view_of`` in the templates)
    attention: Callable[[T], Sequence[Attention]] = _nothing  # what needs attention: the main page's summary
    degraded: Callable[[T], Degraded | None] = _healthy
    links: Callable[[T], Sequence[Link]] = _no_links  # what its targets tell other sources' views (chain.py)
    # A view that also reads every target's links (the pool chain across sources); used instead of ``view``.
    joined_view: Callable[[T, Sequence[Link]], object] | None = None
    # Samples that also read every target's links (the pool chain's ratios): added to each successful poll's own
    # samples by the scheduler, from the other targets' latest links, so they are exported and recorded alike.
    joined_samples: Callable[[T, Sequence[Link]], Sequence[Sample]] | None = None
    # Its alerts: the groups of rules/*.rules.yml that are its own (None: the one group ``dbpulse.<name>``). A
    # source without alerts says so with ``()``. Its rules may read only its own and the shared metrics.
    rule_groups: tuple[str, ...] | None = None
    # Its Grafana dashboards: builder functions of dashboards/generate.py, by name (None: the one named like the
    # source if there is one, else a dashboard drawn from its ``charts``). Same metrics rule as its rules.
    dashboards: tuple[str, ...] | None = None

    @property
    def template(self) -> str:
        """Its section template (``monitor/web/templates/sections/<name>.html``: ``section`` and ``summary``)."""
        return f"sections/{self.name}.html"

    @property
    def triaged(self) -> bool:
        """Whether it finds what needs attention (its section then has a Health block, ``<name>-health-<target>``)."""
        return self.attention is not _nothing

    @property
    def alert_groups(self) -> tuple[str, ...]:
        """The names of its rule groups in rules/ (``rule_groups``, else ``dbpulse.<name>``)."""
        return (f"dbpulse.{self.name}",) if self.rule_groups is None else self.rule_groups

    @property
    def target_flag(self) -> Flag | None:
        return next((f for f in self.flags if f.field == "targets"), None)

    def of(self, snapshot: Snapshot | None) -> T | None:
        """``snapshot`` if it is this source's type, else None: the one type check the web needs."""
        return snapshot if isinstance(snapshot, self.snapshot) else None
