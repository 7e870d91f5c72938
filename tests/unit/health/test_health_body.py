"""Reading health JSON bodies: the seeds' shapes, then fuzzed bodies (nothing escapes)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from collectors.base.samples import OTHER
from collectors.health.body import PoolBlock, interpret
from collectors.health.probe import _parse

PATHS = ("pool", "components.database.pool")


def test_seed_ready_shape() -> None:
    body = interpret({
        "status": "ready", "is_ready": True,
        "components": {"database": {"status": "healthy"}, "redis": {"status": "unhealthy"},
                       "cache": "ok", "odd": {"no_status": 1}},
        "pool": {"size": 20, "max_overflow": 10, "checked_out": 3, "checked_in": 17, "overflow": 0},
    }, PATHS)
    assert body.status_up is True and body.ready is True
    assert body.components == {"database": True, "redis": False, "cache": True}
    assert body.pools == {"pool": PoolBlock(20, 10, 3, 17, 0)}
    assert body.pools["pool"].capacity == 30


def test_not_ready_and_nested_pool_and_unlimited_overflow() -> None:
    body = interpret({"status": "not_ready", "is_ready": "no",
                      "components": {"database": {"status": "UP", "pool": {"size": 5, "max_overflow": -1}}}},
                     PATHS)
    assert body.status_up is False and body.ready is None  # is_ready must be a boolean
    assert body.components == {"database": True}
    assert body.pools["components.database.pool"].capacity is None


def test_component_limit_folds_into_other() -> None:
    comps = {f"c{i:02d}": {"status": "healthy" if i != 7 else "down"} for i in range(10)}
    body = interpret({"components": comps}, PATHS, max_components=5)
    assert list(body.components) == ["c00", "c01", "c02", "c03", "c04", OTHER]
    assert body.components[OTHER] is False


def test_non_objects_and_bad_numbers() -> None:
    assert interpret([1, 2], PATHS).status_up is None
    body = interpret({"pool": {"size": True, "checked_out": "3", "overflow": 1e400}}, PATHS)
    assert body.pools == {}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["status", "is_ready", "components", "pool", "database", "size", "max_overflow",
                         "checked_out", "checked_in", "overflow"]) | st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


@given(json_values)
def test_any_json_body_is_interpreted_without_exception(doc: Any) -> None:
    body = interpret(doc, PATHS, max_components=3)
    assert len(body.components) <= 4
    for pool in body.pools.values():
        _ = pool.capacity


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_count_as_parse_error(raw: bytes) -> None:
    doc, failed = _parse(raw)
    if not failed:
        interpret(doc, PATHS)


def test_deeply_nested_json_is_a_parse_error() -> None:
    assert _parse(b"[" * 100_000 + b"]" * 100_000)[1] is True
    assert _parse(json.dumps({"status": "ok"}).encode()) == ({"status": "ok"}, False)
