"""The PgBouncer section of the main page (monitor/web/templates/sections/pgbouncer.html) renders a snapshot:
a saturated pool is marked, a healthy one is not, each database shows where it leads, and the pool chain
joins the applications' pools and the PostgreSQL servers other targets publish, marking the first full link."""

from __future__ import annotations

from collections.abc import Sequence

from collectors.base.chain import AppPool, Endpoint, Link
from collectors.base.samples import Sample
from collectors.pgbouncer.chain import chain_samples, pool_chain
from collectors.pgbouncer.poller import PgBouncerPoller
from collectors.pgbouncer.settings import PgBouncerSettings, PgBouncerTarget
from collectors.pgbouncer.snapshot import ConnectionCount, Database, PgBouncerSnapshot, Pool
from monitor.core.history import History
from monitor.core.scheduler import SourceState
from monitor.web.pages import environment


def database(name: str, pool_size: int, paused: bool = False) -> Database:
    return Database(name, "10.0.0.5", 5432, f"{name}_db", "", pool_size, 0, "", 0, pool_size, paused, False)


def render(snapshot: PgBouncerSnapshot, links: Sequence[Link] = ()) -> str:
    poller = PgBouncerPoller(PgBouncerTarget(name="edge", dsn="host=b dbname=pgbouncer"), PgBouncerSettings())
    state = SourceState(poller, History(10, frozenset()), snapshot=snapshot, up=True, polls=1, last_success=0.0)
    module = environment().get_template("sections/pgbouncer.html").make_module({"links": list(links)})
    return str(module.section(state, snapshot, 0.0)) + str(module.summary(snapshot))  # type: ignore[attr-defined]


def test_the_saturated_pool_is_marked_and_the_chain_link_shown() -> None:
    snapshot = PgBouncerSnapshot(
        target="edge", version="1.18.0",
        pools=[Pool("shop", "app", {"active": 20, "waiting": 4}, {"active": 20, "idle": 0}, 3.5, "transaction"),
               Pool("billing", "app", {"active": 2, "waiting": 0}, {"active": 2, "idle": 3}, 0.0, "transaction")],
        pools_other=None, stats={}, databases=[database("shop", 20), database("billing", 20, paused=True)],
        lists={"used_clients": 26}, max_client_conn=100, default_pool_size=20, clients=[], servers=[])
    html = render(snapshot)
    pools = html.split('<table class="pgbouncer-pools">')[1].split("</table>")[0]
    rows = [r for r in pools.split("<tr") if "mono\">shop/app" in r or "mono\">billing/app" in r]
    assert len(rows) == 2
    assert 'class="saturated"' in rows[0] and "badge bad\">saturated" in rows[0]
    assert "saturated" not in rows[1].replace('class=""', "")
    assert "10.0.0.5:5432/shop_db" in html and "badge bad\">paused" in html
    assert "1 saturated" in html


def chain_snapshot(active: int, waiting: int, applications: dict[str, str] | None = None) -> PgBouncerSnapshot:
    shop = Database("shop", "127.0.0.1", 5432, "shop_db", "", 4, 0, "", 0, active, False, False)
    return PgBouncerSnapshot(
        target="edge", version="1.18.0", pools=[Pool("shop", "app", {"active": active + waiting, "waiting": waiting},
                                                     {"active": active}, 1.0, "transaction")],
        pools_other=None, stats={}, databases=[shop], lists={"used_clients": active + waiting + 1},
        max_client_conn=100, default_pool_size=4, clients=[], servers=[], client_connections=active + waiting,
        applications=applications or {})


def chain_rows(html: str) -> list[str]:
    return [r for r in html.split('<table class="pool-chain">')[1].split("</table>")[0].split("<tr")
            if 'data-link="' in r]


SERVER = Endpoint("primary", "localhost", 5432, "shop_db", 12, 100)
OTHER_SERVER = Endpoint("other", "localhost", 5433, "shop_db", 99, 100)


def test_the_chain_marks_the_first_full_link_and_joins_the_other_targets() -> None:
    snap = chain_snapshot(active=4, waiting=3, applications={"api": "shop"})
    html = render(snap, [AppPool("api", "db.pool", 6, 10), AppPool("worker", "db.pool", 10, 10), SERVER,
                         OTHER_SERVER])
    rows = chain_rows(html)
    assert [r.split('data-link="')[1].split('"')[0] for r in rows] == [
        "app_pool", "pgbouncer_clients", "pgbouncer_pool", "server"]  # the worker's pool leads elsewhere
    assert "api db.pool" in rows[0] and ">configured<" in rows[0]
    assert 'class="chain-link saturated"' in rows[2] and "+3 waiting" in rows[2] and "the queue is here" in rows[2]
    assert [i for i, r in enumerate(rows) if "saturated" in r] == [2]
    assert "primary (127.0.0.1:5432/shop_db)" in rows[3] and ">12<" in rows[3]  # localhost and 127.0.0.1: one host


def test_a_full_app_pool_is_the_first_link_and_an_unknown_server_says_so() -> None:
    snap = chain_snapshot(active=4, waiting=3)
    snap.clients.append(ConnectionCount("shop", "active", "api", 7))  # the application named after its target
    view = pool_chain(snap, [AppPool("api", "db.pool", 10, 10), OTHER_SERVER])
    (row,) = view.chain
    assert [link.link for link in row.links] == ["app_pool", "pgbouncer_clients", "pgbouncer_pool", "server"]
    assert row.first_full == 0 and row.links[0].note == "matched by application_name"
    assert row.links[2].full  # saturated too, but behind a full app pool: not where the queue starts
    assert row.links[3].used is None and "no watched PostgreSQL target" in row.links[3].note


def test_a_healthy_chain_marks_nothing() -> None:
    view = pool_chain(chain_snapshot(active=2, waiting=0, applications={"api": "shop"}),
                      [AppPool("api", "db.pool", 3, 10), SERVER])
    (row,) = view.chain
    assert row.first_full is None and [link.ratio for link in row.links] == [0.3, 0.02, 0.5, 0.12]
    assert "saturated" not in "".join(chain_rows(render(view.snap, [AppPool("api", "db.pool", 3, 10), SERVER])))


def test_the_chain_ratios_are_one_family_with_a_link_label() -> None:
    """The samples say what the view says: the fullest application pool leading here, the clients without
    dbpulse's own (used_clients, one more, is not read), the pool and the server; an unknown link has no series."""
    snap = chain_snapshot(active=4, waiting=3, applications={"api": "shop", "worker": "shop"})
    samples = ratio_samples(chain_samples(snap, [AppPool("api", "db.pool", 6, 10), AppPool("worker", "db.pool", 9, 12),
                                                 SERVER]))
    assert {s.labels[3]: s.value for s in samples if s.labels[:3] == ("edge", "shop", "app")} == {
        "app_pool": 0.75, "pgbouncer_clients": 0.07, "pgbouncer_pool": 1.0, "server": 0.12}
    unknown = ratio_samples(chain_samples(snap, []))  # no application pool, no PostgreSQL target: not known
    assert sorted(s.labels[3] for s in unknown) == ["pgbouncer_clients", "pgbouncer_pool"]


def ratio_samples(samples: Sequence[Sample]) -> list[Sample]:
    return [s for s in samples if s.name == "dbpulse_pgbouncer_chain_saturation_ratio"]


def test_a_chain_that_cannot_fit_has_its_warning_in_the_block() -> None:
    """The application's pool (capacity 10) above max_client_conn (8): the block prints the warning; 100 fits."""
    snap = chain_snapshot(active=1, waiting=0, applications={"api": "shop"})
    snap.max_client_conn = 8
    html = render(snap, [AppPool("api", "db.pool", 3, 10), SERVER])
    block = html.split('<div class="pool-chain"')[1].split("</div>")[0]
    assert 'data-check="app_pools_over_max_client_conn"' in block
    assert "can open 10 client connections (pool_size + max_overflow of api db.pool: 10), above max_client_conn 8" \
        in block
    snap.max_client_conn = 100
    assert "chain-warning" not in render(snap, [AppPool("api", "db.pool", 3, 10), SERVER])
