"""The package's layers: which may import which, and no import cycle.

Folders are the architecture. `LAYERS` says, for each package (or leaf module), which
others it may import; any other import fails here, whether at module level, inside a
function (a lazy import is still a dependency) or under `if TYPE_CHECKING:` (a type
annotation that reaches up the layers is a dependency too). Change the table on purpose,
with the reason, never to let one import through.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "facefilter"
SRC = Path(__file__).resolve().parents[1] / "src"


def module_names() -> dict[str, Path]:
    """Every module under src/facefilter by dotted name; a package's `__init__` is the package."""
    names: dict[str, Path] = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def is_type_checking(test: ast.expr) -> bool:
    """`if TYPE_CHECKING:` or `if typing.TYPE_CHECKING:`."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def import_nodes(body: list[ast.stmt], typing_too: bool = False):
    """Every import statement, at module level or inside functions (a lazy import is still
    a dependency, and hiding a cycle in a function only moves it); those under
    `if TYPE_CHECKING:` (which never run) only when `typing_too`."""
    for node in body:
        if isinstance(node, ast.If) and is_type_checking(node.test) and not typing_too:
            yield from import_nodes(node.orelse, typing_too)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                yield from import_nodes([child], typing_too)


def imported_modules(
    name: str, path: Path, modules: dict[str, Path], typing_too: bool = False
) -> set[str]:
    """The facefilter modules that importing `name` imports directly."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in import_nodes(ast.parse(path.read_text(), str(path)).body, typing_too):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:  # relative: resolve against the importing module's package
            anchor = name.split(".")[: len(name.split(".")) - node.level + is_package]
            base = ".".join([*anchor, *([base] if base else [])])
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            found.add(submodule if submodule in modules else base)
    return {target for target in found if target in modules and target != name}


def import_graph(typing_too: bool = False) -> dict[str, set[str]]:
    modules = module_names()
    return {
        name: imported_modules(name, path, modules, typing_too) for name, path in modules.items()
    }


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path back to its start) per strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group: set[str] = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [cycle_through(group, graph) for group in groups]


def cycle_through(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        next_frontier = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    return [*paths[node], start]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    next_frontier.append(target)
        frontier = next_frontier
    raise AssertionError(f"{sorted(group)} is not a cycle")


def test_find_cycles_reports_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_graph_sees_the_face_package():
    graph = import_graph()
    assert "facefilter.face.types" in graph["facefilter.face.detect"]
    assert "facefilter.face" in graph  # the package, from its __init__


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_detect_and_align_do_not_import_each_other():
    graph = import_graph()
    assert "facefilter.face.align" not in graph["facefilter.face.detect"]
    assert "facefilter.face.detect" not in graph["facefilter.face.align"]


# --- the layers ---------------------------------------------------------------------------
# fmt: off
# Leaf utilities: imported by every layer, importing only each other.
LEAVES = ("facefilter", "errors", "sizes", "pixels", "safe_io", "pictures", "pretrained", "degrade",
          "attributes", "memory", "provenance", "hardware")
# Each layer and the layers it may import (leaves always). Arrows point down: a layer
# never reaches one above it, so the model knows nothing of files or faces, the photo
# pipeline nothing of training, and only the command line sees everything.
LAYERS: dict[str, tuple[str, ...]] = {
    "models": (),  # the contract, capabilities, the registry, networks, losses, schedules
    "synth": (),  # the renderer: parameters -> faces in every style
    "face": (),  # detect, align, masks, paste: images and geometry only
    "data": ("synth", "models", "face"),  # specs, sources (synth's too), loading, framing
    "runs": ("models",),  # the run directory's format: config.json, weights, state/, lock
    "inference": ("models", "runs", "face", "data"),  # Filter, PhotoFilter, files, video
    "evaluation": ("models", "runs", "face", "data", "synth", "inference"),
    "training": ("models", "runs", "data", "evaluation"),  # evaluation: --eval-every
    "tools": ("models", "runs", "face", "data", "inference"),  # vectors, grids, labels
    "demo": ("models", "face", "data", "synth", "inference"),
    "cli": ("models", "synth", "face", "data", "runs", "inference", "evaluation",
            "training", "tools", "demo"),
    "console": ("cli",),
    "__main__": ("console",),
}
# fmt: on


def layer_of(module: str) -> str:
    """`facefilter.inference.photo` -> `inference`; a leaf module is its own name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "facefilter"


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a layer its importer may not use, as `importer -> imported`."""
    found = []
    for module, targets in sorted(graph.items()):
        mine = layer_of(module)
        allowed = set(LEAVES) if mine in LEAVES else {mine, *LEAVES, *LAYERS[mine]}
        found += [f"{module} -> {target}" for target in sorted(targets)
                  if layer_of(target) not in allowed]  # fmt: skip
    return found


def test_every_module_has_a_layer():
    unplaced = {layer_of(name) for name in module_names()} - set(LAYERS) - set(LEAVES)
    assert not unplaced, f"modules outside the layer table: {sorted(unplaced)}"


def test_layers_import_only_downwards():
    violations = layer_violations(import_graph(typing_too=True))
    assert not violations, "imports against the layer table:\n" + "\n".join(violations)


def test_a_planted_upward_import_fails(tmp_path):
    """The check is live: a model importing the photo pipeline, even only for typing, and a
    leaf importing a layer are both caught."""
    graph = import_graph(typing_too=True)
    graph["facefilter.models.base"] = {*graph["facefilter.models.base"],
                                       "facefilter.inference.photo"}  # fmt: skip
    graph["facefilter.sizes"] = {"facefilter.models.base"}
    assert layer_violations(graph) == [
        "facefilter.models.base -> facefilter.inference.photo",
        "facefilter.sizes -> facefilter.models.base",
    ]
    planted = tmp_path / "planted.py"
    planted.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                       "    from facefilter.inference.photo import PhotoFilter\n")  # fmt: skip
    modules = {**module_names(), "facefilter.models.planted": planted}
    seen = imported_modules("facefilter.models.planted", planted, modules, typing_too=True)
    assert seen == {"facefilter.inference.photo"}
    assert imported_modules("facefilter.models.planted", planted, modules) == set()
