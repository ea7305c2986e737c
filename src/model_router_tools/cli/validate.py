"""``model-router validate``: static checks of the SAM template and the state machine definitions.

- cfn-lint on template.yaml (in-process, through cfn-lint's public API)
- the template as the local engine reads it: local AWS::Include snippets inlined and Fn::ForEach expanded
  (model_router_tools.local.template), which fails on a construct that reader does not expand
- statelint on every state machine definition, with each ``${Name}`` placeholder replaced by a dummy
  ARN first (cfn-lint does not read DefinitionUri files); integer BackoffRate is accepted
- the placeholders of each definition against its state machine's DefinitionSubstitutions, both ways,
  and every substituted Lambda function ARN against the functions of the template
- ``sam validate --lint`` when the SAM CLI is installed (.venv-sam/bin/sam, or sam on PATH); it needs
  no AWS credentials and no network

Every check returns a :class:`CheckResult` instead of raising, so the CLI can print them all. Each check
imports what it reads with (the YAML template reader, cfn-lint, statelint) when it runs: `model-router --help`
builds this command's parser too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_router_tools.cli.errors import EXIT_FAILED, EXIT_OK, UsageError

TEMPLATE = "template.yaml"
STATEMACHINE_GLOB = "statemachine/*.asl.json"
REGION = "us-east-1"
ACCOUNT = "123456789012"
SAM_TIMEOUT_S = 300

PLACEHOLDER = re.compile(r"\$\{([^}\s]+)\}")
# statelint 3.1.0 predates ItemReader.ReaderConfig.InputType (JSON, JSONL, CSV, MANIFEST), which Step Functions
# requires to read a JSON array from S3 (statemachine/batch.asl.json); only that one finding is dropped.
_STATELINT_OUTDATED = re.compile(r'^Field "InputType" not allowed in .*\.ItemReader\.ReaderConfig$')
_FUNCTION_TYPES = {"AWS::Serverless::Function", "AWS::Lambda::Function"}
_LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
# Placeholder name -> ARN form, for names ending in Arn; anything else ending in Arn is a Lambda function.
_ARN_FORMS = (
    ("Bucket", "arn:aws:s3:::{lower}"),
    ("Table", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{{name}}"),
    ("Topic", f"arn:aws:sns:{REGION}:{ACCOUNT}:{{name}}"),
    ("Queue", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{{name}}"),
    ("StateMachine", f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{{name}}"),
)


def add_parser(sub: Any) -> None:
    validate = sub.add_parser("validate", help="static checks: cfn-lint, statelint, sam validate --lint")
    validate.add_argument("--root", default=".",
                          help="project root, the directory holding template.yaml (default: current directory)")
    validate.add_argument("--verbose", "-v", action="store_true")
    validate.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    root = Path(args.root).resolve()
    if not root.is_dir():
        raise UsageError(f"--root {args.root}: {'not a directory' if root.exists() else 'no such directory'}")
    if not (root / TEMPLATE).is_file():
        raise UsageError(f"--root {args.root}: no {TEMPLATE} here; give the project root (the directory that "
                         "holds template.yaml and statemachine/)")
    failed = 0
    for check in run_all(root):
        mark = "skip" if check.skipped else ("ok" if check.ok else "FAIL")
        print(f"{mark:<5} {check.name}")
        if check.output and (not check.ok or args.verbose):
            print("      " + check.output.strip().replace("\n", "\n      "))
        failed += not check.ok
    return EXIT_FAILED if failed else EXIT_OK


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    output: str
    skipped: bool = False


def dummy_value(placeholder: str) -> str:
    """A realistic stand-in for ``${placeholder}``: an ARN of the kind its name says, else the name."""
    if not placeholder.endswith("Arn"):
        return placeholder
    name = placeholder.removesuffix("Arn")
    for word, form in _ARN_FORMS:
        if word in placeholder:
            return form.format(name=name, lower=name.lower())
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def substitute_dummies(text: str) -> str:
    return PLACEHOLDER.sub(lambda m: dummy_value(m.group(1)), text)


def definition_files(template_path: Path) -> list[Path]:
    """statemachine/*.asl.json beside the template, plus any other file a DefinitionUri names."""
    from model_router_tools.local.template import UnsupportedTemplateConstruct

    base = template_path.parent
    try:
        named = {base / uri for uri in _definition_uris(_load(template_path))}
    except UnsupportedTemplateConstruct:
        named = set()  # reported by check_template_expansion
    return sorted(set(base.glob(STATEMACHINE_GLOB)) | named)


def check_cfn_lint(template_path: Path) -> CheckResult:
    name = "cfn-lint"
    try:
        from cfnlint.api import ManualArgs, lint_file
    except ImportError:
        return CheckResult(name, False, "cfn-lint is not installed: pip install -e '.[dev]'")
    matches = lint_file(template_path, config=ManualArgs(regions=[REGION]))
    # Errors and warnings both fail, as in `sam validate --lint`.
    lines = [f"{template_path.name}:{m.linenumber}:{m.columnnumber}: {m.rule.id} {m.message}" for m in matches]
    return CheckResult(name, not lines, "\n".join(lines) or f"{template_path.name}: no findings")


def check_template_expansion(template_path: Path) -> CheckResult:
    """The template the local engine, the tests and the scan read: includes inlined, loops expanded."""
    from model_router_tools.local.template import UnsupportedTemplateConstruct, load_template

    name = "template expansion"
    if not template_path.is_file():
        return CheckResult(name, False, f"{template_path} not found")
    try:
        template = load_template(template_path)
    except (UnsupportedTemplateConstruct, OSError) as exc:
        return CheckResult(name, False, str(exc))
    resources: dict[str, Any] = template.get("Resources", {})
    functions = sorted(lid for lid, res in resources.items() if res.get("Type") in _FUNCTION_TYPES)
    return CheckResult(name, True, f"{len(resources)} resources, functions: {', '.join(functions)}")


def check_statelint(asl_paths: list[Path]) -> CheckResult:
    name = "statelint"
    try:
        from statelint.config import Config
        from statelint.linter import Linter
    except ImportError:
        return CheckResult(name, False, "statelint is not installed: pip install -e '.[dev]'")
    if not asl_paths:
        return CheckResult(name, False, "no state machine definitions found")
    config = Config()
    ok, lines = True, []
    for path in asl_paths:
        problems = (
            [p for p in Linter.validate(substitute_dummies(path.read_text(encoding="utf-8")), config)
             if not _STATELINT_OUTDATED.search(p)]
            if path.is_file()
            else ["file not found"]
        )
        ok = ok and not problems
        lines += [f"{path.name}: {p}" for p in problems] or [f"{path.name}: no problems"]
    return CheckResult(name, ok, "\n".join(lines))


def check_substitutions(template_path: Path) -> CheckResult:
    """Placeholders vs DefinitionSubstitutions (both ways), and Lambda targets vs the template's functions."""
    from model_router_tools.local.template import UnsupportedTemplateConstruct

    name = "definition substitutions"
    try:
        template = _load(template_path)
    except UnsupportedTemplateConstruct as exc:
        return CheckResult(name, False, f"{template_path.name} cannot be read: {exc}")
    resources: dict[str, Any] = template.get("Resources", {})
    functions = {lid for lid, res in resources.items() if res.get("Type") in _FUNCTION_TYPES}
    uses = _definition_uris(template)
    problems: list[str] = []
    summary: list[str] = []
    for path in definition_files(template_path):
        rel = path.relative_to(template_path.parent).as_posix()
        if not path.is_file():
            problems.append(f"{rel}: DefinitionUri of {', '.join(uses[rel])} but the file does not exist")
            continue
        if rel not in uses:
            problems.append(f"{rel}: not the DefinitionUri of any state machine in {template_path.name}")
            continue
        text = path.read_text(encoding="utf-8")
        placeholders = set(PLACEHOLDER.findall(text))
        try:
            lambda_targets = _lambda_placeholders(text)
        except ValueError as exc:
            problems.append(f"{rel}: not valid JSON: {exc}")
            continue
        for machine in uses[rel]:
            subs: dict[str, Any] = resources[machine]["Properties"].get("DefinitionSubstitutions", {})
            for missing in sorted(placeholders - subs.keys()):
                problems.append(f"{rel}: ${{{missing}}} is not in {machine}.DefinitionSubstitutions")
            for unused in sorted(subs.keys() - placeholders):
                problems.append(f"{machine}.DefinitionSubstitutions.{unused} is not used in {rel}")
            for key in sorted(subs.keys() & (lambda_targets | {k for k in subs if k.endswith("FunctionArn")})):
                target = _function_reference(subs[key])
                if target not in functions:
                    problems.append(
                        f"{machine}.DefinitionSubstitutions.{key} must be !GetAtt <Function>.Arn of a function"
                        f" in {template_path.name}, got {subs[key]!r}"
                    )
            summary.append(f"{rel} ({machine}): {len(placeholders)} placeholders, all substituted")
    if not (problems or summary):
        problems.append(f"no state machine with a local DefinitionUri in {template_path.name}")
    return CheckResult(name, not problems, "\n".join(problems or summary))


def find_sam(root: Path) -> str | None:
    """The project's pinned SAM CLI (.venv-sam, see make/sam.mk) first, then sam on PATH."""
    local = root / ".venv-sam" / "bin" / "sam"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("sam")


def check_sam_validate(template_path: Path, sam: str | None) -> CheckResult:
    name = "sam validate --lint"
    if sam is None:
        return CheckResult(name, True, "skipped: sam not installed (make sam-tools)", skipped=True)
    # The lint path runs cfn-lint only: no credentials, no network. The region only picks cfn-lint's specs.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(SAM_CLI_TELEMETRY="0", AWS_EC2_METADATA_DISABLED="true")
    env.setdefault("AWS_DEFAULT_REGION", REGION)
    cmd = [sam, "validate", "--lint", "--template-file", str(template_path), "--region", REGION]
    try:
        proc = subprocess.run(
            cmd, cwd=template_path.parent, env=env, capture_output=True, text=True, timeout=SAM_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return CheckResult(name, False, f"{' '.join(cmd)}: {exc}")
    return CheckResult(name, proc.returncode == 0, (proc.stdout + proc.stderr).strip())


def run_all(root: Path) -> list[CheckResult]:
    template_path = root / TEMPLATE
    return [
        check_cfn_lint(template_path),
        check_template_expansion(template_path),
        check_statelint(definition_files(template_path)),
        check_substitutions(template_path),
        check_sam_validate(template_path, find_sam(root)),
    ]


def _load(template_path: Path) -> dict[str, Any]:
    from model_router_tools.local.template import load_template

    return load_template(template_path) if template_path.is_file() else {}


def _definition_uris(template: dict[str, Any]) -> dict[str, list[str]]:
    """Local DefinitionUri (relative to the template) -> the state machines that use it."""
    uses: dict[str, list[str]] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        uri = resource.get("Properties", {}).get("DefinitionUri")
        if resource.get("Type") == "AWS::Serverless::StateMachine" and isinstance(uri, str):
            uses.setdefault(Path(uri).as_posix(), []).append(logical_id)
    return uses


def _function_reference(value: Any) -> str | None:
    """The logical id in ``!GetAtt X.Arn`` or ``!Ref X``, else None."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        parts = target.split(".", 1) if isinstance(target, str) else target
        return str(parts[0]) if len(parts) == 2 and parts[1] == "Arn" else None
    if isinstance(value, dict) and isinstance(value.get("Ref"), str):
        return str(value["Ref"])
    return None


def _lambda_placeholders(text: str) -> set[str]:
    """Placeholders a definition invokes as Lambda functions (lambda:invoke FunctionName, or a Task Resource)."""
    found: set[str] = set()
    for state in _states(json.loads(text)):
        if state.get("Type") != "Task":
            continue
        resource = str(state.get("Resource", ""))
        if resource.startswith(_LAMBDA_INVOKE):
            args = state.get("Parameters") or state.get("Arguments") or {}
            found |= set(PLACEHOLDER.findall(str(args.get("FunctionName", ""))))
        elif not resource.startswith("arn:aws:states:::"):
            found |= set(PLACEHOLDER.findall(resource))
    return found


def _states(machine: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every state, including those in Parallel branches and Map processors."""
    for state in machine.get("States", {}).values():
        yield state
        for branch in state.get("Branches", []):
            yield from _states(branch)
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from _states(state[key])
