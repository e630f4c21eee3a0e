"""The floor plan of the README holds: imports point down, node modules stand alone, modules and functions stay small."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FLOORS = {"pvdoi": 1, "hamilton_nodes": 2, "flows": 3, "deployments": 3}
PRODUCT = [p for floor in FLOORS for p in sorted((ROOT / floor).rglob("*.py")) if "testing" not in p.parts]


def _imports(path: Path) -> set[str]:
    """Every module name the file imports (absolute, at any depth of the file)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("path", PRODUCT, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    floor = FLOORS[path.relative_to(ROOT).parts[0]]
    above = {top for top, level in FLOORS.items() if level > floor}
    upward = sorted(name for name in _imports(path) if name.split(".")[0] in above)
    assert not upward, f"{path.relative_to(ROOT)} (floor {floor}) imports from a floor above: {upward}"


def test_node_modules_never_import_each_other():
    for path in sorted((ROOT / "hamilton_nodes").glob("*.py")):
        others = sorted(n for n in _imports(path) if n.split(".")[0] == "hamilton_nodes")
        assert not others, f"{path.name} imports {others}"


def test_no_import_cycle_between_product_modules():
    modules = {_module(p): p for p in PRODUCT}
    graph = {m: {n for n in _imports(p) if n in modules and n != m} for m, p in modules.items()}
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for nxt in sorted(graph[module]):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):] + [nxt] if nxt in trail else [module, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize("path", PRODUCT, ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_are_small(path):
    source = path.read_text(encoding="utf-8")
    assert source.count("\n") <= 250, f"{path.relative_to(ROOT)} has {source.count(chr(10))} lines"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            assert length <= 60, f"{path.relative_to(ROOT)}:{node.lineno} {node.name} has {length} lines"


def test_the_readme_floor_plan_names_every_folder_and_module_it_mentions():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    plan = readme[readme.index("## Floor plan"):readme.index("## What it does")]
    for folder in FLOORS:
        assert f"`{folder}/`" in plan, folder
    for folder, names in re.findall(r"\| `(\w+)/`[^|]*\| ([^|]+) \|", plan):
        for name in re.findall(r"`([\w/]+\.py)`", names):
            assert (ROOT / folder / name).exists(), f"README floor plan names {folder}/{name}, which does not exist"
