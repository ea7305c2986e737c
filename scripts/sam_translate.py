"""Print template.yaml after the SAM transform, as CloudFormation JSON (for `make scan`).

Runs with the SAM CLI's Python (.venv-sam), which ships samtranslator. Scanners read the transformed
template too, so the IAM roles and policies SAM generates (policy templates, event roles) are checked,
not only what the SAM template spells out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from samcli.yamlhelper import yaml_parse
from samtranslator.public.translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform


class NoManagedPolicies(ManagedPolicyLoader):  # type: ignore[misc]
    """The template names no AWS managed policy by name; looking one up would need AWS credentials."""

    def __init__(self) -> None:
        pass

    def load(self) -> dict[str, str]:
        return {}


def main(path: str = "template.yaml") -> None:
    template: dict[str, Any] = yaml_parse(Path(path).read_text())
    # CodeUri/DefinitionUri would be uploaded by `sam package`; placeholders are enough to translate.
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = "s3://scan-placeholder/code.zip"
        if isinstance(properties.get("DefinitionUri"), str):
            properties["DefinitionUri"] = "s3://scan-placeholder/definition.json"
    translated = transform(template, {}, NoManagedPolicies())
    json.dump(translated, sys.stdout, indent=1, default=str)


if __name__ == "__main__":
    main(*sys.argv[1:])
