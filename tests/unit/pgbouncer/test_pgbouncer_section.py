"""The PgBouncer section of the main page (monitor/web/templates/sections/pgbouncer.html) renders a snapshot:
a saturated pool is marked, a healthy one is not, and each database shows where it leads."""

from __future__ import annotations

from collectors.pgbouncer.poller import PgBouncerPoller
from collectors.pgbouncer.settings import PgBouncerSettings, PgBouncerTarget
from collectors.pgbouncer.snapshot import Database, PgBouncerSnapshot, Pool
from monitor.core.history import History
from monitor.core.scheduler import SourceState
from monitor.web.pages import environment


def database(name: str, pool_size: int, paused: bool = False) -> Database:
    return Database(name, "10.0.0.5", 5432, f"{name}_db", "", pool_size, 0, "", 0, pool_size, paused, False)


def render(snapshot: PgBouncerSnapshot) -> str:
    poller = PgBouncerPoller(PgBouncerTarget(name="edge", dsn="host=b dbname=pgbouncer"), PgBouncerSettings())
    state = SourceState(poller, History(10, frozenset()), snapshot=snapshot, up=True, polls=1, last_success=0.0)
    module = environment().get_template("sections/pgbouncer.html").module
    return str(module.section(state, snapshot, 0.0)) + str(module.summary(snapshot))  # type: ignore[attr-defined]


def test_the_saturated_pool_is_marked_and_the_chain_link_shown() -> None:
    snapshot = PgBouncerSnapshot(
        target="edge", version="1.18.0",
        pools=[Pool("shop", "app", {"active": 20, "waiting": 4}, {"active": 20, "idle": 0}, 3.5, "transaction"),
               Pool("billing", "app", {"active": 2, "waiting": 0}, {"active": 2, "idle": 3}, 0.0, "transaction")],
        pools_other=None, stats={}, databases=[database("shop", 20), database("billing", 20, paused=True)],
        lists={"used_clients": 26}, max_client_conn=100, default_pool_size=20, clients=[], servers=[])
    html = render(snapshot)
    rows = [r for r in html.split("<tr") if "mono\">shop/app" in r or "mono\">billing/app" in r]
    assert len(rows) == 2
    assert 'class="saturated"' in rows[0] and "badge bad\">saturated" in rows[0]
    assert "saturated" not in rows[1].replace('class=""', "")
    assert "10.0.0.5:5432/shop_db" in html and "badge bad\">paused" in html
    assert "1 saturated" in html
