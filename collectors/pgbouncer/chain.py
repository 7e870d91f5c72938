"""The pool chain of each PgBouncer pool: the application's pool -> PgBouncer -> PostgreSQL, each link's use
against its limit, and the first link at its limit (where the queue is).

PgBouncer knows only its own links; the applications' pools and the PostgreSQL servers come from what the
other targets publish (``collectors/base/chain.py``), handed over by the page (``SourceSpec.joined_view``).
From the same links, the configuration checks (``imbalances``): whether the capacities configured along the chain
can fit at all (the applications' pools against max_client_conn, PgBouncer's pools against max_connections, and
in session mode the applications' pools against pool_size), each warning with its numbers and the setting to change.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from collectors.base.chain import AppPool, Endpoint, Link
from collectors.base.samples import Sample, SampleList
from collectors.pgbouncer.snapshot import Database, PgBouncerSnapshot, Pool

LINKS = ("app_pool", "pgbouncer_clients", "pgbouncer_pool", "server")  # in the order a request meets them
# The configuration checks of the chain (``imbalances``): the capacities of two links that cannot fit.
CHECKS = ("app_pools_over_max_client_conn", "pgbouncer_pools_over_max_connections",
          "session_app_pools_over_pool_size")

log = logging.getLogger("dbpulse.pgbouncer")


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
class Imbalance:
    """One configuration check of the chain: what the links in front can ask of the link behind, against what
    it can serve. ``demand > capacity`` is a warning: the capacities cannot fit even before any load."""

    check: str  # one of CHECKS
    subject: str  # "" (the whole PgBouncer), a PgBouncer database, or the PostgreSQL target
    demand: int
    capacity: int
    text: str  # the numbers and the setting to change, as printed

    @property
    def imbalanced(self) -> bool:
        return self.demand > self.capacity


@dataclass(frozen=True)
class PgBouncerView:
    snap: PgBouncerSnapshot
    chain: list[ChainRow]
    checks: list[Imbalance] = field(default_factory=list)

    @property
    def warnings(self) -> list[Imbalance]:
        return [c for c in self.checks if c.imbalanced]


def _at_limit(used: float | None, limit: float | None) -> bool:
    return used is not None and bool(limit) and used >= (limit or 0)


def matched_pools(snap: PgBouncerSnapshot, database: str, pools: Sequence[AppPool]) -> list[tuple[AppPool, str]]:
    """The applications' pools that lead to ``database``, each with how it was matched: configured
    (``applications``), or an application whose clients on that database carry its health target's name as
    application_name."""
    by_name = {c.application_name for c in snap.clients if c.database == database}
    out = []
    for p in pools:
        if snap.applications.get(p.target) == database:
            out.append((p, "configured"))
        elif p.target not in snap.applications and p.target in by_name:
            out.append((p, "matched by application_name"))
    return out


def app_links(snap: PgBouncerSnapshot, database: str, pools: Sequence[AppPool]) -> list[ChainLink]:
    out = [ChainLink("app_pool", f"{p.target} {p.pool}", p.checked_out, p.capacity, "capacity",
                     full=_at_limit(p.checked_out, p.capacity), note=how)
           for p, how in matched_pools(snap, database, pools)]
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


def _app_pools(snap: PgBouncerSnapshot, database: str, pools: Sequence[AppPool]) -> list[AppPool]:
    """The application pools leading to ``database`` whose capacity is known."""
    return [p for p, _ in matched_pools(snap, database, pools) if p.capacity is not None]


def _capacity(pools: Sequence[AppPool]) -> int:
    return int(sum(p.capacity or 0 for p in pools))


def _listed(pools: Sequence[AppPool]) -> str:
    """``api pool: 5; worker pool: 10``: each application pool's pool_size + max_overflow."""
    return "; ".join(f"{p.target} {p.pool}: {int(p.capacity or 0)}" for p in pools)


def server_pools(snap: PgBouncerSnapshot, database: Database) -> int:
    """The most server connections the database's pools can open: (pool_size + reserve_pool) per pool, capped by
    the database's max_db_connections (its SHOW DATABASES max_connections; 0 is no cap)."""
    most = (database.pool_size + database.reserve_pool_size) * snap.pools_of(database)
    return min(most, database.max_connections) if database.max_connections else most


def _server_of(database: Database, servers: Sequence[Endpoint]) -> Endpoint | None:
    """The watched PostgreSQL target on the server the database leads to (any of its databases: the limits are
    the server's); the first such target when several watch it."""
    return next((e for e in servers if e.same_server(database.host, database.port)), None)


def _clients_check(snap: PgBouncerSnapshot, by_database: dict[str, list[AppPool]]) -> list[Imbalance]:
    apps = list({(p.target, p.pool): p for pools in by_database.values() for p in pools}.values())
    if not apps or snap.max_client_conn is None:
        return []
    total = _capacity(apps)
    text = (f"PgBouncer {snap.target}: the application pools leading to it can open {total} client connections "
            f"(pool_size + max_overflow of {_listed(apps)}), above max_client_conn {snap.max_client_conn}: "
            f"clients beyond it are refused. Raise max_client_conn in pgbouncer.ini to at least {total} plus "
            f"the other clients (dbpulse's admin connection is one), or lower the applications' pool_size or "
            f"max_overflow.")
    return [Imbalance(CHECKS[0], "", total, snap.max_client_conn, text)]


def _server_checks(snap: PgBouncerSnapshot, servers: Sequence[Endpoint]) -> list[Imbalance]:
    """Per PostgreSQL server: the server connections of every PgBouncer database leading to it, together."""
    by_server: dict[str, tuple[Endpoint, list[Database]]] = {}
    for d in snap.chain():
        if (found := _server_of(d, servers)) is not None:
            by_server.setdefault(found.target, (found, []))[1].append(d)
    out = []
    for server, databases in by_server.values():
        demand = sum(server_pools(snap, d) for d in databases)
        parts = "; ".join(
            f"{d.name}: (pool_size {d.pool_size} + reserve_pool {d.reserve_pool_size}) x {snap.pools_of(d)} "
            f"pool(s){f', max_db_connections {d.max_connections}' if d.max_connections else ''}" for d in databases)
        text = (f"PgBouncer {snap.target} can open {demand} server connections to PostgreSQL {server.target} "
                f"({parts}), above the {server.available} that its max_connections {server.max_connections} less "
                f"{server.reserved_connections} reserved (superuser_reserved_connections, reserved_connections) "
                f"leave: PgBouncer's pools will meet \"too many clients\" before they are full. Lower pool_size or "
                f"reserve_pool of those databases in pgbouncer.ini (or default_pool_size), cap them with "
                f"max_db_connections, or raise max_connections on {server.target} (a restart).")
        out.append(Imbalance(CHECKS[1], server.target, demand, server.available, text))
    return out


def _session_checks(snap: PgBouncerSnapshot, by_database: dict[str, list[AppPool]]) -> list[Imbalance]:
    """In session mode a client holds its server for its whole connection: more app connections than the
    database's pools can hold queue in PgBouncer by design."""
    out = []
    for d in snap.chain():
        apps = by_database.get(d.name, [])
        if not apps or snap.pool_mode_of(d) != "session":
            continue
        total = _capacity(apps)
        capacity, held, fix = session_capacity(snap, d), _session_held(snap, d), _session_fix(snap, d, total)
        text = (f"PgBouncer {snap.target}, database {d.name} in session mode: the application pools leading to "
                f"it can hold {total} connections (pool_size + max_overflow of {_listed(apps)}), above the "
                f"{capacity} servers its pools hold ({held}); each "
                f"holds a server while connected, so the others wait in PgBouncer (reserve_pool "
                f"{d.reserve_pool_size} only after reserve_pool_timeout). {fix} (PostgreSQL's max_connections "
                f"must fit it), lower the applications' pool_size + max_overflow, or use pool_mode = transaction "
                f"if the application keeps no session state.")
        out.append(Imbalance(CHECKS[2], d.name, total, capacity, text))
    return out


def session_capacity(snap: PgBouncerSnapshot, database: Database) -> int:
    """The servers a session-mode database holds for its clients without the reserve: pool_size per pool (one
    per user without a forced user), capped by max_db_connections (0 is no cap), as ``server_pools``."""
    most = database.pool_size * snap.pools_of(database)
    return min(most, database.max_connections) if database.max_connections else most


def _session_held(snap: PgBouncerSnapshot, d: Database) -> str:
    cap = f", max_db_connections {d.max_connections}" if d.max_connections else ""
    return f"pool_size {d.pool_size} x {snap.pools_of(d)} pool(s){cap}"


def _session_fix(snap: PgBouncerSnapshot, d: Database, total: int) -> str:
    """The pgbouncer.ini settings that hold the database below ``total``: pool_size per pool, and
    max_db_connections when it caps the pools."""
    pools = snap.pools_of(d)
    wanted = []
    if d.pool_size * pools < total:
        wanted.append(("pool_size", -(-total // pools)))  # each pool holds pool_size: the ceiling of total / pools
    if d.max_connections and d.max_connections < total:
        wanted.append(("max_db_connections", total))
    return "Raise " + " and ".join(f"{setting} of {d.name} in pgbouncer.ini to at least {at_least}"
                                   for setting, at_least in wanted)


def imbalances(snap: PgBouncerSnapshot, links: Sequence[Link]) -> list[Imbalance]:
    """Every configuration check of the chain that can be computed (both links known), fitting or not."""
    pools = [link for link in links if isinstance(link, AppPool)]
    servers = [link for link in links if isinstance(link, Endpoint)]
    by_database = {d.name: found for d in snap.chain() if (found := _app_pools(snap, d.name, pools))}
    return [*_clients_check(snap, by_database), *_server_checks(snap, servers), *_session_checks(snap, by_database)]


def capacities(snap: PgBouncerSnapshot, links: Sequence[Link]) -> dict[str, dict[str, int]]:
    """Each database's configured capacity at each link (``dbpulse_pgbouncer_chain_capacity``); a link not
    known is left out."""
    pools = [link for link in links if isinstance(link, AppPool)]
    servers = [link for link in links if isinstance(link, Endpoint)]
    out: dict[str, dict[str, int]] = {}
    for d in snap.chain():
        caps: dict[str, int] = {}
        if apps := _app_pools(snap, d.name, pools):
            caps["app_pool"] = _capacity(apps)
        if snap.max_client_conn is not None:
            caps["pgbouncer_clients"] = snap.max_client_conn
        caps["pgbouncer_pool"] = server_pools(snap, d)
        if server := _server_of(d, servers):
            caps["server"] = server.available
        out[d.name] = caps
    return out


class WarnOnce:
    """Logs each target's chain warnings when they change (not at every poll), and when they are gone."""

    def __init__(self) -> None:
        self._last: dict[str, frozenset[str]] = {}

    def __call__(self, target: str, warnings: Sequence[Imbalance]) -> None:
        texts = frozenset(w.text for w in warnings)
        last = self._last.get(target, frozenset())
        for text in sorted(texts - last):
            log.warning("pool chain configuration: %s", text)
        if last and not texts:
            log.info("PgBouncer %s: no pool chain configuration warning any more (the capacities fit, or a link "
                     "is no longer known)", target)
        self._last[target] = texts


warn_once = WarnOnce()


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
    return PgBouncerView(snap, rows, imbalances(snap, links))


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
    for database, caps in capacities(snap, links).items():
        for name in LINKS:
            out.add("dbpulse_pgbouncer_chain_capacity", caps.get(name), database=database, link=name)
    checks = imbalances(snap, links)
    for c in checks:
        out.add("dbpulse_pgbouncer_chain_imbalance", int(c.imbalanced), check=c.check, subject=c.subject)
    warn_once(snap.target, [c for c in checks if c.imbalanced])
    return out.samples
