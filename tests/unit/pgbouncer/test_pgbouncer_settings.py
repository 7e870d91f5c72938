"""The pgbouncer section: a target is the admin console's DSN; bad ones are refused with a clear message
that never quotes the password."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from collectors.pgbouncer.settings import PgBouncerSettings, PgBouncerTarget, target_from_flag


def test_a_target_named_after_host_and_port() -> None:
    target = PgBouncerTarget(dsn="postgresql://dbpulse:pw@bouncer-1:6432/pgbouncer")
    assert target.target == "bouncer-1:6432"
    assert PgBouncerTarget(name="edge", dsn="host=b port=6432 dbname=pgbouncer").target == "edge"


@pytest.mark.parametrize(("dsn", "message"), [
    ("postgresql://dbpulse:hunter22@b:6432/shop", "names database 'shop'"),
    ("postgresql://dbpulse:hunter22@b:6432", "names no database"),
    ("postgresql://dbpulse:hunter22@b:99999/pgbouncer", 'invalid port number: "99999"'),
    ("host=b password=hunter22 dbname=pgbouncer bogus=1", "not a valid PostgreSQL connection string"),
])
def test_a_bad_dsn_is_refused_clearly(dsn: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PgBouncerTarget(dsn=dsn)
    [error] = caught.value.errors()
    assert message in error["msg"] and "hunter22" not in error["msg"]


def test_timeouts_and_top_k_are_bounded() -> None:
    settings = PgBouncerSettings(interval=10, targets=[PgBouncerTarget(dsn="host=b dbname=pgbouncer")])
    assert settings.timeout_of(settings.targets[0]) == 8.0
    with pytest.raises(ValidationError):
        PgBouncerSettings(interval=10, timeout=10)
    with pytest.raises(ValidationError):
        PgBouncerSettings(top_pools=0)


def test_flag_value() -> None:
    assert target_from_flag("edge=postgresql://d@b:6432/pgbouncer") == {
        "name": "edge", "dsn": "postgresql://d@b:6432/pgbouncer"}
    assert target_from_flag("postgresql://d@b:6432/pgbouncer") == {"dsn": "postgresql://d@b:6432/pgbouncer"}
