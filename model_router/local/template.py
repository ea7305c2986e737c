"""Read template.yaml the way the local engine needs it: each function's handler and environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_TAGS = {
    "!Ref": "Ref", "!Sub": "Fn::Sub", "!GetAtt": "Fn::GetAtt", "!Join": "Fn::Join", "!Select": "Fn::Select",
    "!Split": "Fn::Split", "!If": "Fn::If", "!Equals": "Fn::Equals", "!Not": "Fn::Not", "!And": "Fn::And",
    "!Or": "Fn::Or", "!FindInMap": "Fn::FindInMap", "!Condition": "Condition", "!ImportValue": "Fn::ImportValue",
    "!Base64": "Fn::Base64", "!GetAZs": "Fn::GetAZs", "!Cidr": "Fn::Cidr", "!ToJsonString": "Fn::ToJsonString",
}


class _CfnLoader(yaml.SafeLoader):
    pass


def _construct(tag: str) -> Any:
    def build(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "!GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {_TAGS[tag]: value}

    return build


for _tag in _TAGS:
    _CfnLoader.add_constructor(_tag, _construct(_tag))


def load_template(path: str | Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        loaded: dict[str, Any] = yaml.load(fh, Loader=_CfnLoader)
    return loaded


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    environment: dict[str, str]
    memory_mb: int
    timeout_s: int


class UnresolvedValue(ValueError):
    pass


def _resolve(value: Any, params: dict[str, str], where: str) -> str:
    if isinstance(value, (str, int, float, bool)):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, dict) and "Ref" in value and value["Ref"] in params:
        return params[value["Ref"]]
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        text = value["Fn::Sub"]
        for name, param in params.items():
            text = text.replace("${" + name + "}", param)
        if "${" not in text:
            return text
    raise UnresolvedValue(f"{where}: the local engine cannot resolve {value!r}")


def function_specs(
    template: dict[str, Any], root: Path, overrides: dict[str, str] | None = None
) -> dict[str, FunctionSpec]:
    """Every AWS::Serverless::Function with its resolved environment (parameter defaults + overrides)."""
    params = {name: str(p.get("Default", "")) for name, p in template.get("Parameters", {}).items()}
    params.update(overrides or {})
    params.setdefault("AWS::Region", "us-east-1")
    params.setdefault("AWS::StackName", "model-router-local")
    # Resources do not exist locally: a Ref to one (a table name, say) resolves to "", read as "not configured".
    for resource_id in template.get("Resources", {}):
        params.setdefault(resource_id, "")
    globals_fn = template.get("Globals", {}).get("Function", {})
    specs: dict[str, FunctionSpec] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        raw_env = dict(globals_fn.get("Environment", {}).get("Variables", {}))
        raw_env.update(props.get("Environment", {}).get("Variables", {}))
        env = {k: _resolve(v, params, f"{logical_id}.Environment.{k}") for k, v in raw_env.items()}
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_uri=root / props.get("CodeUri", globals_fn.get("CodeUri", ".")),
            handler=props.get("Handler", globals_fn.get("Handler", "app.lambda_handler")),
            environment=env,
            memory_mb=int(props.get("MemorySize", globals_fn.get("MemorySize", 128))),
            timeout_s=int(props.get("Timeout", globals_fn.get("Timeout", 3))),
        )
    return specs


def definition_substitutions(template: dict[str, Any], state_machine: str) -> dict[str, str]:
    """``${Name}`` -> the logical id of the function whose ARN the template substitutes there."""
    props = template["Resources"][state_machine]["Properties"]
    out: dict[str, str] = {}
    for name, value in props.get("DefinitionSubstitutions", {}).items():
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            out[name] = value["Fn::GetAtt"][0]
        elif isinstance(value, dict) and "Ref" in value:
            out[name] = value["Ref"]
        else:
            out[name] = str(value)
    return out
