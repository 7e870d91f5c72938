"""The layer contract of ``make lint`` (import-linter, configured in pyproject.toml) can fail.

A copy of the packages with one import added is linted: an upward import
hidden inside a function, and an import cycle between two sibling modules,
each break the contract; the unchanged copy keeps it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("monitor", "collectors", "demo", "harness")


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(exe), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"})


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def append(path: Path, code: str) -> None:
    path.write_text(path.read_text() + "\n\n" + code + "\n")


def test_the_tree_as_it_is_keeps_the_contract(tree: Path) -> None:
    result = lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


def test_an_upward_import_inside_a_function_breaks_it(tree: Path) -> None:
    append(tree / "monitor" / "core" / "history.py",
           "def _render() -> object:\n    from monitor.web import pages\n\n    return pages")
    result = lint(tree)
    assert result.returncode != 0
    assert "monitor.core is not allowed to import monitor.web" in result.stdout, result.stdout
    assert "monitor.core.history -> monitor.web.pages" in result.stdout


def test_a_source_importing_the_service_breaks_it(tree: Path) -> None:
    append(tree / "collectors" / "base" / "samples.py",
           "def _render() -> object:\n    from monitor.core import units\n\n    return units")
    result = lint(tree)
    assert result.returncode != 0
    assert "collectors is not allowed to import monitor" in result.stdout, result.stdout
    assert "collectors.base.samples -> monitor.core.units" in result.stdout


def test_the_shared_base_importing_a_source_breaks_it(tree: Path) -> None:
    append(tree / "collectors" / "base" / "topk.py", "from collectors.redis import info  # noqa")
    result = lint(tree)
    assert result.returncode != 0
    assert "collectors.base is not allowed to import collectors.redis" in result.stdout, result.stdout


def test_a_cycle_between_sibling_modules_breaks_it(tree: Path) -> None:
    # monitor.core.scheduler already imports monitor.core.history; closing the loop is a cycle.
    append(tree / "monitor" / "core" / "history.py",
           "def _states() -> object:\n    from monitor.core import scheduler\n\n    return scheduler")
    result = lint(tree)
    assert result.returncode != 0
    assert "No import cycles between sibling modules BROKEN" in result.stdout, result.stdout


def test_a_source_importing_another_breaks_it(tree: Path) -> None:
    append(tree / "collectors" / "redis" / "info.py", "from collectors.postgres import access  # noqa")
    result = lint(tree)
    assert result.returncode != 0
    assert "Illegal imports of protected package collectors.postgres" in result.stdout, result.stdout
    assert "collectors.redis.info -> collectors.postgres.access" in result.stdout


@pytest.mark.parametrize(("module", "imported"), [
    (("monitor", "web", "pages.py"), "collectors.redis.snapshot"),  # the web reads typed views from the registry
    (("monitor", "config.py"), "collectors.health.settings"),  # a section comes from its spec
    (("monitor", "advisor", "report.py"), "collectors.redis.info"),  # the advisor's exception is PostgreSQL only
])
def test_the_service_importing_a_source_breaks_it(tree: Path, module: tuple[str, ...], imported: str) -> None:
    append(tree.joinpath(*module), f"import {imported}  # noqa")
    result = lint(tree)
    assert result.returncode != 0
    source = ".".join(imported.split(".")[:2])
    assert f"Illegal imports of protected package {source}" in result.stdout, result.stdout


def test_a_new_source_folder_is_protected_without_a_line_of_configuration(tree: Path) -> None:
    """Adding a source is a folder: the contract matches every folder of collectors, so a new one is covered."""
    new = tree / "collectors" / "newsource"
    new.mkdir()
    (new / "__init__.py").write_text('"""A source added later."""\n')
    (new / "reader.py").write_text("from collectors.base.samples import OTHER  # noqa\n")
    assert lint(tree).returncode == 0
    append(tree / "monitor" / "service.py", "from collectors.newsource import reader  # noqa")
    result = lint(tree)
    assert result.returncode != 0
    assert "monitor.service -> collectors.newsource.reader" in result.stdout, result.stdout
