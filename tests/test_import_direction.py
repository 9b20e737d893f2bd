"""The house rules of imports, read from the source with `ast` (no module is imported).

- no import cycle between tledge modules (function-level imports count too: a lazy
  import is still a dependency);
- layers point one way: analysis / demo / app / CLI -> trainer -> exporter -> edge -> core,
  so edge never imports exporter, trainer or anything above, exporter never imports the
  trainer, and core imports nothing of tledge but itself;
- TensorFlow, Keras and friends are not reachable from `tledge.core` or `tledge.edge`
  through module-level imports (imports inside functions run only when called).

Checked to fail: adding `from tledge.trainer.config import TrainConfig` to
exporter/drift.py, `import keras` at the top of edge/images.py, and
`from tledge.trainer.training import train` inside a function of trainer/trainer.py (a
cycle through training.py) each made a test below fail, naming the file.
"""

from __future__ import annotations

import ast
import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Source folder -> the package it is installed as (setup.cfg package_dir).
PACKAGES = {
    "tledge": "tledge",
    "analysis": "tledge.analysis",
    "trainer": "tledge.trainer",
    "exporter": "tledge.exporter",
    "edge": "tledge.edge",
    "benchmarks": "tledge.benchmarks",
}
TENSORFLOW = ("tensorflow", "keras", "tf_keras", "tensorflow_hub")
# Package -> tledge packages it must never import.
FORBIDDEN = {
    "tledge.core": (
        "tledge.edge",
        "tledge.exporter",
        "tledge.trainer",
        "tledge.analysis",
        "tledge.benchmarks",
        "tledge.commands",
        "tledge.cli",
        "tledge.demo",
        "tledge.app",
    ),
    "tledge.edge": (
        "tledge.exporter",
        "tledge.trainer",
        "tledge.analysis",
        "tledge.benchmarks",
        "tledge.commands",
        "tledge.cli",
        "tledge.demo",
        "tledge.app",
    ),
    "tledge.exporter": (
        "tledge.trainer",
        "tledge.analysis",
        "tledge.benchmarks",
        "tledge.commands",
        "tledge.cli",
        "tledge.demo",
        "tledge.app",
    ),
    "tledge.trainer": (
        "tledge.analysis",
        "tledge.benchmarks",
        "tledge.commands",
        "tledge.cli",
        "tledge.demo",
        "tledge.app",
    ),
    "tledge.analysis": (
        "tledge.benchmarks",
        "tledge.commands",
        "tledge.cli",
        "tledge.demo",
        "tledge.app",
    ),
    "tledge.benchmarks": ("tledge.commands", "tledge.cli", "tledge.app"),
}


@dataclass(frozen=True)
class Import:
    """One import statement: the module it names and whether it runs at import time."""

    target: str
    line: int
    module_level: bool


@functools.cache
def source_modules() -> dict[str, Path]:
    """Every tledge module name -> its file, per the package_dir mapping."""
    modules: dict[str, Path] = {}
    for folder, package in PACKAGES.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def imports_of(path: Path, module: str, is_package: bool) -> Iterator[Import]:
    """The imports in `path` (relative ones resolved), skipping `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST, module_level: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                yield from (i for stmt in child.orelse for i in visit_one(stmt, module_level))
                continue
            yield from visit_one(child, module_level)

    def visit_one(node: ast.AST, module_level: bool) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, node.lineno, module_level)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield Import(f"{base}.{alias.name}", node.lineno, module_level)
                yield Import(base, node.lineno, module_level)
        else:
            inside_function = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            yield from visit(node, module_level and not inside_function)

    yield from visit(tree, True)


@functools.cache
def dependency_graph(module_level_only: bool = False) -> dict[str, dict[str, Import]]:
    """module -> {imported tledge module -> the first import that names it}."""
    modules = source_modules()
    graph: dict[str, dict[str, Import]] = {}
    for module, path in modules.items():
        edges: dict[str, Import] = {}
        for found in imports_of(path, module, path.name == "__init__.py"):
            if module_level_only and not found.module_level:
                continue
            # `from a.b import c` yields a.b.c and a.b: whichever are tledge modules.
            target = found.target
            if target in modules and target != module and not module.startswith(f"{target}."):
                edges.setdefault(target, found)
        graph[module] = edges
    return graph


def third_party_imports(module_level_only: bool) -> dict[str, list[Import]]:
    """module -> its imports of non-tledge top-level packages."""
    modules = source_modules()
    found: dict[str, list[Import]] = {}
    for module, path in modules.items():
        found[module] = [
            item
            for item in imports_of(path, module, path.name == "__init__.py")
            if (item.module_level or not module_level_only) and not item.target.startswith("tledge")
        ]
    return found


def find_cycle(graph: dict[str, dict[str, Import]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                cycle = walk(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = walk(start)
            if cycle:
                return cycle
    return None


def _where(module: str, item: Import) -> str:
    return f"{source_modules()[module].relative_to(REPO)}:{item.line}"


def test_the_walk_sees_the_whole_tree():
    graph = dependency_graph()
    assert "tledge.trainer.trainer" in graph and "tledge.core.run_folder" in graph
    assert "tledge.trainer.trainer" in graph["tledge.trainer.hub_training"]
    assert "tledge.core.run_folder" in graph["tledge.exporter.loading"]


def test_no_import_cycles():
    graph = dependency_graph()
    cycle = find_cycle(graph)
    if cycle:
        steps = [f"{a} -> {b} ({_where(a, graph[a][b])})" for a, b in itertools.pairwise(cycle)]
        raise AssertionError("import cycle: " + "; ".join(steps))


def test_layers_import_only_downward():
    wrong = []
    for module, edges in dependency_graph().items():
        for layer, banned in FORBIDDEN.items():
            if module == layer or module.startswith(f"{layer}."):
                wrong += [
                    f"{_where(module, item)}: {module} imports {target}"
                    for target, item in edges.items()
                    if any(target == b or target.startswith(f"{b}.") for b in banned)
                ]
    assert not wrong, "\n".join(wrong)


def test_tensorflow_is_not_reachable_from_core_or_edge_module_imports():
    graph = dependency_graph(module_level_only=True)
    third_party = third_party_imports(module_level_only=True)
    wrong = []
    for start in sorted(graph):
        if not start.startswith(("tledge.core", "tledge.edge")):
            continue
        seen, stack, parent = {start}, [start], {start: None}
        while stack:
            module = stack.pop()
            for item in third_party[module]:
                if item.target.split(".")[0] in TENSORFLOW:
                    chain, step = [], module
                    while step:
                        chain.append(step)
                        step = parent[step]
                    route = " <- ".join(chain)
                    wrong.append(f"{_where(module, item)}: {item.target} ({route})")
            for nxt in graph[module]:
                if nxt not in seen:
                    seen.add(nxt)
                    parent[nxt] = module
                    stack.append(nxt)
    assert not wrong, "\n".join(sorted(set(wrong)))
