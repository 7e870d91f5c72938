"""The advisor stays readable: no function longer than 60 lines or taking more than 6 parameters.

Issue 21 item 5's acceptance check, read from the source's AST so a new long function fails here by name.
"""

import ast
from pathlib import Path

ADVISOR = Path(__file__).resolve().parents[2] / "monitor" / "advisor"
MAX_LINES = 60
MAX_PARAMS = 6


def _functions() -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    found = []
    for path in sorted(ADVISOR.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found.append((f"{path.name} {node.name}", node))
    return found


def _params(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    args = node.args
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return len([n for n in names if n not in ("self", "cls")])


def _lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    assert node.end_lineno is not None
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return node.end_lineno - first + 1


def test_the_advisor_is_read_from_its_folder() -> None:
    assert len(_functions()) > 50


def test_no_advisor_function_is_longer_than_60_lines() -> None:
    long = [f"{name} ({_lines(node)} lines)" for name, node in _functions() if _lines(node) > MAX_LINES]
    assert not long, f"functions over {MAX_LINES} lines: {long}"


def test_no_advisor_function_takes_more_than_6_parameters() -> None:
    wide = [f"{name} ({_params(node)} parameters)" for name, node in _functions() if _params(node) > MAX_PARAMS]
    assert not wide, f"functions over {MAX_PARAMS} parameters: {wide}"
