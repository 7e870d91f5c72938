"""The source registry: every folder of ``collectors`` but the shared base is a source with one spec, and the
config, the command line and the pages take what they know of a source from it."""

from __future__ import annotations

from pathlib import Path

import pytest

import collectors
from collectors import registry
from collectors.registry import sources
from monitor.cli import _run_flags, build_parser
from monitor.config import Config, load
from monitor.service import build_pollers

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "monitor" / "web" / "templates"


def test_every_source_folder_is_registered_in_page_order() -> None:
    folders = sorted(p.parent.name for p in (ROOT / "collectors").glob("*/__init__.py") if p.parent.name != "base")
    assert sorted(s.name for s in sources()) == folders
    assert [s.order for s in sources()] == sorted(s.order for s in sources())
    for spec in sources():
        assert (TEMPLATES / spec.template).is_file(), spec.template
        assert spec.name in Config.model_fields


def test_a_folder_without_a_spec_is_refused_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "unfinished"
    (folder / "spec").mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "spec" / "__init__.py").write_text("SPEC = None\n")
    monkeypatch.setattr(collectors, "__path__", [*collectors.__path__, str(tmp_path)])
    registry.sources.cache_clear()
    try:
        with pytest.raises(TypeError, match=r"collectors/unfinished/spec\.py must export SPEC"):
            registry.sources()
    finally:
        registry.sources.cache_clear()


def test_every_declared_flag_adds_to_its_source_section() -> None:
    argv = ["run", "--interval", "9"]
    for spec in sources():
        argv += [arg for flag in spec.flags for arg in (flag.option, "x=http://h:1/" if flag.field == "targets"
                                                         else "k")]
    flags = _run_flags(build_parser().parse_args(argv))
    for spec in sources():
        assert flags[spec.name]["interval"] == 9  # type: ignore[index]
        for flag in spec.flags:
            assert len(flags[spec.name][flag.field]) == 1  # type: ignore[index]


def test_the_pollers_of_each_source_carry_its_name() -> None:
    config = load(None, {"postgres": {"targets": [{"dsn": "postgresql://u@h:5432/db"}]},
                         "redis": {"targets": [{"url": "redis://h:6379/0"}]},
                         "health": {"targets": [{"url": "http://h:8000"}]},
                         "advisor": {"enabled": False}}, environ={})
    assert [p.source for p in build_pollers(config)] == ["postgres", "redis", "health"]  # in page order


def test_the_catalogue_is_one_file_per_folder_and_a_name_in_two_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                                           tmp_path: Path) -> None:
    from collectors.base import catalogue

    folders = {Path(str(f)).parent.name for f in catalogue.files()}
    assert folders == {"base", *(s.name for s in sources())}
    twice = tmp_path / "metrics.yaml"
    twice.write_text("dbpulse_source_up:\n  type: gauge\n  labels: [source, target]\n  help: again\n")
    monkeypatch.setattr(catalogue, "files", lambda: [ROOT / "collectors" / "base" / "metrics.yaml", twice])
    catalogue.catalogue.cache_clear()
    try:
        with pytest.raises(ValueError, match="metric dbpulse_source_up is in two catalogue files"):
            catalogue.catalogue()
    finally:
        monkeypatch.undo()
        catalogue.catalogue.cache_clear()


def test_thresholds_are_found_per_source_folder_at_the_warning_level() -> None:
    from collectors import registry

    found = registry.thresholds()
    # one from each source's table, found without any module naming them
    assert {"PostgresReplicationLag", "RedisMemoryNearMax", "AppPoolNearCapacity"} <= set(found)
    assert found["PostgresReplicationLag"].value == 64 * 1024 * 1024
    # an alert with a warning and a critical level: a chart draws the warning one
    assert found["PostgresTransactionIdWraparound"].severity == "warning"
    assert found["PostgresMultixactIdWraparound"].value == 0.5
