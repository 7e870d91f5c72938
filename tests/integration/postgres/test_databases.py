"""Every database of a cluster (postgres.targets[].databases) against a real cluster of its own: 12 databases,
2 excluded by pattern, one created and one dropped while dbpulse runs. Polls and discovery are driven
directly, with the discovery's clock set by the test (no sleeping on cadences)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from collectors.base.catalogue import spec
from collectors.base.samples import OTHER, Sample
from collectors.postgres.databases import DatabasesPart
from collectors.postgres.discovery import DatabaseSelection, select
from collectors.postgres.poller import PostgresPoller
from collectors.postgres.settings import PostgresSettings, PostgresTarget
from harness.servers import LocalPostgres
from monitor.advisor import Advisor, Thresholds
from monitor.advisor.child import ChildRunner
from monitor.advisor.databases import DatabaseAdvisors
from monitor.advisor.poller import AdviceSnapshot, run_once
from monitor.cli import main
from monitor.web.detail import statement_path
from tests.support import DbpulseProcess

APPS = [f"app{i:02d}" for i in range(1, 11)]  # the 10 watched
SCRATCH = ["scratch_a", "scratch_b"]  # excluded by pattern
DISCOVERY = 300.0


def _workload(dsn: str, name: str) -> None:
    """Two tables of its own name, an index, and statements only this database runs: one of them on a
    column with no index (the advisor's missing index in this database)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")  # the advisor reads it here
        conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
        conn.execute(f"CREATE TABLE {name}_orders (id int PRIMARY KEY, customer int)")
        conn.execute(f"CREATE TABLE {name}_notes (id int, body text)")
        conn.execute(f"CREATE INDEX {name}_orders_customer ON {name}_orders (customer)")
        conn.execute(f"INSERT INTO {name}_orders SELECT g, g % 7 FROM generate_series(1, 200) g")
        conn.execute(f"INSERT INTO {name}_notes SELECT g, 'note ' || g FROM generate_series(1, 30000) g")
        conn.execute(f"ANALYZE {name}_notes")
        for i in range(3):
            conn.execute(f"SELECT count(*) FROM {name}_orders WHERE customer = %s", (i,)).fetchone()
        for i in range(50):
            conn.execute(f"SELECT id FROM {name}_notes WHERE body = %s", (f"note {i}",)).fetchall()
        conn.execute("SELECT pg_stat_force_next_flush()")


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalPostgres]:
    server = LocalPostgres()
    server.start()
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        for name in [*APPS, *SCRATCH]:
            conn.execute(f"CREATE DATABASE {name}")
    for name in [*APPS, *SCRATCH]:
        _workload(server.dsn(name), name)
    yield server
    server.cleanup()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _poller(cluster: LocalPostgres, **selection: object) -> PostgresPoller:
    target = PostgresTarget(name="cluster", dsn=cluster.dsn(), databases={
        "exclude": ["scratch_*", "template*"], "discovery_interval": DISCOVERY, **selection})
    return PostgresPoller(target, PostgresSettings(interval=30, timeout=25, top_tables=5, top_statements=20))


@pytest.fixture
async def poller(cluster: LocalPostgres) -> AsyncIterator[tuple[PostgresPoller, Clock]]:
    p = _poller(cluster, refresh_interval=0, budget=60)
    clock = Clock()
    assert p.databases is not None
    p.databases.clock = clock
    yield p, clock
    await p.close()


def by_db(samples: list[Sample], name: str) -> dict[str, list[Sample]]:
    """``name``'s samples by their datname."""
    position = spec(name).labels.index("datname")
    out: dict[str, list[Sample]] = {}
    for s in samples:
        if s.name == name:
            out.setdefault(s.labels[position], []).append(s)
    return out


def label(sample: Sample, name: str) -> str:
    return sample.labels[spec(sample.name).labels.index(name)]


async def test_every_selected_database_exports_tables_indexes_and_statements(
        poller: tuple[PostgresPoller, Clock]) -> None:
    p, _ = poller
    snap = await p.poll()
    samples = snap.samples()
    expected = {"postgres", *APPS}  # the DSN's database (main connection) and the 10 discovered
    for metric in ("dbpulse_pg_tables", "dbpulse_pg_indexes", "dbpulse_pg_statements"):
        assert set(by_db(samples, metric)) == expected, metric
    tables = by_db(samples, "dbpulse_pg_table_seq_scans_total")
    indexes = by_db(samples, "dbpulse_pg_index_scans_total")
    calls = by_db(samples, "dbpulse_pg_statement_calls_total")
    for name in APPS:
        assert {label(s, "table") for s in tables[name]} == {f"{name}_orders", f"{name}_notes"}
        assert {label(s, "index") for s in indexes[name]} == {f"{name}_orders_pkey", f"{name}_orders_customer"}
        # Each database's statements are its own: the query on its own table, run 3 times.
        assert isinstance(snap.others, DatabasesPart)
        stats = next(d for d in snap.others.databases if d.datname == name).statements
        ours = [s for s in stats if f"{name}_orders WHERE customer" in s.query]
        assert [s.calls for s in ours] == [3], (name, [s.query for s in stats])
        assert not any(other in s.query for s in stats for other in APPS if other != name)
        assert {label(s, "queryid") for s in calls[name]} >= {str(ours[0].queryid)}
    per_database = ("dbpulse_pg_table_", "dbpulse_pg_index_", "dbpulse_pg_statement", "dbpulse_pg_own_statement",
                    "dbpulse_pg_database_read_")
    for name in SCRATCH:  # in the cluster-wide views only (pg_stat_database), as every database is
        assert not any(name in s.labels for s in samples if s.name.startswith(per_database))
        assert name in by_db(samples, "dbpulse_pg_database_xact_commit_total")
    watched = [s for s in samples if s.name == "dbpulse_pg_databases_watched"]
    assert [s.value for s in watched] == [11]


async def test_sequences_bloat_and_autovacuum_thresholds_of_every_database(
        poller: tuple[PostgresPoller, Clock], cluster: LocalPostgres) -> None:
    """Read in each database's turn, on its own connection, labelled with its datname: a sequence half used
    in app03 only, each database's bloat estimates and frozen XID ages of its own tables, and autovacuum's
    threshold of each table from its own reltuples (the DSN's database reads them on maintenance_interval, as
    before)."""
    with psycopg.connect(cluster.dsn("app03"), autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE app03_ticket AS smallint")  # 32767 values
        conn.execute("SELECT setval('app03_ticket', 16384)")
    try:
        p, _ = poller
        snap = await p.poll()
    finally:
        with psycopg.connect(cluster.dsn("app03"), autocommit=True) as conn:
            conn.execute("DROP SEQUENCE app03_ticket")
    samples = snap.samples()
    sequences = by_db(samples, "dbpulse_pg_sequence_used_ratio")
    assert [(label(s, "sequence"), round(s.value, 3)) for s in sequences["app03"]] == [("app03_ticket", 0.5)]
    assert not any(name in sequences for name in APPS if name != "app03")
    bloat = by_db(samples, "dbpulse_pg_table_bloat_bytes")
    thresholds = by_db(samples, "dbpulse_pg_table_autovacuum_threshold_rows")
    for name in APPS:
        # its own tables only, _notes among them (ANALYZEd: it has the statistics an estimate needs)
        tables = {label(s, "table") for s in bloat[name]}
        assert f"{name}_notes" in tables and tables <= {f"{name}_orders", f"{name}_notes"}, (name, tables)
        with psycopg.connect(cluster.dsn(name)) as conn:
            row = conn.execute(f"""SELECT current_setting('autovacuum_vacuum_threshold')::float8
                                          + current_setting('autovacuum_vacuum_scale_factor')::float8 * reltuples
                                   FROM pg_class WHERE relname = '{name}_notes'""").fetchone()
        assert row is not None
        assert {s.value for s in thresholds[name] if label(s, "table") == f"{name}_notes"} == {row[0]}, name
    frozen = by_db(samples, "dbpulse_pg_table_frozen_age")
    for name in APPS:  # wraparound: each database's own tables oldest by frozen XID age, not only the DSN's
        ages = {label(s, "table"): s.value for s in frozen[name] if label(s, "kind") == "xid"}
        assert ages and not any(t.startswith("app") and not t.startswith(name) for t in ages), (name, ages)
        with psycopg.connect(cluster.dsn(name)) as conn:
            now = dict(conn.execute("SELECT relname, age(relfrozenxid)::float8 FROM pg_class WHERE relname = ANY(%s)",
                                    (list(ages),)).fetchall())
        assert all(0 < age <= now[t] for t, age in ages.items()), (name, ages, now)  # ages only grow since
    for name in SCRATCH:  # excluded: no read of theirs
        assert name not in bloat and name not in thresholds and name not in frozen
    assert {q: n for q, n in snap.query_errors.items() if n} == {}


async def test_new_and_dropped_databases_within_the_discovery_interval(
        poller: tuple[PostgresPoller, Clock], cluster: LocalPostgres) -> None:
    p, clock = poller
    await p.poll()
    start = clock.now
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE app11")
    _workload(cluster.dsn("app11"), "app11")
    try:
        clock.now = start + DISCOVERY - 1
        snap = await p.poll()
        assert "app11" not in set(by_db(snap.samples(), "dbpulse_pg_tables"))  # found at the next discovery
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("DROP DATABASE app10 WITH (FORCE)")
        clock.now = start + DISCOVERY
        snap = await p.poll()
        samples = snap.samples()
        assert set(by_db(samples, "dbpulse_pg_tables")) == {"postgres", *APPS[:-1], "app11"}
        assert not any("app10" in s.labels for s in samples), "a dropped database's series are retired"
        assert {label(s, "table") for s in by_db(samples, "dbpulse_pg_table_seq_scans_total")["app11"]} == {
            "app11_orders", "app11_notes"}
        assert isinstance(snap.others, DatabasesPart)
        assert any("app11_orders WHERE customer" in s.query
                   for d in snap.others.databases if d.datname == "app11" for s in d.statements)
    finally:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS app11 WITH (FORCE)")
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'app10'").fetchone():
                conn.execute("CREATE DATABASE app10")
        _workload(cluster.dsn("app10"), "app10")


async def test_reads_rotate_within_the_budget(cluster: LocalPostgres) -> None:
    """Each poll adds its budget to a credit; a read starts while there is some and takes its time off: a
    read costlier than the budget waits for the next polls'. The oldest read goes first; no connection to
    another database stays open."""
    p = _poller(cluster, budget=0.000001, refresh_interval=DISCOVERY)
    assert p.databases is not None
    p.databases.clock = clock = Clock()

    async def poll() -> list[str]:
        snap = await p.poll()
        clock.now += 1
        assert isinstance(snap.others, DatabasesPart)
        return sorted(d.datname for d in snap.others.databases if d.table_count is not None)

    try:
        read = [await poll() for _ in range(4)]
        assert read == [["app01"]] * 4, "the first read (milliseconds) is paid back by the next polls' budget"
        assert p.databases.credit < 0
        counts = []
        for _ in range(len(APPS) - 1):
            p.databases.credit = 0.0  # what the budget saved up: enough for one read, whatever it costs
            counts.append(len(await poll()))
        assert counts == list(range(2, len(APPS) + 1)), "one read per poll, each database in turn"
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            open_elsewhere = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE "
                                          "'dbpulse%%' AND datname <> 'postgres'").fetchone()
        assert open_elsewhere == (0,), "no connection to another database is held between polls"
        clock.now += DISCOVERY  # every database due again: app01 first (the oldest read)
        p.databases.credit = 0.0
        snap = await p.poll()
        assert isinstance(snap.others, DatabasesPart)
        newest = max(snap.others.databases, key=lambda d: d.read_at or 0)
        assert newest.datname == "app01"
    finally:
        await p.close()


async def test_a_read_that_outlasts_the_poll_is_cut_before_the_deadline_and_read_again_soon(
        cluster: LocalPostgres) -> None:
    """Other databases' reads stop at 80 % of the poll timeout: four databases whose sequences are locked (each
    read waits a second on its lock timeout) would take the poll past its timeout, losing it whole (the scheduler
    abandons it). The poll ends in time instead, the cut database is due again at once (not after its 300 s
    refresh), and the cut read is paid for from the budget."""
    p = _poller(cluster, budget=60, refresh_interval=DISCOVERY)
    p.timeout = 3.0
    assert p.databases is not None
    p.databases.clock = Clock()
    locked = APPS[2:6]
    holders = []
    for name in locked:
        conn = psycopg.connect(cluster.dsn(name))
        conn.execute(f"CREATE SEQUENCE IF NOT EXISTS {name}_seq")
        conn.commit()
        conn.execute(f"ALTER SEQUENCE {name}_seq RESTART")  # held in an open transaction: blocks reading it
        holders.append(conn)
    try:
        async with asyncio.timeout(p.timeout):  # as the scheduler bounds a poll
            snap = await p.poll()
        assert isinstance(snap.others, DatabasesPart)
        read = {d.datname for d in snap.others.databases if d.read_at is not None}
        assert set(APPS) - read, "some database's read was cut"
        assert p.databases.credit < 60 - 1.0, "the cut read (at least one lock wait) is paid for"
    finally:
        for conn in holders:
            conn.rollback()
            conn.close()
    p.databases.credit = 60.0
    snap = await p.poll()  # the clock has not moved: only the cut reads are due, and they are read now
    assert isinstance(snap.others, DatabasesPart)
    assert {d.datname for d in snap.others.databases if d.read_at is not None} == set(APPS)
    await p.close()


async def test_top_total_caps_the_series_over_all_databases(cluster: LocalPostgres) -> None:
    target = PostgresTarget(name="cluster", dsn=cluster.dsn(), databases={
        "include": ["app*"], "refresh_interval": 0, "budget": 60, "top_total": 10})
    p = PostgresPoller(target, PostgresSettings(interval=30, timeout=25, top_tables=5, top_indexes=5,
                                                top_statements=5))
    try:
        snap = await p.poll()
        samples = snap.samples()
        tables = by_db(samples, "dbpulse_pg_table_seq_scans_total")
        for name in APPS:  # 10 // 10 databases: one table each, the other one summed as __other__
            kept = {label(s, "table") for s in tables[name]}
            assert len(kept) == 2 and OTHER in kept
            assert kept - {OTHER} <= {f"{name}_orders", f"{name}_notes"}
            queryids = {label(s, "queryid") for s in by_db(samples, "dbpulse_pg_statement_calls_total")[name]}
            assert len(queryids) == 2 and OTHER in queryids
    finally:
        await p.close()


def test_one_advisor_per_database_in_turn_and_a_dropped_database_retired(cluster: LocalPostgres) -> None:
    thresholds = Thresholds(min_table_rows=1000)
    selection = DatabaseSelection.model_validate({"exclude": ["scratch_*"], "discovery_interval": DISCOVERY})
    advisors = DatabaseAdvisors(Advisor(cluster.dsn(), "cluster", thresholds), selection, thresholds)
    advisors.clock = clock = Clock()
    runs = [advisors.run() for _ in range(len(APPS) + 1)]  # the DSN's database, then each other one
    main, others = runs[-1]
    assert main.target == "cluster"
    assert [r.target for r in others] == [f"cluster/{name}" for name in APPS]
    assert [len(o) for _, o in runs] == list(range(len(APPS) + 1)), "one database advised per run"
    for name, report in zip(APPS, others, strict=True):
        missing = [f.table for f in report.findings if f.kind == "missing_index"]
        assert [t.rsplit(".", 1)[-1] for t in missing] == [f"{name}_notes"], (name, missing)
    snapshot = AdviceSnapshot(main, others)
    advised = {s.labels[0] for s in snapshot.samples() if s.name == "dbpulse_advice_findings"}
    assert advised == {"cluster", *(f"cluster/{name}" for name in APPS)}
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("DROP DATABASE app10 WITH (FORCE)")
    try:
        clock.now += DISCOVERY
        _, others = advisors.run()
        assert [r.target for r in others] == [f"cluster/{name}" for name in APPS[:-1]]
    finally:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE app10")
        _workload(cluster.dsn("app10"), "app10")


def test_the_turn_of_the_databases_goes_on_from_one_child_run_to_the_next(cluster: LocalPostgres) -> None:
    """The service's runs in child processes (advisor.run_in_child): each child advises the next database, as
    the same object does in a thread (the test above)."""
    thresholds = Thresholds(min_table_rows=1000)
    selection = DatabaseSelection.model_validate({"exclude": ["scratch_*"], "discovery_interval": DISCOVERY})
    advisors = DatabaseAdvisors(Advisor(cluster.dsn(), "cluster", thresholds), selection, thresholds)
    clock = advisors.clock = Clock()
    child = ChildRunner(advisors, (thresholds, clock))
    runs = [child.run(run_once) for _ in range(3)]
    assert [[r.target for r in s.others] for s in runs] == [[], ["cluster/app01"], ["cluster/app01", "cluster/app02"]]
    missing = [f.table.rsplit(".", 1)[-1] for f in runs[-1].others[-1].findings if f.kind == "missing_index"]
    assert missing == ["app02_notes"]
    assert advisors._next == 0  # the service's copy never ran


def _missing_index_tables(report: dict[str, object]) -> set[str]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return {str(f["table"]).split(".")[-1] for f in findings if f["kind"] == "missing_index"}


def test_advise_all_databases_one_section_each_templates_and_cloud_admin_skipped(
        cluster: LocalPostgres, capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE rdsadmin")  # RDS's own: never advised
    try:
        capsys.readouterr()
        assert main(["advise", "--postgres", f"cluster={cluster.dsn()}", "--all-databases", "--no-hypopg",
                     "--format", "json"]) == 0
        reports = json.loads(capsys.readouterr().out)
    finally:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("DROP DATABASE rdsadmin")
    targets = [r["target"] for r in reports]
    # the DSN's database first, under the target's own name, then every other one in name order
    assert targets == ["cluster", *(f"cluster/{n}" for n in sorted([*APPS, *SCRATCH]))]
    for report in reports[1:]:  # each database's own missing index, from its own statements
        name = report["target"].split("/")[1]
        assert _missing_index_tables(report) == {f"{name}_notes"}


def test_advise_all_databases_past_max_databases_names_the_rest_on_stderr(
        cluster: LocalPostgres, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["advise", "--postgres", f"cluster={cluster.dsn()}", "--all-databases", "--max-databases", "3",
                 "--no-hypopg", "--format", "json"]) == 0
    captured = capsys.readouterr()
    others = sorted([*APPS, *SCRATCH])
    assert [r["target"] for r in json.loads(captured.out)] == ["cluster", *(f"cluster/{n}" for n in others[:2])]
    assert captured.err.count("\n") == 1, captured.err
    assert f"{len(others) - 2} database(s) left out, past --max-databases 3" in captured.err
    assert captured.err.rstrip().endswith(": " + ", ".join(others[2:]))
    assert main(["advise", "--postgres", cluster.dsn(), "--all-databases", "--max-databases", "0"]) == 2
    assert "--max-databases: " in capsys.readouterr().err


def test_advise_named_databases_and_one_that_does_not_exist(cluster: LocalPostgres,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    args = ["advise", "--postgres", f"cluster={cluster.dsn()}", "--format", "md"]
    assert main([*args, "--database", "app05", "--database", "app02", "--database", "app05"]) == 0
    out = capsys.readouterr().out
    headings = [line for line in out.splitlines() if line.startswith("# dbpulse index advice")]
    assert headings == ["# dbpulse index advice: cluster/app05", "# dbpulse index advice: cluster/app02"]
    assert "app05_notes" in out and "app02_notes" in out and "app01_notes" not in out
    # a database that cannot be advised: one line that names it, the others' report, exit status 2
    assert main([*args, "--database", "nosuchdb", "--database", "app03"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "cluster/nosuchdb" in captured.err and "Traceback" not in captured.err
    assert "# dbpulse index advice: cluster/app03" in captured.out
    # the DSN's database by name is the target itself
    assert main([*args, "--database", "postgres", "--database", "app04", "--format", "html"]) == 0
    page = capsys.readouterr().out
    assert page.count("<html") == 1 and page.count("<main") == 2
    assert "dbpulse index advice: cluster</h1>" in page and "dbpulse index advice: cluster/app04</h1>" in page


def test_served_statement_pages_of_another_database(cluster: LocalPostgres, tmp_path: Path) -> None:
    """dbpulse as a process watching the cluster: the main page links app03's costliest statements, and the
    statement page of app03's own query shows its text and its calls."""
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        row = conn.execute("""SELECT queryid FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
                              WHERE d.datname = 'app03' AND s.query LIKE '%app03_notes WHERE body%'""").fetchone()
    assert row is not None
    queryid = int(row[0])
    config = tmp_path / "dbpulse.yaml"
    config.write_text(f"""postgres:
  targets:
    - name: cluster
      dsn: "{cluster.dsn()}"
      databases: {{exclude: ["scratch_*"], refresh_interval: 0, budget: 1}}
advisor:
  enabled: false
""")
    with DbpulseProcess("--config", str(config), "--interval", "5") as svc:
        path = "/" + statement_path("cluster/app03", queryid)
        main_page = svc.wait_for_page("/", f'href="{path[1:]}"', timeout=60)
        assert "app03" in main_page
        page = svc.wait_for_page(path, "app03_notes WHERE body", timeout=30)
        assert "cluster/app03" in page
        assert svc.get("/" + statement_path("cluster/app03", queryid + 1))[0] == 404


def test_selection_forms_and_the_cap() -> None:
    auto = DatabaseSelection.model_validate("auto")
    assert auto.matches("shop") and not auto.matches("rdsadmin") and not auto.matches("cloudsqladmin")
    listed = DatabaseSelection.model_validate(["shop", "billing"])
    assert listed.matches("shop") and not listed.matches("shop2")
    patterns = DatabaseSelection.model_validate({"include": ["app*"], "exclude": ["*_test"], "max": 3})
    assert patterns.matches("app1") and not patterns.matches("app1_test") and not patterns.matches("other")
    for bad in ("all", [], {"names": ["a"], "include": ["b"]}, 5):
        with pytest.raises(ValueError):
            DatabaseSelection.model_validate(bad)
    rows = [{"datname": n, "oid": i} for i, n in enumerate(["app1", "app2", "app3", "app4", "main", "x_test"])]
    found = select(rows, patterns, own="main")  # the DSN's database counts toward max: 2 more
    assert found.watched == {"app1": 0, "app2": 1} and found.left_out == {"max": ["app3", "app4"]}
    named = select(rows, listed, own="main")
    assert named.watched == {} and named.left_out == {"not_found": ["billing", "shop"]}
