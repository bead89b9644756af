"""The targeting package imports only downwards (no cycle), as docs/targeting.md lays out."""

from __future__ import annotations

import ast
from pathlib import Path

import flagkit.core.targeting as package

# Bottom up: a module may import only modules listed before it.
LAYERS = [
    "model",
    "attributes",
    "operators",
    "bucketing",
    "metadata",
    "parse",
    "interpreter",
    "compiler",
    "engine",
]


def imported_siblings(module: str) -> set[str]:
    """The ``flagkit.core.targeting.*`` modules that ``module`` imports."""
    tree = ast.parse((Path(package.__file__).parent / f"{module}.py").read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            prefix = "flagkit.core.targeting."
            if node.module.startswith(prefix):
                found.add(node.module[len(prefix) :])
            elif node.module == "flagkit.core.targeting":
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("flagkit.core.targeting."):
                    found.add(alias.name.rsplit(".", 1)[1])
    return found


def test_every_module_is_in_a_layer() -> None:
    """The layer list names exactly the package's modules."""
    modules = {p.stem for p in Path(package.__file__).parent.glob("*.py")} - {"__init__"}
    assert modules == set(LAYERS)


def test_modules_import_only_lower_layers() -> None:
    """No module imports one at its level or above: the package has no import cycle,
    and the compiler is an optional layer over the interpreter, not under it."""
    for index, module in enumerate(LAYERS):
        assert imported_siblings(module) <= set(LAYERS[:index]), module


def test_no_module_over_600_lines() -> None:
    """Each module stays readable in one sitting."""
    for path in Path(package.__file__).parent.glob("*.py"):
        assert len(path.read_text("utf-8").splitlines()) <= 600, path.name
