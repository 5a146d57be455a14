"""The features layer stands alone: it imports no other layer of ours, and no module of it imports
itself back through another (module-level and deferred imports alike)."""

from __future__ import annotations

import ast
from pathlib import Path

FEATURES = Path(__file__).resolve().parents[2] / "features"
OTHER_LAYERS = ("training", "serving", "crm", "bench")


def _module(path: Path) -> str:
    parts = path.relative_to(FEATURES.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every absolute module name imported anywhere in the file, functions included."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def _graph() -> dict[str, set[str]]:
    return {_module(p): _imports(p) for p in FEATURES.rglob("*.py")}


def test_features_imports_no_other_layer():
    for module, names in _graph().items():
        leaks = {n for n in names if n.split(".")[0] in OTHER_LAYERS}
        assert not leaks, f"{module} imports {sorted(leaks)}"


def test_no_import_cycle_in_features():
    graph = {m: {n for n in names if n.split(".")[0] == "features"} for m, names in _graph().items()}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(module) :] + (module,)))
        if module in done:
            return
        for name in graph.get(module, ()):
            visit(name, path + (module,))
        done.add(module)

    for module in graph:
        visit(module, ())
