"""Reading EXPLAIN's JSON plans: a compact node summary, the full text, and the indexes a plan uses.

Plans come from the advisor's own what-if session (``whatif.WhatIf.explain``);
HypoPG names a hypothetical index ``<oid>btree_table_col``, which the
renderers replace with the label of the index the plan proposes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

Plan = dict[str, Any]
_HYPOTHETICAL = re.compile(r"^<(\d+)>")
MAX_TEXT_LINES = 60


WEIGHTED = "Weighted Cost"  # set by the advisor on a plan that stands for several value variants (skew.py)


def cost(plan: Plan) -> float:
    """The plan's total cost, or the weighted cost of the variants it stands for."""
    return float(plan[WEIGHTED] if WEIGHTED in plan else plan["Total Cost"])


def nodes(plan: Plan) -> Iterator[Plan]:
    """Every node of the plan, parents before children."""
    stack = [plan]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.get("Plans") or []))


def index_names(plan: Plan) -> set[str]:
    """Names of the indexes the plan scans (hypothetical ones as HypoPG names them)."""
    return {str(n["Index Name"]) for n in nodes(plan) if n.get("Index Name")}


def hypothetical_oid(name: str) -> int | None:
    match = _HYPOTHETICAL.match(name)
    return int(match.group(1)) if match else None


def _index_label(name: str, labels: Mapping[int, str]) -> str:
    oid = hypothetical_oid(name)
    if oid is None:
        return name
    return labels.get(oid, "a hypothetical index")


def _node_label(node: Plan, labels: Mapping[int, str]) -> str:
    kind = str(node.get("Node Type", "?"))
    if node.get("Strategy") and kind == "Aggregate":
        kind = f"{node['Strategy'].capitalize()} {kind}" if node["Strategy"] != "Plain" else kind
    if node.get("Join Type") and node["Join Type"] != "Inner" and "Join" in kind:
        kind = f"{kind} ({node['Join Type'].lower()})"
    if node.get("Scan Direction") == "Backward":
        kind += " Backward"
    if node.get("Index Name"):
        kind += f" using {_index_label(str(node['Index Name']), labels)}"
    if node.get("Relation Name"):
        kind += f" on {node['Relation Name']}"
    return kind


def summary(plan: Plan, labels: Mapping[int, str] | None = None) -> str:
    """One line: ``Limit → Index Scan using (new) on orders``; children of a join in brackets."""
    labels = labels or {}

    def walk(node: Plan) -> str:
        here = _node_label(node, labels)
        children = [c for c in node.get("Plans") or [] if c.get("Parent Relationship") != "InitPlan"]
        if not children:
            return here
        if len(children) == 1:
            return f"{here} → {walk(children[0])}"
        return f"{here} [{'; '.join(walk(c) for c in children)}]"

    return walk(plan)


def text(plan: Plan, labels: Mapping[int, str] | None = None) -> str:
    """The plan as indented lines, like EXPLAIN's text format (costs, rows, conditions, filters)."""
    labels = labels or {}
    lines: list[str] = []

    def walk(node: Plan, depth: int) -> None:
        if len(lines) >= MAX_TEXT_LINES:
            return
        pad = "  " * depth + ("-> " if depth else "")
        lines.append(f"{pad}{_node_label(node, labels)}  (cost={node.get('Startup Cost', 0):.2f}.."
                     f"{node.get('Total Cost', 0):.2f} rows={node.get('Plan Rows', 0):.0f})")
        for key in ("Index Cond", "Recheck Cond", "Hash Cond", "Merge Cond", "Join Filter", "Filter", "Sort Key",
                    "Group Key"):
            value = node.get(key)
            if value:
                shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
                lines.append(f"{'  ' * depth}     {key}: {shown}")
        for child in node.get("Plans") or []:
            walk(child, depth + 1)

    walk(plan, 0)
    if len(lines) >= MAX_TEXT_LINES:
        lines.append("...")
    return "\n".join(lines)
