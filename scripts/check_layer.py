"""Check what `sam build` put in the layer: runtime code and data only (model_router_tools.layer's rules).

For `make build-check`; runs with the SAM CLI's Python (.venv-sam): the rules need only the standard library.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from model_router_tools.layer import layer_problems


def main(path: str = ".aws-sam/build/ModelRouterLayer/python/model_router") -> int:
    package = Path(path)
    if not (package / "__init__.py").is_file():
        print(f"{package}: no model_router package in the built layer", file=sys.stderr)
        return 1
    problems = layer_problems(package)
    for problem in problems:
        print(f"layer: {problem}", file=sys.stderr)
    files = sum(1 for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    print(f"{'FAIL' if problems else 'ok'} layer: {files} files of model_router, runtime only")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
