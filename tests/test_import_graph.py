"""The import graph of ``flagkit``, ``flagkit_django`` and ``flagkit_flask``: no cycles, and
the core imports no web framework and no optional extra (docs/architecture.md, "Principles").

The graph is built statically with :mod:`ast`, without importing anything, so it also sees
imports that only run in some code paths. The rules, in order:

1. **Nodes** are the modules of the three packages (``pkg/__init__.py`` is ``pkg``).
2. **Every import counts**, at module level and inside functions and classes. Imports
   under ``if TYPE_CHECKING:`` never run, so the run-time graph leaves them out; a second
   test adds them back, because a module that names another's types still depends on it
   and a cycle through such an import is still a cycle between layers. Imports of names
   built at run time (``importlib.import_module("...")``) are not seen.
3. ``import a.b.c`` is an edge to ``a.b.c`` (the most specific module of ours it names),
   not to the parent packages it also initialises: parents re-export their children, so
   counting them would turn every import into a cycle through ``flagkit/__init__.py``.
4. ``from pkg import name`` is an edge to ``pkg.name`` when that is a module. Otherwise,
   when ``pkg/__init__.py`` only re-exports ``name`` from one of its submodules, the edge
   goes to the submodule that defines it (followed through nested re-exports), so
   ``from flagkit.core import FlagStore`` in a sibling means "depends on the store", not
   "depends on everything the package re-exports". A name defined in ``__init__`` itself
   is an edge to the package.
5. Relative imports are resolved against the importing module's package.

A cycle is reported as the path ``a -> b -> ... -> a`` for each strongly connected
component of the graph, so one failure lists every cycle to break.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("flagkit", "flagkit_django", "flagkit_flask")

# Third-party top-level packages the core (``flagkit``) must never import: the web frameworks
# and their stacks belong to the adapters.
FRAMEWORKS = frozenset({"django", "flask", "werkzeug", "jinja2", "blinker"})
# Optional extras: only their own leaf modules inside ``flagkit`` may import them, and no
# other ``flagkit`` module may import those leaves.
OPTIONAL_EXTRAS = {"openfeature": "flagkit.openfeature", "redis": "flagkit.fleet"}
# The one way into an extra's leaf from the core: an import inside a function of the named
# module, run only when the option that needs the extra is set (redis_url -> fleet mode).
LAZY_ENTRIES = {"flagkit.fleet": {"flagkit.client"}}


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    tree: ast.Module
    # Internal edges (target module -> first line) of imports that run, of imports only made
    # for type checkers, and the external top-level packages imported (name -> line).
    edges: dict[str, int] = field(default_factory=dict)
    type_edges: dict[str, int] = field(default_factory=dict)
    external: dict[str, int] = field(default_factory=dict)


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


@cache
def _modules() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name, is_package = _module_name(path)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            modules[name] = Module(name, path, is_package, tree)
    for module in modules.values():
        _collect(module, modules)
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _imports(node: ast.AST, type_only: bool = False) -> Iterator[tuple[ast.stmt, bool]]:
    """Every import statement below ``node``, and whether it sits in ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, type_only
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for statement in child.body:
                yield from _imports(ast.Module(body=[statement], type_ignores=[]), True)
            for statement in child.orelse:  # the ``else:`` branch does run
                yield from _imports(ast.Module(body=[statement], type_ignores=[]), type_only)
        else:
            yield from _imports(child, type_only)


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base.pop()
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _reexport_origin(package: str, name: str, modules: dict[str, Module], depth: int = 0) -> str:
    """The module that defines ``name`` re-exported by ``package/__init__.py`` (rule 4)."""
    init = modules[package]
    if depth > 10:
        return package
    for node in init.tree.body:
        if not isinstance(node, ast.ImportFrom):
            continue
        source = _absolute(init, node)
        for alias in node.names:
            if (alias.asname or alias.name) != name:
                continue
            submodule = f"{source}.{alias.name}"
            if submodule in modules:
                return submodule
            if source in modules and source.startswith(package + "."):
                if modules[source].is_package:
                    return _reexport_origin(source, alias.name, modules, depth + 1)
                return source
    return package


def _target(dotted: str, modules: dict[str, Module]) -> str | None:
    """The most specific module of ours that ``dotted`` names, or None (rule 3)."""
    parts = dotted.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _collect(module: Module, modules: dict[str, Module]) -> None:
    def add(target: str | None, line: int, type_only: bool) -> None:
        if target is not None and target != module.name:
            (module.type_edges if type_only else module.edges).setdefault(target, line)

    for node, type_only in _imports(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in PACKAGES:
                    add(_target(alias.name, modules), node.lineno, type_only)
                else:
                    module.external.setdefault(top, node.lineno)
            continue
        assert isinstance(node, ast.ImportFrom)
        source = _absolute(module, node)
        top = source.split(".")[0]
        if top not in PACKAGES:
            module.external.setdefault(top, node.lineno)
            continue
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            if submodule in modules:
                add(submodule, node.lineno, type_only)
            elif source in modules and modules[source].is_package:
                add(_reexport_origin(source, alias.name, modules), node.lineno, type_only)
            else:
                add(_target(source, modules), node.lineno, type_only)


def _all_imports(module: Module) -> Iterator[tuple[str, int]]:
    """Top-level names of every import in ``module``, TYPE_CHECKING ones included."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, node.lineno


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative): the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def cycle_path(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One shortest cycle through the first module of ``component``, as a path."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return component  # unreachable for a strongly connected component


def import_graph(*, type_only: bool = False) -> dict[str, set[str]]:
    """Module -> the modules it imports; with ``type_only`` also the imports made only
    under ``if TYPE_CHECKING:``."""
    return {
        name: set(module.edges) | (set(module.type_edges) if type_only else set())
        for name, module in _modules().items()
    }


def _where(source: str, target: str) -> str:
    module = _modules()[source]
    if target in module.edges:
        return f"{module.path.relative_to(ROOT)}:{module.edges[target]}"
    return f"{module.path.relative_to(ROOT)}:{module.type_edges[target]}, type-checking only"


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for component in strongly_connected(graph):
        path = cycle_path(graph, component)
        steps = ", ".join(f"{a} -> {b} ({_where(a, b)})" for a, b in itertools.pairwise(path))
        problems.append(f"cycle among {component}: {steps}")
    return problems


def test_the_graph_sees_the_packages_and_their_imports() -> None:
    """The graph has every module and the edges the rules promise (a sanity check)."""
    graph = import_graph(type_only=True)
    assert {"flagkit", "flagkit.client", "flagkit_django", "flagkit_flask"} <= set(graph)
    assert len(graph) > 60
    # ``flagkit/__init__.py`` imports the client: a plain edge to a submodule.
    assert "flagkit.client" in graph["flagkit"]
    # Rule 4: ``from flagkit.errors import FlagKitError`` depends on the module defining it.
    importers = [
        module.name
        for module in _modules().values()
        for node in ast.walk(module.tree)
        if isinstance(node, ast.ImportFrom)
        and node.module == "flagkit.errors"
        and any(alias.name == "FlagKitError" for alias in node.names)
    ]
    assert importers
    for name in importers:
        assert "flagkit.errors.flagkit_error" in graph[name], name


def test_rules_on_a_synthetic_graph() -> None:
    """Cycle detection reports each component once, with a real path through it."""
    graph = {
        "a": {"b"},
        "b": {"c"},
        "c": {"a", "d"},
        "d": set(),
        "e": {"f"},
        "f": {"e"},
        "g": {"g"},  # imports of oneself are never edges (rule 1), ignored here too
    }
    components = strongly_connected(graph)
    assert components == [["a", "b", "c"], ["e", "f"]]
    assert cycle_path(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_no_import_cycles() -> None:
    """No module of the three packages imports itself back through others at run time."""
    problems = _cycles(import_graph())
    assert not problems, "import cycles:\n" + "\n".join(problems)


def test_no_cycles_through_type_checking_imports() -> None:
    """The layers hold for type checkers too: an import made only for annotations is still
    a dependency, and a cycle through one means two modules that each need the other."""
    problems = _cycles(import_graph(type_only=True))
    assert not problems, "import cycles (counting TYPE_CHECKING imports):\n" + "\n".join(problems)


def test_the_core_imports_no_framework_and_no_optional_extra() -> None:
    """Nothing under flagkit/ imports Django or Flask; optional extras stay in their leaves."""
    problems = []
    modules = _modules()
    for name, module in modules.items():
        if not (name == "flagkit" or name.startswith("flagkit.")):
            continue
        where = module.path.relative_to(ROOT)
        for imported, line in _all_imports(module):
            top = imported.split(".")[0]
            if top in FRAMEWORKS:
                problems.append(f"{where}:{line}: imports {imported} (a web framework)")
            leaf = OPTIONAL_EXTRAS.get(top)
            if leaf is not None and not (name == leaf or name.startswith(leaf + ".")):
                problems.append(f"{where}:{line}: imports {imported} (an optional extra)")
        lazy_lines = _function_import_lines(module)
        for target, line in module.edges.items():
            for leaf in OPTIONAL_EXTRAS.values():
                inside = name == leaf or name.startswith(leaf + ".")
                if (target == leaf or target.startswith(leaf + ".")) and not inside:
                    if name in LAZY_ENTRIES.get(leaf, ()) and line in lazy_lines:
                        continue  # the documented lazy entry point
                    problems.append(f"{where}:{line}: imports {target} (an optional extra)")
    assert not problems, "\n".join(problems)


def _function_import_lines(module: Module) -> set[int]:
    """Lines of the import statements inside function bodies of ``module``."""
    lines: set[int] = set()
    for node in ast.walk(module.tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    lines.add(inner.lineno)
    return lines


def test_the_fleet_extra_is_entered_only_lazily() -> None:
    """The client's import of flagkit.fleet sits inside a function (rule above), and it is
    the only module outside the leaf that imports it."""
    client = _modules()["flagkit.client"]
    lines = [line for target, line in client.edges.items() if target.startswith("flagkit.fleet")]
    assert lines, "flagkit.client no longer imports flagkit.fleet: update LAZY_ENTRIES"
    assert set(lines) <= _function_import_lines(client)


def test_production_code_never_imports_the_test_helpers() -> None:
    """The adapters' runtime modules import neither their own ``testing`` module nor
    ``flagkit.testing.overrides``: the test helpers (``testing``, ``testutils``,
    ``pytest_plugin``) register with the adapter instead."""
    problems = []
    for name, targets in import_graph(type_only=True).items():
        if not name.startswith(("flagkit_django", "flagkit_flask")):
            continue
        if name.rsplit(".", 1)[-1] in ("testing", "testutils", "pytest_plugin"):
            continue
        bad = sorted(t for t in targets if t.endswith(".testing") or ".testing." in t)
        if bad:
            problems.append(f"{name} imports {bad}")
        text = _modules()[name].path.read_text(encoding="utf-8")
        if "sys.modules" in text:
            problems.append(f"{name} looks modules up in sys.modules")
    assert not problems, "\n".join(problems)
