"""No module of the service names a source: it loops over the registry (``collectors/registry.py``).

Every string constant in ``monitor/`` (f-string parts included) is read with ``ast``; one that is a
registered source's name (``"postgres"``, ``"redis"``, ``"health"``, and any source added later) fails,
with its file and line. A source is reached by its spec (``spec.name``); the PostgreSQL features of the
service (the advisor, the statement and table pages) use ``collectors.postgres.spec.SPEC.name``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from collectors.registry import sources

ROOT = Path(__file__).resolve().parents[2]


def named(tree: ast.AST, names: frozenset[str]) -> list[tuple[int, str]]:
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names]


def test_no_module_of_the_service_names_a_source() -> None:
    names = frozenset(spec.name for spec in sources())
    assert names >= {"postgres", "redis", "health"}
    found = [f"{path.relative_to(ROOT)}:{line}: {value!r}" for path in sorted((ROOT / "monitor").rglob("*.py"))
             for line, value in named(ast.parse(path.read_text(encoding="utf-8")), names)]
    assert not found, "\n".join(found)


def test_the_check_sees_a_planted_name() -> None:
    code = 'def charts(source: str) -> bool:\n    return source == "redis"\n'
    assert named(ast.parse(code), frozenset({"redis"})) == [(2, "redis")]
