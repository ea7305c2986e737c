"""Static checks (model_router_tools.cli.validate) pass on the project and fail on broken copies; IAM least
privilege."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from model_router_tools.cli.validate import (
    CheckResult,
    check_cfn_lint,
    check_sam_validate,
    check_statelint,
    check_substitutions,
    check_template_expansion,
    definition_files,
    dummy_value,
    find_sam,
    run_all,
    substitute_dummies,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
ASL = ROOT / "statemachine" / "router.asl.json"
TIERS = ("Haiku", "Sonnet", "Opus")
SAM_MISSING = "sam not installed: `make sam-tools` puts SAM CLI in .venv-sam (or put sam on PATH)"


@pytest.fixture(scope="module")
def checks() -> dict[str, CheckResult]:
    """Every check run once on the real project."""
    return {result.name: result for result in run_all(ROOT)}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A throwaway copy of template.yaml, statemachine/, dashboards/ and api/ (the files the template includes) to
    break; returns the template's path."""
    shutil.copy(TEMPLATE, tmp_path / "template.yaml")
    shutil.copytree(ROOT / "statemachine", tmp_path / "statemachine")
    shutil.copytree(ROOT / "dashboards", tmp_path / "dashboards")
    shutil.copytree(ROOT / "api", tmp_path / "api")
    return tmp_path / "template.yaml"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}: update this test"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _assert_ok(result: CheckResult) -> None:
    assert result.ok, f"{result.name} failed:\n{result.output}"


# --- the checks pass on the project -------------------------------------------------------------------


def test_run_all_runs_every_check(checks: dict[str, CheckResult]) -> None:
    assert list(checks) == [
        "cfn-lint", "template expansion", "statelint", "definition substitutions", "sam validate --lint"]


def test_the_template_expands_to_every_function(checks: dict[str, CheckResult]) -> None:
    _assert_ok(checks["template expansion"])
    for tier in TIERS:
        assert f"{tier}InvokerFunction" in checks["template expansion"].output


def test_cfn_lint_finds_nothing(checks: dict[str, CheckResult]) -> None:
    _assert_ok(checks["cfn-lint"])


def test_statelint_passes_on_every_definition(checks: dict[str, CheckResult]) -> None:
    assert ASL in definition_files(TEMPLATE)
    _assert_ok(checks["statelint"])
    for path in definition_files(TEMPLATE):
        assert f"{path.name}: no problems" in checks["statelint"].output


def test_placeholders_and_substitutions_agree(checks: dict[str, CheckResult]) -> None:
    _assert_ok(checks["definition substitutions"])


def test_sam_validate_lint_passes(checks: dict[str, CheckResult]) -> None:
    if checks["sam validate --lint"].skipped:
        pytest.skip(SAM_MISSING)
    _assert_ok(checks["sam validate --lint"])


def test_placeholders_become_realistic_arns() -> None:
    assert dummy_value("ScorerFunctionArn") == "arn:aws:lambda:us-east-1:123456789012:function:ScorerFunction"
    assert dummy_value("ResultsBucketArn") == "arn:aws:s3:::resultsbucket"
    assert dummy_value("AuditTableArn") == "arn:aws:dynamodb:us-east-1:123456789012:table/AuditTable"
    assert dummy_value("AlertsTopicArn") == "arn:aws:sns:us-east-1:123456789012:AlertsTopic"
    assert dummy_value("BucketName") == "BucketName"
    assert "${" not in substitute_dummies(ASL.read_text(encoding="utf-8"))


# --- and fail on broken copies ------------------------------------------------------------------------


def test_cfn_lint_fails_on_a_reference_to_a_missing_resource(project: Path) -> None:
    _edit(project, "!GetAtt ScorerFunction.Arn", "!GetAtt MissingFunction.Arn")
    result = check_cfn_lint(project)
    assert not result.ok
    assert "MissingFunction" in result.output


def test_statelint_fails_on_a_transition_to_a_missing_state(project: Path) -> None:
    asl = project.parent / "statemachine" / "router.asl.json"
    definition = json.loads(asl.read_text(encoding="utf-8"))
    definition["States"]["Score Answer"]["Next"] = "Nowhere"
    asl.write_text(json.dumps(definition), encoding="utf-8")
    result = check_statelint(definition_files(project))
    assert not result.ok
    assert 'No state found named "Nowhere"' in result.output


def test_template_expansion_fails_on_a_construct_the_local_reader_does_not_expand(project: Path) -> None:
    _edit(project, "    - [Haiku, Sonnet, Opus]", "    - !Ref TierNames")
    for result in (check_template_expansion(project), check_substitutions(project)):
        assert not result.ok
        assert "only a literal list of strings is expanded as the collection" in result.output


def test_template_expansion_fails_when_the_included_dashboard_is_missing(project: Path) -> None:
    (project.parent / "dashboards" / "router.yaml").unlink()
    result = check_template_expansion(project)
    assert not result.ok
    assert "AWS::Include of dashboards/router.yaml" in result.output


def test_statelint_fails_on_a_missing_file(tmp_path: Path) -> None:
    assert not check_statelint([tmp_path / "missing.asl.json"]).ok
    assert not check_statelint([]).ok


def test_substitutions_fail_on_an_undefined_placeholder(project: Path) -> None:
    _edit(project.parent / "statemachine" / "router.asl.json", '"Comment": "Model router:', '"Comment": "${Bogus}')
    result = check_substitutions(project)
    assert not result.ok
    assert "${Bogus} is not in RouterStateMachine.DefinitionSubstitutions" in result.output


def test_substitutions_fail_on_an_unused_substitution(project: Path) -> None:
    line = "        ScorerFunctionArn: !GetAtt ScorerFunction.Arn\n"
    _edit(project, line, line + "        ExtraFunctionArn: !GetAtt ScorerFunction.Arn\n")
    result = check_substitutions(project)
    assert not result.ok
    assert "DefinitionSubstitutions.ExtraFunctionArn is not used" in result.output


def test_substitutions_fail_when_a_lambda_target_is_not_a_function(project: Path) -> None:
    _edit(project, "ScorerFunctionArn: !GetAtt ScorerFunction.Arn", "ScorerFunctionArn: !GetAtt RouterLogGroup.Arn")
    result = check_substitutions(project)
    assert not result.ok
    assert "ScorerFunctionArn must be !GetAtt <Function>.Arn" in result.output


def test_substitutions_fail_on_a_definition_no_state_machine_uses(project: Path) -> None:
    shutil.copy(ASL, project.parent / "statemachine" / "orphan.asl.json")
    result = check_substitutions(project)
    assert not result.ok
    assert "orphan.asl.json: not the DefinitionUri of any state machine" in result.output


def test_sam_validate_lint_fails_on_a_broken_template(project: Path) -> None:
    sam = find_sam(ROOT)
    if sam is None:
        pytest.skip(SAM_MISSING)
    _edit(project, "!GetAtt ScorerFunction.Arn", "!GetAtt MissingFunction.Arn")
    result = check_sam_validate(project, sam)
    assert not result.ok
    assert "MissingFunction" in result.output


def test_sam_validate_is_skipped_without_sam() -> None:
    result = check_sam_validate(TEMPLATE, None)
    assert result.ok and result.skipped
    assert result.output.startswith("skipped: sam not installed")


# --- IAM least privilege ------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _refs(node: Any) -> set[str]:
    """Names an expression refers to (Ref, GetAtt, ${X} in Sub), without AWS:: pseudo parameters."""
    if isinstance(node, list):
        return set().union(*map(_refs, node))
    if not isinstance(node, dict):
        return set()
    if "Ref" in node:
        found = {node["Ref"]}
    elif "Fn::GetAtt" in node:
        found = {_as_list(node["Fn::GetAtt"])[0].split(".")[0]}
    elif "Fn::Sub" in node:
        text, local = (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]
        found = (set(re.findall(r"\$\{([^}!]+)\}", text)) - set(local)) | _refs(list(local.values()))
    else:
        found = _refs(list(node.values()))
    return {name for name in found if not name.startswith("AWS::")}


# Besides its model, an invoker may read and count calls in the circuit-breaker table (src/model_router/circuit.py).
CIRCUIT_BREAKER_STATEMENT = {"Sid": "CountCallsInCircuitBreaker", "Effect": "Allow",
                             "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
                             "Resource": {"Fn::GetAtt": ["CircuitBreakerTable", "Arn"]}}


def guardrail_statement(tier: str) -> dict[str, Any]:
    """With a GuardrailId, an invoker may apply that guardrail (tests/infra/test_iam.py checks it in depth)."""
    return {"Fn::If": ["HasGuardrail", {
        "Sid": f"Apply{tier}Guardrail", "Effect": "Allow", "Action": "bedrock:ApplyGuardrail",
        "Resource": {"Fn::Sub": "arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}"
                                ":guardrail/${GuardrailId}"},
    }, {"Ref": "AWS::NoValue"}]}


def _invoker_policy_problems(template: dict[str, Any], tier: str) -> list[str]:
    """Why <Tier>InvokerFunction's policies are broader than bedrock:InvokeModel on its own model."""
    own = f"{tier}ModelId"
    policies = template["Resources"][f"{tier}InvokerFunction"]["Properties"].get("Policies", [])
    problems = [f"policy {p!r} is not an inline Statement" for p in policies if set(p) != {"Statement"}]
    statements = [s for p in policies if isinstance(p, dict) for s in _as_list(p.get("Statement", []))]
    if not statements:
        problems.append("no statements")
    for s in statements:
        sid = s.get("Sid", "?")
        if s in (CIRCUIT_BREAKER_STATEMENT, guardrail_statement(tier)):
            continue  # exactly these, or they are checked (and refused) as Bedrock statements below
        if s.get("Effect") != "Allow" or {"NotAction", "NotResource"} & set(s):
            problems.append(f"{sid}: only plain Allow statements expected")
        if _as_list(s.get("Action")) != ["bedrock:InvokeModel"]:
            problems.append(f"{sid}: actions {s.get('Action')!r}, expected bedrock:InvokeModel only")
        for resource in _as_list(s.get("Resource")):
            if resource == "*" or _refs(resource) != {own}:
                problems.append(f"{sid}: resource {resource!r} is not built from {own} alone")
        if _refs(s.get("Condition", {})) - {own}:
            problems.append(f"{sid}: condition refers to {_refs(s['Condition']) - {own}}")
    return problems


def _functions(template: dict[str, Any]) -> list[str]:
    return [lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"]


def test_the_invokers_are_one_per_tier(template: dict[str, Any]) -> None:
    invokers = sorted(lid for lid in _functions(template) if lid.endswith("InvokerFunction"))
    assert invokers == sorted(f"{tier}InvokerFunction" for tier in TIERS)


@pytest.mark.parametrize("tier", TIERS)
def test_each_invoker_may_invoke_only_its_own_model(template: dict[str, Any], tier: str) -> None:
    assert _invoker_policy_problems(template, tier) == []
    variables = template["Resources"][f"{tier}InvokerFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["MODEL_ID"] == {"Ref": f"{tier}ModelId"}


def test_the_least_privilege_check_catches_broader_policies(template: dict[str, Any]) -> None:
    def broken(change: Any) -> list[str]:
        changed = copy.deepcopy(template)
        change(changed["Resources"]["SonnetInvokerFunction"]["Properties"]["Policies"][0]["Statement"][0])
        return _invoker_policy_problems(changed, "Sonnet")

    assert broken(lambda s: s.update(Resource="*"))
    assert broken(lambda s: s.update(Resource={"Fn::Sub": "arn:aws:bedrock:*::foundation-model/${HaikuModelId}"}))
    assert broken(lambda s: s.update(Action=["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]))
    assert broken(lambda s: s.update(Action="bedrock:*"))


def test_only_the_invokers_the_judge_and_the_llm_classifier_may_call_bedrock(template: dict[str, Any]) -> None:
    # The shadow judge calls JudgeModelId only, the classifier its classifier model only with AllowLlmClassifier
    # (tests/infra/test_iam.py checks their statements like an invoker's).
    for lid in _functions(template):
        if lid.endswith("InvokerFunction") or lid == "ShadowJudgeFunction":
            continue
        policies = template["Resources"][lid]["Properties"].get("Policies", [])
        if lid == "ClassifierFunction":
            policies = [p for p in policies if p.get("Fn::If", [None])[0] != "LlmClassifierAllowed"]
        assert "bedrock" not in json.dumps(policies), lid


def test_the_state_machine_may_invoke_exactly_the_five_functions(template: dict[str, Any]) -> None:
    policies = template["Resources"]["RouterStateMachine"]["Properties"]["Policies"]
    invoked = [p["LambdaInvokePolicy"]["FunctionName"] for p in policies if "LambdaInvokePolicy" in p]
    # The router's functions: the ones its definition substitutes (the batch function belongs to the batch machine);
    # the one other substitution is the shadow state machine it starts.
    subs = template["Resources"]["RouterStateMachine"]["Properties"]["DefinitionSubstitutions"]
    router_functions = [v["Fn::GetAtt"][0] for v in subs.values() if "Fn::GetAtt" in v]
    assert {k: v for k, v in subs.items() if "Fn::GetAtt" not in v} == {
        "ShadowStateMachineArn": {"Ref": "ShadowStateMachine"}}
    assert set(router_functions) <= set(_functions(template))
    assert sorted(invoked, key=str) == sorted(({"Ref": lid} for lid in router_functions), key=str)
    assert len(invoked) == len(router_functions) == 5
    statements = [s for p in policies if "Statement" in p for s in _as_list(p["Statement"])]
    for s in statements:
        actions = _as_list(s["Action"])
        if s.get("Sid") == "StartShadowEvaluation":
            assert (actions, s["Resource"]) == (["states:StartExecution"], {"Ref": "ShadowStateMachine"})
            continue
        assert all(a.split(":")[0] in ("logs", "xray") for a in actions), f"{s.get('Sid')}: {actions}"
