"""The module map holds: no import circles, engine knowledge only in engines (read from the source, fast)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE_MODULES = {"kerasweep.search.engines.optuna", "kerasweep.search.engines.ray", "kerasweep.search.engines.keras_tuner"}


def _imports() -> dict[str, set[str]]:
    """Every module of search/ and trainers/ -> the project modules it imports anywhere (lazy and
    type-checking imports too: a circle through them is still a circle in the design)."""
    modules = {}
    for package in ("search", "trainers"):
        for path in (ROOT / package).rglob("*.py"):
            name = "kerasweep." + ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            else:
                continue
            graph[name] |= {target for target in found if target in modules and target != name}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in graph:
        if module not in index:
            visit(module)
    return found


def test_no_import_circles() -> None:
    # Rule: data flows one way (DESIGN.md); SweepConfig sits below the engines
    assert _circles(_imports()) == []


def test_only_engines_know_engines() -> None:
    graph = _imports()
    # Rule: space, sweep, cli, servers and plots reach an engine only through the registry
    leaks = {module: sorted(targets & ENGINE_MODULES) for module, targets in graph.items()
             if targets & ENGINE_MODULES and not module.startswith("kerasweep.search.engines.")}
    assert leaks == {}


def test_trainers_import_nothing_of_search() -> None:
    graph = _imports()
    # Rule: trainers/ stands alone for production training
    assert {module: sorted(t for t in targets if t.startswith("kerasweep.search"))
            for module, targets in graph.items()
            if module.startswith("kerasweep.trainers") and any(t.startswith("kerasweep.search") for t in targets)} == {}
