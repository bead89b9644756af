"""The adapters' import graph: no cycle, and ``flagkit/`` imports no web framework."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ("django", "flask", "werkzeug", "jinja2", "itsdangerous", "asgiref", "blinker")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, *, top_level_only: bool) -> set[str]:
    """Modules imported by ``tree``: at import time only (module level, outside ``if
    TYPE_CHECKING:``), or anywhere."""
    found: set[str] = set()
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        if top_level_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        pending.extend(ast.iter_child_nodes(node))
    return found


def _graph(packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Module -> the modules of ``packages`` it imports anywhere (``TYPE_CHECKING`` blocks
    aside)."""
    modules = {
        _module_name(path): path
        for package in packages
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        imported = _imports(tree, top_level_only=False)
        # ``from pkg import sub`` depends on ``pkg.sub`` when that is a module, not on the
        # package's __init__ (Python runs a parent package's __init__ first anyway).
        targets = {m for m in imported if m in modules}
        targets -= {m for m in targets if any(i.startswith(m + ".") for i in targets)}
        graph[name] = targets - {name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path of module names, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_adapters_and_the_web_helpers_have_no_import_cycle() -> None:
    """Imports among ``flagkit_django``, ``flagkit_flask`` and ``flagkit.web`` — module
    level or deferred into a function — form no cycle (the Flask extension once imported
    its CLI and Jinja helpers inside ``init_app`` while they imported the extension)."""
    graph = _graph(("flagkit_django", "flagkit_flask", "flagkit/web"))
    assert "flagkit_flask.extension" in graph and "flagkit.web.request_flags" in graph
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above would notice a cycle."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_flagkit_imports_no_web_framework() -> None:
    """No module of ``flagkit/`` imports Django, Flask or their libraries, even lazily:
    the adapters depend on the core, never the other way round."""
    offenders = []
    for path in (ROOT / "flagkit").rglob("*.py"):
        for module in _imports(ast.parse(path.read_text()), top_level_only=False):
            if module.split(".")[0] in FRAMEWORKS:
                offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert offenders == []


def test_production_code_never_imports_the_test_helpers() -> None:
    """The adapters' runtime modules import neither their own ``testing`` module nor
    ``flagkit.testing.overrides`` (the test helpers register with the adapter instead)."""
    graph = _graph(("flagkit_django", "flagkit_flask"))
    for name, targets in graph.items():
        if name.endswith(("testing", "pytest_plugin")):
            continue
        assert not {t for t in targets if t.endswith(".testing")}, name
    for path in [*(ROOT / "flagkit_django").rglob("*.py"), *(ROOT / "flagkit_flask").rglob("*.py")]:
        if path.stem in ("testing", "pytest_plugin"):
            continue
        text = path.read_text()
        assert "sys.modules" not in text and "flagkit.testing.overrides" not in text, path
