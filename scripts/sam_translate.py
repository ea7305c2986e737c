"""Print template.yaml after the SAM transform, as CloudFormation JSON (for `make scan`).

With --default NAME=VALUE (repeatable), a parameter's default is VALUE: checkov decides each resource's Condition
on the parameters' defaults and leaves out the resources whose condition is false, so the resources that are off
by default (the HTTP API) are scanned in a second run with them on.

With --expanded, print it before the SAM transform instead, with only includes inlined and Fn::ForEach
expanded: checkov does not expand Fn::ForEach, so on template.yaml as written it skips the invokers.

Runs with the SAM CLI's Python (.venv-sam), which ships samtranslator. Scanners read the transformed
template too, so the IAM roles and policies SAM generates (policy templates, event roles) are checked,
not only what the SAM template spells out.

samtranslator knows neither AWS::Include nor AWS::LanguageExtensions, which CloudFormation applies before
the SAM transform: the template is read with model_router_tools.local.template.load_template (local includes
inlined, Fn::ForEach expanded), the reader the local engine and the tests use.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from samtranslator.public.translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

# This script runs outside the project's virtualenv; the template reader needs only PyYAML (a SAM CLI dependency).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from model_router_tools.local.template import load_template


class NoManagedPolicies(ManagedPolicyLoader):  # type: ignore[misc]
    """The template names no AWS managed policy by name; looking one up would need AWS credentials."""

    def __init__(self) -> None:
        pass

    def load(self) -> dict[str, str]:
        return {}


def main(*args: str) -> None:
    expanded_only = "--expanded" in args
    defaults = dict(a.removeprefix("--default=").split("=", 1) for a in args if a.startswith("--default="))
    paths = [a for a in args if a != "--expanded" and not a.startswith("--default=")]
    template: dict[str, Any] = load_template(paths[0] if paths else "template.yaml")
    for name, value in defaults.items():
        template["Parameters"][name]["Default"] = value
    if expanded_only:
        json.dump(template, sys.stdout, indent=1, default=str)
        return
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
