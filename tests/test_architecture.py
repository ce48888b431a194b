"""The shape of the package, checked from its source: layers point one way, no import cycles,
no imports inside functions (optional extras aside), every public name documented."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "synthaug"

# Lower layers first; a module may import its own layer and the ones before it.
LAYERS = [
    (
        "synthaug.errors",
        "synthaug._version",
        "synthaug._process",
        "synthaug._budget",
        "synthaug._utils",
        "synthaug._memory",
        "synthaug._params",
        "synthaug.params",
    ),
    ("synthaug.registry",),
    ("synthaug.data",),
    ("synthaug.nn",),
    ("synthaug.generators",),
    ("synthaug.augment",),
    ("synthaug.metrics",),
    ("synthaug.anomaly",),
    ("synthaug.bench",),
    ("synthaug.cli",),
]
# Optional extras are imported where they are used, so the package works without them.
OPTIONAL = {"opacus", "ray", "highdicom", "pylibjpeg"}
PUBLIC_PACKAGES = [
    "synthaug",
    "synthaug.registry",
    "synthaug.errors",
    "synthaug.params",
    "synthaug.data",
    "synthaug.nn",
    "synthaug.generators",
    "synthaug.augment",
    "synthaug.metrics",
    "synthaug.anomaly",
    "synthaug.bench",
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def layer(module: str) -> int:
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{module} belongs to no layer; add it to LAYERS")


def imports(path: Path) -> list[tuple[str, ast.AST]]:
    """``(imported synthaug module, node)`` for every import statement in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, node) for a in node.names if a.name.split(".")[0] == "synthaug"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "synthaug":
            assert node.level == 0, f"{path}: relative import"
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.append((full if full in MODULES else node.module, node))
    return out


GRAPH = {name: sorted({m for m, _ in imports(path)}) for name, path in MODULES.items()}


def test_every_module_is_in_a_layer():
    for name in MODULES:
        if name != "synthaug":
            layer(name)


def test_lower_layers_never_import_higher_ones():
    wrong = [
        f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
        for a, targets in GRAPH.items()
        if a != "synthaug"
        for b in targets
        if b != "synthaug" and layer(b) > layer(a)
    ]
    assert not wrong, "\n".join(wrong)


def test_nothing_imports_the_top_level_package():
    # synthaug/__init__ is the user's facade; modules import what they need from its source.
    importers = [a for a, targets in GRAPH.items() if "synthaug" in targets]
    assert not importers


def test_no_import_cycles():
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in GRAPH.get(node, []):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in GRAPH:
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_no_imports_inside_functions_but_optional_extras():
    found = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Import):
                    tops = {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom):
                    tops = {(node.module or "").split(".")[0]}
                else:
                    continue
                if not tops <= OPTIONAL:
                    found.append(f"{name}:{node.lineno} imports {sorted(tops)} in {func.name}")
    assert not found, "\n".join(found)


def test_the_checker_sees_a_cycle_and_a_wrong_layer(tmp_path):
    # The checks above must be able to fail: a tiny graph with both faults.
    global GRAPH
    saved = GRAPH
    GRAPH = {
        "synthaug.data._a": ["synthaug.generators"],
        "synthaug.generators": ["synthaug.data._a"],
    }
    try:
        with pytest.raises(AssertionError, match="layer"):
            test_lower_layers_never_import_higher_ones()
        with pytest.raises(AssertionError, match="->"):
            test_no_import_cycles()
    finally:
        GRAPH = saved


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_public_names_exist_and_are_documented(package):
    module = importlib.import_module(package)
    assert module.__doc__, f"{package} has no docstring"
    for name in module.__all__:
        obj = getattr(module, name)  # every name in __all__ exists
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{package}.{name} has no docstring"
