"""The layout's rules, checked on the source (DESIGN.md, "Layout"): no import cycles among the project's
modules, no private name imported across modules, and the runtime (src/model_router, the only project code
in the Lambda layer) never imports the offline tools (src/model_router_tools).

The import graph is read with ``ast`` from every module under src/: module-level imports and imports inside
functions alike (a late import dodges a cycle at run time, it does not remove the dependency). Importing
``a.b.c`` from outside package ``a.b`` also runs ``a/__init__`` and ``a/b/__init__``: those count too.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PROJECT_PACKAGES = ("model_router", "model_router_tools")
# Project code that imports project modules without being one of them (handlers, benchmarks, scripts):
# checked for private imports too.
OTHER_CODE = ("functions", "bench", "scripts")

# Import edges known to close a cycle, each to be removed by its owner (the test ignores them), and private
# names taken across modules (``from x import _y`` or ``x._y``), keyed by what the check reports. Both empty:
# a new entry needs a reason next to it; test_the_allow_lists_name_only_what_still_happens fails on a stale one.
CYCLE_EDGES_ALLOWED: dict[tuple[str, str], str] = {}
PRIVATE_IMPORTS_ALLOWED: dict[str, str] = {}


@dataclass(frozen=True)
class Import:
    importer: str  # module name
    path: str  # file, relative to the project root
    line: int
    target: str  # the project module (or package) imported
    names: tuple[str, ...]  # for ``from target import a, b``; () for ``import target``
    statement: str = ""  # what the import statement names, when ``target`` is a package it runs on the way


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PROJECT_PACKAGES for p in sorted((SRC / package).rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module ``name`` is, or is in (``pkg.mod.func`` -> ``pkg.mod``); None outside the project."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_in(path: Path, importer: str, modules: dict[str, Path]) -> Iterator[Import]:
    """Every import of a project module in ``path``, at any depth (functions, classes, ``if`` blocks)."""
    is_package = path.name == "__init__.py"
    shown = str(path.relative_to(ROOT))
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=shown)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, modules)
                if target:
                    yield Import(importer, shown, node.lineno, target, ())
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the importer's package, up level - 1 packages
                base = importer.split(".") if is_package else importer.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            target = _resolve(source, modules)
            if not target:
                continue
            names = tuple(alias.name for alias in node.names)
            # ``from pkg import mod`` imports the module pkg.mod.
            submodules = [f"{source}.{n}" for n in names if f"{source}.{n}" in modules]
            yield Import(importer, shown, node.lineno, target, names)
            for submodule in submodules:
                yield Import(importer, shown, node.lineno, submodule, ())


def import_graph() -> dict[str, dict[str, Import]]:
    """importer -> {imported project module: the first import of it}, parent packages included."""
    modules = project_modules()
    graph: dict[str, dict[str, Import]] = {name: {} for name in modules}
    for importer, path in modules.items():
        for found in imports_in(path, importer, modules):
            # Importing a.b.c runs a/__init__ and a/b/__init__ first, unless the importer is inside them
            # (then they are already initialised, or initialising: not a dependency of this module).
            parts = found.target.split(".")
            for depth in range(1, len(parts) + 1):
                target = ".".join(parts[:depth])
                inside = importer == target or importer.startswith(target + ".")
                if target in modules and target != importer and not inside:
                    via = found.target if target != found.target else ""
                    graph[importer].setdefault(target, replace(found, target=target, statement=via))
    return graph


def find_cycle(graph: dict[str, dict[str, Import]]) -> list[Import] | None:
    """One import cycle (the imports along it, in order), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[Import] = []

    def visit(module: str) -> list[Import] | None:
        state[module] = 1
        for target, found in sorted(graph.get(module, {}).items()):
            if state.get(target) == 1:
                start = next((i for i, step in enumerate(path) if step.importer == target), len(path))
                return [*path[start:], found]
            if target not in state:
                path.append(found)
                cycle = visit(target)
                if cycle:
                    return cycle
                path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def _describe(cycle: list[Import]) -> str:
    steps = []
    for step in cycle:
        package = f" (its __init__ runs for {step.statement})" if step.statement else ""
        steps.append(f"{step.importer} imports {step.target}{package} ({step.path}:{step.line})")
    return "import cycle:\n  " + "\n  ".join(steps)


def _without_allowed(graph: dict[str, dict[str, Import]]) -> dict[str, dict[str, Import]]:
    return {m: {t: i for t, i in edges.items() if (m, t) not in CYCLE_EDGES_ALLOWED} for m, edges in graph.items()}


def _module_aliases(tree: ast.AST, modules: dict[str, Path]) -> dict[str, str]:
    """Local names bound to project modules: ``import a.b as m``, ``from a import b`` (a module), ``import a``."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.name if alias.asname else alias.name.split(".")[0]
                if bound in modules:
                    aliases[alias.asname or bound] = bound
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if f"{node.module}.{alias.name}" in modules:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def private_uses(importer: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """``from x import _y``, and ``x._y`` through an imported module x, where x is another project module
    and ``_y`` is not a submodule of it: "file:line: x._y"."""
    shown = str(path.relative_to(ROOT))
    for imp in imports_in(path, importer, modules):
        for name in imp.names:
            if name.startswith("_") and f"{imp.target}.{name}" not in modules and imp.target != importer:
                yield f"{shown}:{imp.line}: from {imp.target} import {name}"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases = _module_aliases(tree, modules)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")):
            continue
        chain, value = [], node.value
        while isinstance(value, ast.Attribute):
            chain.append(value.attr)
            value = value.value
        if isinstance(value, ast.Name) and value.id in aliases:
            module = ".".join([aliases[value.id], *reversed(chain)])
            if module in modules and module != importer and f"{module}.{node.attr}" not in modules:
                yield f"{shown}:{node.lineno}: {module}.{node.attr}"


def private_imports() -> list[str]:
    """Every private name one project module takes from another, in src/ and in the handlers, benchmarks and
    scripts (tests may reach into a module: the moto guards do, by design)."""
    modules = project_modules()
    files = list(modules.items())
    files += [(f"<{path.relative_to(ROOT)}>", path)
              for folder in OTHER_CODE for path in sorted((ROOT / folder).rglob("*.py"))]
    return [use for importer, path in files for use in private_uses(importer, path, modules)]


# -- the checks -----------------------------------------------------------------------------------------
def test_the_graph_reader_sees_late_imports_and_finds_a_cycle_through_them() -> None:
    """The checker itself, on a known case: the scorer's package imports, and a made-up cycle."""
    graph = import_graph()
    assert "model_router.scoring.features" in graph["model_router.scoring.score"]
    # A late import counts: the engine is imported inside local/batch.py's item_engine().
    assert "model_router_tools.local.engine" in graph["model_router_tools.local.batch"]
    made_up = {"a": {"b": Import("a", "a.py", 1, "b", ())}, "b": {"a": Import("b", "b.py", 7, "a", ())}}
    cycle = find_cycle(made_up)
    assert cycle is not None and [step.importer for step in cycle] == ["a", "b"]
    assert "b imports a (b.py:7)" in _describe(cycle)


def test_the_private_name_check_sees_imports_and_attributes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "user.py").write_text("from pkg import engine\nfrom pkg.engine import _shim, run\n"
                                      "engine._copy(engine.public, engine.__name__)\n")
    modules = {"pkg": tmp_path, "pkg.engine": tmp_path, "user": tmp_path}
    assert list(private_uses("user", tmp_path / "user.py", modules)) == [
        "user.py:2: from pkg.engine import _shim", "user.py:3: pkg.engine._copy"]


def test_project_modules_import_each_other_without_cycles() -> None:
    cycle = find_cycle(_without_allowed(import_graph()))
    assert cycle is None, _describe(cycle)


def test_no_private_name_is_imported_across_modules() -> None:
    found = [use for use in private_imports() if use.split(": ", 1)[1] not in PRIVATE_IMPORTS_ALLOWED]
    assert not found, "private names used across modules (make them public, with a docstring):\n  " + "\n  ".join(found)


def test_the_runtime_never_imports_the_tools() -> None:
    """src/model_router ships in the Lambda layer without src/model_router_tools: an import of the tools,
    even a late one, fails in Lambda (or pulls offline code into the layer)."""
    graph = import_graph()
    found = [imp for module, edges in graph.items() if module.split(".")[0] == "model_router"
             for target, imp in edges.items() if target.split(".")[0] == "model_router_tools" and not imp.statement]
    assert not found, "the runtime imports the tools:\n  " + "\n  ".join(
        f"{imp.path}:{imp.line}: {imp.importer} imports {imp.target}" for imp in found)


def test_the_allow_lists_name_only_what_still_happens() -> None:
    """An entry whose import is gone must go too, so the lists empty as their owners fix them."""
    graph = import_graph()
    stale: list[object] = [edge for edge in CYCLE_EDGES_ALLOWED if edge[1] not in graph.get(edge[0], {})]
    found = {use.split(": ", 1)[1] for use in private_imports()}
    stale += [entry for entry in PRIVATE_IMPORTS_ALLOWED if entry not in found]
    assert not stale, f"allow-listed, but no longer imported: remove from the allow-list: {stale}"
