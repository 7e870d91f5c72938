"""The pool chain of each PgBouncer pool: the application's pool -> PgBouncer -> PostgreSQL, each link's use
against its limit, and the first link at its limit (where the queue is).

PgBouncer knows only its own links; the applications' pools and the PostgreSQL servers come from what the
other targets publish (``collectors/base/chain.py``), handed over by the page (``SourceSpec.joined_view``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from collectors.base.chain import AppPool, Endpoint, Link
from collectors.base.samples import Sample, SampleList
from collectors.pgbouncer.snapshot import Database, PgBouncerSnapshot, Pool

LINKS = ("app_pool", "pgbouncer_clients", "pgbouncer_pool", "server")  # in the order a request meets them


@dataclass(frozen=True)
class ChainLink:
    link: str  # one of LINKS
    name: str  # which pool, setting or server
    used: float | None
    limit: float | None
    limit_label: str
    waiting: int = 0  # clients queued at this link (PgBouncer's pool)
    full: bool = False  # at its limit; for PgBouncer's pool: every server in use while clients wait
    note: str = ""  # how it was matched, or why it is not known

    @property
    def ratio(self) -> float | None:
        return self.used / self.limit if self.used is not None and self.limit else None


@dataclass(frozen=True)
class ChainRow:
    pool: Pool
    links: list[ChainLink]

    @property
    def first_full(self) -> int | None:
        """The index of the first link at its limit: requests queue there (and at nothing behind it)."""
        return next((i for i, link in enumerate(self.links) if link.full), None)


@dataclass(frozen=True)
class PgBouncerView:
    snap: PgBouncerSnapshot
    chain: list[ChainRow]


def _at_limit(used: float | None, limit: float | None) -> bool:
    return used is not None and bool(limit) and used >= (limit or 0)


def app_links(snap: PgBouncerSnapshot, database: str, pools: Sequence[AppPool]) -> list[ChainLink]:
    """The applications' pools that lead to ``database``: configured (``applications``), or an application whose
    clients on that database carry its health target's name as application_name."""
    by_name = {c.application_name for c in snap.clients if c.database == database}
    out = []
    for p in pools:
        if snap.applications.get(p.target) == database:
            how = "configured"
        elif p.target not in snap.applications and p.target in by_name:
            how = "matched by application_name"
        else:
            continue
        out.append(ChainLink("app_pool", f"{p.target} {p.pool}", p.checked_out, p.capacity, "capacity",
                             full=_at_limit(p.checked_out, p.capacity), note=how))
    return out or [ChainLink("app_pool", "", None, None, "capacity",
                             note="no application pool known to lead here: set applications in this pgbouncer "
                                  "target, or name the application's health target after its application_name")]


def server_link(database: Database | None, servers: Sequence[Endpoint]) -> ChainLink:
    if database is None:
        return ChainLink("server", "", None, None, "max_connections", note="database not in SHOW DATABASES")
    where = f"{database.host or '(socket)'}:{database.port}/{database.backend_database}"
    found = next((e for e in servers if e.serves(database.host, database.port, database.backend_database)), None)
    if found is None:
        return ChainLink("server", where, None, None, "max_connections",
                         note="no watched PostgreSQL target connects to this host, port and database")
    return ChainLink("server", f"{found.target} ({where})", found.connections, found.max_connections,
                     "max_connections", full=_at_limit(found.connections, found.max_connections))


def pool_chain(snap: PgBouncerSnapshot, links: Sequence[Link]) -> PgBouncerView:
    """Each of the snapshot's pools (not ``__other__``) with its chain, from the links the other targets publish."""
    pools = [link for link in links if isinstance(link, AppPool)]
    servers = [link for link in links if isinstance(link, Endpoint)]
    used_clients = snap.client_connections
    rows = []
    for pool in snap.pools:
        database = next((d for d in snap.chain() if d.name == pool.database), None)
        size = snap.pool_size_of(pool)
        rows.append(ChainRow(pool, [
            *app_links(snap, pool.database, pools),
            ChainLink("pgbouncer_clients", "client connections", used_clients, snap.max_client_conn,
                      "max_client_conn", full=_at_limit(used_clients, snap.max_client_conn)),
            ChainLink("pgbouncer_pool", f"{pool.database}/{pool.user}", pool.servers.get("active", 0), size,
                      "pool_size", waiting=pool.clients.get("waiting", 0), full=snap.saturated(pool)),
            server_link(database, servers),
        ]))
    return PgBouncerView(snap, rows)


def chain_samples(snap: PgBouncerSnapshot, links: Sequence[Link]) -> list[Sample]:
    """``dbpulse_pgbouncer_chain_saturation_ratio``: each pool's chain as one family, a ``link`` label per link,
    the values the pool-chain view shows. Several application pools leading to one pool: the fullest (where its
    requests queue first). A link whose use or limit is not known has no series."""
    out = SampleList(target=snap.target)
    for row in pool_chain(snap, links).chain:
        ratios: dict[str, float] = {}
        for link in row.links:
            if link.ratio is not None:
                ratios[link.link] = max(ratios.get(link.link, link.ratio), link.ratio)
        for name in LINKS:
            out.add("dbpulse_pgbouncer_chain_saturation_ratio", ratios.get(name), database=row.pool.database,
                    user=row.pool.user, link=name)
    return out.samples
