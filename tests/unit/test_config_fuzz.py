"""Property-based: any malformed configuration gives a ConfigError naming keys, never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import ConfigError, load, read_file, validate

KEYS = ["listen", "log", "postgres", "redis", "health", "advisor", "web_config", "targets", "dsn", "url",
        "interval", "timeout", "name", "level", "thresholds", "queues", "endpoints", "top_statements", "x"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=20))
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(KEYS), children, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=5))
def test_any_mapping_validates_or_names_its_problems(data: dict[str, Any]) -> None:
    try:
        validate(data, "fuzz.yaml")
    except ConfigError as exc:
        assert exc.problems
        assert "fuzz.yaml" in str(exc)
        for problem in exc.problems:
            assert problem.message


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200))
def test_any_file_text_loads_or_is_a_clear_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text)
    try:
        load(path, {}, {})
    except ConfigError as exc:
        assert str(path) in str(exc)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["interval", "timeout", "top_statements", "targets"]), values, min_size=1))
def test_bad_postgres_values_are_named_by_path(section: dict[str, Any]) -> None:
    try:
        validate({"postgres": section}, "fuzz.yaml")
    except ConfigError as exc:
        assert all(p.path.startswith("postgres") or p.path == "" for p in exc.problems), exc.problems


def test_roundtrip_of_the_example_file() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "dbpulse.yaml"
    data = read_file(example)
    assert validate(yaml.safe_load(yaml.safe_dump(data)), "x") == validate(data, "x")
