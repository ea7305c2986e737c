"""Print each function of a built template with the directory sam build put its code in, one per line.

For `make build-check`. sam build keeps Fn::ForEach in .aws-sam/build/template.yaml, with the CodeUri of the
first item's build for the whole loop (the invokers share their code), so the built template is read with
model_router_tools.local.template.load_template, which expands it. Runs with the SAM CLI's Python (.venv-sam),
outside the project's virtualenv: the reader needs only PyYAML.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from model_router_tools.local.template import load_template


def main(path: str = ".aws-sam/build/template.yaml") -> None:
    for logical_id, resource in load_template(path).get("Resources", {}).items():
        if resource.get("Type") == "AWS::Serverless::Function":
            print(logical_id, resource.get("Properties", {}).get("CodeUri", logical_id))


if __name__ == "__main__":
    main(*sys.argv[1:])
