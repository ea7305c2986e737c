"""What the Lambda layer may hold: the runtime package and its data, nothing of the offline tools.

Checked on the source of the layer (``layer/model_router``, a link to ``src/model_router``) by the tests and on
what ``sam build`` actually put in the layer by ``make build-check`` (scripts/check_layer.py). Standard library
only, so the SAM CLI's Python can run it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

# Third-party packages the layer installs (layer/requirements.txt) or the Lambda runtime provides.
LAYER_PACKAGES = frozenset({"aws_lambda_powertools", "jsonschema", "re2", "boto3", "botocore"})
# Never in the layer: offline tooling and its libraries.
FORBIDDEN = frozenset({"model_router_tools", "moto", "sklearn", "numpy", "scipy", "matplotlib", "rich", "argparse",
                       "yaml", "torch", "sentence_transformers"})
DATA_FILES = frozenset({"router_model.json.gz", "router_model.md", "scorer_model.json", "prices.json",
                        "model_features.json", "operating_point.json", "request.schema.json", "result.schema.json",
                        "outcome.schema.json"})


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def layer_problems(package: Path) -> list[str]:
    """Every reason ``package`` (a model_router directory as the layer holds it) is not a runtime-only package."""
    problems: list[str] = []
    allowed = set(sys.stdlib_module_names) | LAYER_PACKAGES | {"model_router", "__future__"}
    for path in sorted(package.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        where = path.relative_to(package).as_posix()
        if path.suffix == ".py":
            imported = _imported(ast.parse(path.read_text(encoding="utf-8")))
            for name in sorted(imported & FORBIDDEN):
                problems.append(f"{where} imports {name}, which the layer must not hold")
            for name in sorted(imported - allowed - FORBIDDEN):
                problems.append(f"{where} imports {name}, which is neither the standard library nor a layer package")
        elif path.name not in DATA_FILES:
            problems.append(f"{where} is not one of the runtime's data files (replay data stays out of the layer)")
    return problems
