"""Read template.yaml the way the local engine needs it: each function's handler and environment.

:func:`load_template` returns the template as CloudFormation hands it to the SAM transform, so every reader
(the local engine, ``model-router validate``, the template tests, the scan) sees the same resources:

* ``Fn::Transform: AWS::Include`` with a local ``Location`` is replaced by the snippet in that file (relative to
  the template), as ``sam deploy`` uploads it and CloudFormation inlines it (:func:`inline_includes`).
* ``Fn::ForEach`` of ``AWS::LanguageExtensions`` is expanded (:func:`expand_language_extensions`).

Only what this project uses is expanded, in the form all three of CloudFormation, cfn-lint and SAM CLI agree
on: a literal collection of strings; ``${Identifier}`` in output keys and ``Fn::Sub`` strings, ``&{Identifier}``
(non-alphanumerics dropped) in output keys; ``Ref: Identifier``; ``Ref: !Sub`` naming a parameter or resource;
and ``Fn::FindInMap`` with literal keys. Anything else of the transform (``Fn::Length``, ``Fn::ToJsonString``, a
collection from a parameter, a FindInMap default, a plain string naming the loop identifier, which the three
implementations treat differently) raises :class:`UnsupportedTemplateConstruct` naming its place, rather
than leaving a resource half-expanded.

A function's environment (:func:`function_specs`) resolves parameters (their defaults, or overrides), ``Fn::Sub``
of them and ``Fn::If`` on the template's conditions (:func:`condition_values`); a resource reads as "".
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_TAGS = {
    "!Ref": "Ref", "!Sub": "Fn::Sub", "!GetAtt": "Fn::GetAtt", "!Join": "Fn::Join", "!Select": "Fn::Select",
    "!Split": "Fn::Split", "!If": "Fn::If", "!Equals": "Fn::Equals", "!Not": "Fn::Not", "!And": "Fn::And",
    "!Or": "Fn::Or", "!FindInMap": "Fn::FindInMap", "!Condition": "Condition", "!ImportValue": "Fn::ImportValue",
    "!Base64": "Fn::Base64", "!GetAZs": "Fn::GetAZs", "!Cidr": "Fn::Cidr", "!ToJsonString": "Fn::ToJsonString",
    "!Transform": "Fn::Transform", "!Length": "Fn::Length",
}
LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"
FOR_EACH = "Fn::ForEach::"
# Sections where CloudFormation expands Fn::ForEach (at any depth inside them).
FOR_EACH_SECTIONS = ("Conditions", "Resources", "Outputs")
# Language-extension functions the loader does not evaluate.
_UNEXPANDED_FUNCTIONS = ("Fn::Length", "Fn::ToJsonString", "Fn::Transform")
_SUB_VARIABLE = re.compile(r"\$\{(?!!)[^}]*\}")


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


class UnsupportedTemplateConstruct(ValueError):
    """The template uses something :func:`load_template` does not expand; the message says what and where."""


def read_template(path: str | Path) -> dict[str, Any]:
    """The template as written (short-form tags as their ``Fn::`` mappings), nothing expanded."""
    with open(path, encoding="utf-8") as fh:
        loaded: dict[str, Any] = yaml.load(fh, Loader=_CfnLoader)
    return loaded


def load_template(path: str | Path) -> dict[str, Any]:
    """The template with its local includes inlined and its Fn::ForEach loops expanded (module docstring)."""
    path = Path(path)
    return expand_language_extensions(inline_includes(read_template(path), path.parent))


# -- AWS::Include ------------------------------------------------------------------------------------


def inline_includes(template: dict[str, Any], base: Path) -> dict[str, Any]:
    """Replace each ``{"Fn::Transform": {"Name": "AWS::Include", ...}}`` value by its local snippet."""

    def walk(node: Any, where: str) -> Any:
        if isinstance(node, dict):
            if "Fn::Transform" in node:
                return _included(node, base, where)
            return {key: walk(value, f"{where}.{key}") for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item, f"{where}[{i}]") for i, item in enumerate(node)]
        return node

    result: dict[str, Any] = walk(template, "template")
    return result


def _included(node: dict[str, Any], base: Path, where: str) -> Any:
    transform = node["Fn::Transform"]
    location = transform.get("Parameters", {}).get("Location") if isinstance(transform, dict) else None
    if len(node) != 1 or transform.get("Name") != "AWS::Include" or not isinstance(location, str):
        raise UnsupportedTemplateConstruct(
            f"{where}: only a whole value of Fn::Transform AWS::Include with a Location is inlined, got {node!r}")
    if location.startswith("s3://") or "://" in location:
        raise UnsupportedTemplateConstruct(f"{where}: AWS::Include of {location} (only local files are read)")
    snippet_path = base / location
    if not snippet_path.is_file():
        raise UnsupportedTemplateConstruct(f"{where}: AWS::Include of {location}, but {snippet_path} does not exist")
    return read_template(snippet_path)


# -- Fn::ForEach -------------------------------------------------------------------------------------


def expand_language_extensions(template: dict[str, Any]) -> dict[str, Any]:
    """``template`` with its Fn::ForEach loops expanded and AWS::LanguageExtensions removed from Transform.

    Raises :class:`UnsupportedTemplateConstruct` if a loop is malformed or anything of the transform is
    left that this function does not expand (see :func:`unexpanded_constructs`).
    """
    transforms = template.get("Transform", [])
    transforms = [transforms] if isinstance(transforms, str) else list(transforms)
    expanded = copy.deepcopy(template)
    if LANGUAGE_EXTENSIONS in transforms:
        expander = _Expander(template)
        for section in FOR_EACH_SECTIONS:
            if section in expanded:
                expanded[section] = expander.walk(expanded[section], {}, section)
        remaining = [t for t in transforms if t != LANGUAGE_EXTENSIONS]
        if not remaining:
            del expanded["Transform"]
        else:
            expanded["Transform"] = remaining[0] if len(remaining) == 1 else remaining
    leftovers = unexpanded_constructs(expanded)
    if leftovers:
        raise UnsupportedTemplateConstruct("not expanded by model_router_tools.local.template:\n  "
                                           + "\n  ".join(leftovers))
    return expanded


def unexpanded_constructs(template: dict[str, Any]) -> list[str]:
    """Where ``template`` still uses a construct of a transform (each as ``path: what``); [] when none."""
    found: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{where}[{i}]")
            return
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            here = f"{where}.{key}"
            if not isinstance(key, str):
                continue
            if key.startswith(FOR_EACH):
                found.append(f"{here}: Fn::ForEach (only in {', '.join(FOR_EACH_SECTIONS)}, with the transform)")
            elif key in _UNEXPANDED_FUNCTIONS:
                found.append(f"{here}: {key}")
            elif key == "Ref" and not isinstance(value, str):
                found.append(f"{here}: Ref of a value that is not a name: {value!r}")
            elif key == "Fn::GetAtt" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                found.append(f"{here}: Fn::GetAtt of a computed name: {value!r}")
            elif key == "Fn::FindInMap" and isinstance(value, list) and len(value) > 3:
                found.append(f"{here}: Fn::FindInMap with a DefaultValue")
            elif key in ("DeletionPolicy", "UpdateReplacePolicy") and not isinstance(value, str):
                found.append(f"{here}: {key} computed by an intrinsic function")
            walk(value, here)

    walk(template, "template")
    return found


class _Expander:
    def __init__(self, template: dict[str, Any]) -> None:
        self.parameters = set(template.get("Parameters", {}))
        self.mappings: dict[str, Any] = template.get("Mappings", {})

    def walk(self, node: Any, bindings: dict[str, str], where: str) -> Any:
        if isinstance(node, list):
            return [self.walk(item, bindings, f"{where}[{i}]") for i, item in enumerate(node)]
        if isinstance(node, str):
            self._refuse_plain_identifier(node, bindings, where)
            return node
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), = node.items()
            if key == "Ref":
                return self._ref(value, bindings, where)
            if key == "Fn::Sub":
                return self._sub(value, bindings, where)
            if key == "Fn::FindInMap":
                return self._find_in_map(value, bindings, where)
        result: dict[str, Any] = {}
        for key, value in node.items():
            if isinstance(key, str) and key.startswith(FOR_EACH):
                entries = self._for_each(key, value, bindings, f"{where}.{key}")
            else:
                new_key = _substitute(key, bindings, keys=True) if isinstance(key, str) else key
                entries = {new_key: self.walk(value, bindings, f"{where}.{new_key}")}
            for entry_key, entry in entries.items():
                if entry_key in result:
                    raise UnsupportedTemplateConstruct(f"{where}: {entry_key} is defined twice after expansion")
                result[entry_key] = entry
        return result

    def _for_each(self, key: str, value: Any, bindings: dict[str, str], where: str) -> dict[str, Any]:
        if not (isinstance(value, list) and len(value) == 3 and isinstance(value[2], dict)):
            raise UnsupportedTemplateConstruct(f"{where}: expected [Identifier, [values...], {{OutputKey: value}}]")
        identifier, collection, body = value
        if not isinstance(identifier, str) or not re.fullmatch(r"[A-Za-z0-9]+", identifier):
            raise UnsupportedTemplateConstruct(f"{where}: the identifier must be alphanumeric, got {identifier!r}")
        if identifier in self.parameters or identifier in bindings:
            raise UnsupportedTemplateConstruct(f"{where}: identifier {identifier} is already a parameter or loop name")
        if not (isinstance(collection, list) and all(isinstance(item, str) for item in collection)):
            raise UnsupportedTemplateConstruct(
                f"{where}: only a literal list of strings is expanded as the collection, got {collection!r}")
        for output_key in body:
            names_item = f"${{{identifier}}}" in output_key or f"&{{{identifier}}}" in output_key
            if not (names_item or output_key.startswith(FOR_EACH)):
                raise UnsupportedTemplateConstruct(f"{where}: output key {output_key!r} does not use {identifier}")
        expanded: dict[str, Any] = {}
        for item in collection:
            for entry_key, entry in self.walk(body, {**bindings, identifier: item}, where).items():
                if entry_key in expanded:
                    raise UnsupportedTemplateConstruct(f"{where}: {entry_key} is generated twice")
                expanded[entry_key] = entry
        return expanded

    def _ref(self, value: Any, bindings: dict[str, str], where: str) -> Any:
        if isinstance(value, str):
            return bindings.get(value, {"Ref": value})
        name = self.walk(value, bindings, f"{where}.Ref")
        return {"Ref": name}  # a computed name that stays a dict is reported by unexpanded_constructs

    def _sub(self, value: Any, bindings: dict[str, str], where: str) -> Any:
        if isinstance(value, str):
            text = _substitute(value, bindings)
            # Inside a loop, a Sub left with no variable is the plain string (as CloudFormation and cfn-lint do).
            return text if text != value and not _SUB_VARIABLE.search(text) else {"Fn::Sub": text}
        if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
            return {"Fn::Sub": [_substitute(value[0], bindings), self.walk(value[1], bindings, f"{where}.Fn::Sub")]}
        return {"Fn::Sub": self.walk(value, bindings, f"{where}.Fn::Sub")}

    def _find_in_map(self, value: Any, bindings: dict[str, str], where: str) -> Any:
        args = self.walk(value, bindings, f"{where}.Fn::FindInMap")
        if isinstance(args, list) and len(args) == 3 and all(isinstance(a, str) for a in args):
            mapping, top, second = args
            try:
                return copy.deepcopy(self.mappings[mapping][top][second])
            except (KeyError, TypeError):
                raise UnsupportedTemplateConstruct(f"{where}: Fn::FindInMap {args} is not in Mappings") from None
        return {"Fn::FindInMap": args}

    @staticmethod
    def _refuse_plain_identifier(text: str, bindings: dict[str, str], where: str) -> None:
        for identifier in bindings:
            if f"${{{identifier}}}" in text or f"&{{{identifier}}}" in text:
                raise UnsupportedTemplateConstruct(
                    f"{where}: {text!r} names the loop identifier {identifier} outside an output key or Fn::Sub;"
                    " CloudFormation leaves such a string as written (use !Sub)")


def _substitute(text: str, bindings: dict[str, str], keys: bool = False) -> str:
    for identifier, value in bindings.items():
        text = text.replace(f"${{{identifier}}}", value)
        if keys:
            text = text.replace(f"&{{{identifier}}}", re.sub(r"[^A-Za-z0-9]", "", value))
    return text


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


_NO_VALUE = {"Ref": "AWS::NoValue"}


def condition_values(template: dict[str, Any], params: dict[str, str]) -> dict[str, bool]:
    """Every condition of the template, evaluated on ``params`` (Fn::Equals of parameters and literals, Fn::Not,
    Fn::And, Fn::Or and ``Condition: name``: what this template's conditions use)."""
    conditions = template.get("Conditions", {})
    done: dict[str, bool] = {}

    def truth(node: Any, where: str) -> bool:
        if isinstance(node, dict) and len(node) == 1:
            (key, value), = node.items()
            if key == "Condition" and isinstance(value, str) and value in conditions:
                if value not in done:
                    done[value] = truth(conditions[value], f"Conditions.{value}")
                return done[value]
            if key == "Fn::Equals":
                left, right = (_resolve(v, params, where) for v in value)
                return left == right
            if key == "Fn::Not":
                return not truth(value[0], where)
            if key == "Fn::And":
                return all(truth(v, where) for v in value)
            if key == "Fn::Or":
                return any(truth(v, where) for v in value)
        raise UnresolvedValue(f"{where}: the local engine cannot evaluate the condition {node!r}")

    for name in conditions:
        truth({"Condition": name}, f"Conditions.{name}")
    return done


def _resolve(value: Any, params: dict[str, str], where: str, conditions: dict[str, bool] | None = None) -> str:
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
    if isinstance(value, dict) and "Fn::If" in value and conditions is not None:
        name, when_true, when_false = value["Fn::If"]
        if name in conditions:
            return _resolve(when_true if conditions[name] else when_false, params, where, conditions)
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
    conditions = condition_values(template, params)
    globals_fn = template.get("Globals", {}).get("Function", {})
    specs: dict[str, FunctionSpec] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        raw_env = dict(globals_fn.get("Environment", {}).get("Variables", {}))
        raw_env.update(props.get("Environment", {}).get("Variables", {}))
        env = {k: _resolve(v, params, f"{logical_id}.Environment.{k}", conditions) for k, v in raw_env.items()
               if not _is_no_value(v, conditions)}
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_uri=root / props.get("CodeUri", globals_fn.get("CodeUri", ".")),
            handler=props.get("Handler", globals_fn.get("Handler", "app.lambda_handler")),
            environment=env,
            memory_mb=int(_resolve(props.get("MemorySize", globals_fn.get("MemorySize", 128)), params,
                                   f"{logical_id}.MemorySize", conditions)),
            timeout_s=int(props.get("Timeout", globals_fn.get("Timeout", 3))),
        )
    return specs


def _is_no_value(value: Any, conditions: dict[str, bool]) -> bool:
    """An environment value that is ``AWS::NoValue`` (directly, or the branch an Fn::If takes): not set."""
    while isinstance(value, dict) and "Fn::If" in value and value["Fn::If"][0] in conditions:
        name, when_true, when_false = value["Fn::If"]
        value = when_true if conditions[name] else when_false
    return value == _NO_VALUE


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
