"""The Lambda layer ships src/model_router alone (layer/model_router), so nothing a function imports may import
the offline toolkit when it loads: the function would fail at init with Runtime.ImportModuleError. A function
body may import it lazily, for features only local runs turn on (the replay and fault providers)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OFFLINE = "model_router_tools"
LAYER_MODULES = sorted([*(ROOT / "src" / "model_router").rglob("*.py"), *(ROOT / "functions").glob("*/app.py")])


def imports_at_load(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Modules imported when the file is loaded: not inside a function, nor under ``if TYPE_CHECKING``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from imports_at_load(ast.Module(body=node.orelse, type_ignores=[]))
            continue
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module
        yield from imports_at_load(node)


def test_the_check_sees_module_level_imports_and_skips_lazy_ones() -> None:
    tree = ast.parse("import a\nfrom b import c\nclass K:\n    import d\n"
                     "def f():\n    import e\nif TYPE_CHECKING:\n    import g\nelse:\n    import h\n")
    assert [name for _, name in imports_at_load(tree)] == ["a", "b", "d", "h"]


@pytest.mark.parametrize("path", LAYER_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_layer_module_imports_the_offline_toolkit_when_it_loads(path: Path) -> None:
    found = [f"line {line}: {name}" for line, name in imports_at_load(ast.parse(path.read_text(encoding="utf-8")))
             if name == OFFLINE or name.startswith(OFFLINE + ".")]
    assert not found, found
