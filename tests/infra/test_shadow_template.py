"""The shadow evaluation resources of template.yaml: parameters, the state machine, what each function is told,
the outcomes bucket and the budget table. Their IAM is checked in test_iam.py (with every other policy), the
dashboard row and the alarm in test_observability_template.py."""

from __future__ import annotations

import copy
from typing import Any

import pytest

# (type, default, other constraints) of each shadow parameter.
PARAMETERS = {
    "ShadowSampleRate": ("Number", 0, {"MinValue": 0, "MaxValue": 1}),
    "ShadowSampler": ("String", "uniform", {"AllowedValues": ["uniform", "uncertainty"]}),
    "ShadowMaxUsdPerDay": ("Number", 5, {"MinValue": 0}),
    "StoreShadowPrompts": ("String", "false", {"AllowedValues": ["false", "true"]}),
    "ShadowRetentionDays": ("Number", 90, {"MinValue": 1}),
}


def resource(template: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = template["Resources"][name]
    return found


def env(template: dict[str, Any], function: str) -> dict[str, Any]:
    variables: dict[str, Any] = resource(template, function)["Properties"]["Environment"]["Variables"]
    return variables


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_each_shadow_parameter_has_its_default_and_bounds(template: dict[str, Any], name: str) -> None:
    kind, default, constraints = PARAMETERS[name]
    parameter = template["Parameters"][name]
    assert (parameter["Type"], parameter["Default"]) == (kind, default)
    for key, value in constraints.items():
        assert parameter[key] == value, (name, key)


def test_shadow_evaluation_is_off_by_default(template: dict[str, Any]) -> None:
    assert template["Parameters"]["ShadowSampleRate"]["Default"] == 0
    assert template["Parameters"]["StoreShadowPrompts"]["Default"] == "false"


def test_the_judge_model_defaults_to_the_sonnet_model_and_takes_the_same_ids(template: dict[str, Any]) -> None:
    judge, sonnet = template["Parameters"]["JudgeModelId"], template["Parameters"]["SonnetModelId"]
    assert judge["Type"] == "String"
    assert judge["Default"] == sonnet["Default"]
    assert judge["AllowedPattern"] == sonnet["AllowedPattern"]


def test_the_shadow_parameters_are_grouped_in_the_console(template: dict[str, Any]) -> None:
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    [shadow] = [g for g in groups if g["Label"]["default"] == "Shadow evaluation"]
    assert set(shadow["Parameters"]) == {*PARAMETERS, "JudgeModelId"}
    grouped = [p for g in groups for p in g["Parameters"]]
    assert len(grouped) == len(set(grouped)), "a parameter in two groups"


def test_the_scorer_decides_the_sampling_and_gets_nothing_else_new(template: dict[str, Any]) -> None:
    scorer = resource(template, "ScorerFunction")["Properties"]
    assert env(template, "ScorerFunction") == {"SHADOW_SAMPLE_RATE": {"Ref": "ShadowSampleRate"},
                                               "SHADOW_SAMPLER": {"Ref": "ShadowSampler"}}
    assert "Policies" not in scorer


def test_the_ledger_is_told_its_table_budget_bucket_prefix_and_judge(template: dict[str, Any]) -> None:
    properties = resource(template, "ShadowLedgerFunction")["Properties"]
    assert (properties["CodeUri"], properties["Handler"]) == ("functions/shadow/", "app.lambda_handler")
    assert env(template, "ShadowLedgerFunction") == {
        "SHADOW_BUDGET_TABLE": {"Ref": "ShadowBudgetTable"},
        "SHADOW_MAX_USD_PER_DAY": {"Ref": "ShadowMaxUsdPerDay"},
        "SHADOW_OUTCOMES_BUCKET": {"Ref": "ShadowOutcomesBucket"},
        "SHADOW_OUTCOMES_PREFIX": "outcomes/",
        "STORE_SHADOW_PROMPTS": {"Ref": "StoreShadowPrompts"},
        "JUDGE_MODEL_ID": {"Ref": "JudgeModelId"},
    }
    # Small, like the scorer: the Globals' memory and timeout.
    assert "MemorySize" not in properties and "Timeout" not in properties


def test_the_judge_is_told_its_model_and_has_an_invokers_timeout(template: dict[str, Any]) -> None:
    properties = resource(template, "ShadowJudgeFunction")["Properties"]
    assert (properties["CodeUri"], properties["Handler"]) == ("functions/judge/", "app.lambda_handler")
    assert env(template, "ShadowJudgeFunction") == {"JUDGE_MODEL_ID": {"Ref": "JudgeModelId"}}
    assert properties["Timeout"] == resource(template, "HaikuInvokerFunction")["Properties"]["Timeout"]


def test_the_shadow_state_machine_is_standard_logged_and_traced(template: dict[str, Any]) -> None:
    properties = resource(template, "ShadowStateMachine")["Properties"]
    assert properties["Type"] == "STANDARD"  # never the WorkflowType parameter
    assert properties["DefinitionUri"] == "statemachine/shadow.asl.json"
    assert properties["DefinitionSubstitutions"] == {
        "ShadowLedgerFunctionArn": {"Fn::GetAtt": ["ShadowLedgerFunction", "Arn"]},
        "ShadowJudgeFunctionArn": {"Fn::GetAtt": ["ShadowJudgeFunction", "Arn"]},
        **{f"{tier}InvokerFunctionArn": {"Fn::GetAtt": [f"{tier}InvokerFunction", "Arn"]}
           for tier in ("Haiku", "Sonnet", "Opus")},
    }
    router = resource(template, "RouterStateMachine")["Properties"]
    assert properties["Tracing"] == router["Tracing"] == {"Enabled": True}
    logging = properties["Logging"]
    assert {k: v for k, v in logging.items() if k != "Destinations"} == {
        k: v for k, v in router["Logging"].items() if k != "Destinations"}
    assert logging["Destinations"] == [{"CloudWatchLogsLogGroup": {"LogGroupArn": {
        "Fn::GetAtt": ["ShadowLogGroup", "Arn"]}}}]
    group = resource(template, "ShadowLogGroup")["Properties"]
    assert group["LogGroupName"] == {"Fn::Sub": "/aws/vendedlogs/states/${AWS::StackName}-shadow"}
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


@pytest.mark.parametrize("machine", ["RouterStateMachine", "BatchStateMachine"])
def test_the_router_and_each_batch_line_get_the_shadow_state_machine(template: dict[str, Any], machine: str) -> None:
    substitutions = resource(template, machine)["Properties"]["DefinitionSubstitutions"]
    assert substitutions["ShadowStateMachineArn"] == {"Ref": "ShadowStateMachine"}  # Ref of a state machine: its ARN


# -- the outcomes bucket --------------------------------------------------------------------------------


def outcome_bucket_problems(template: dict[str, Any]) -> list[str]:
    """Why ShadowOutcomesBucket is not encrypted, private, TLS-only, expiring its records."""
    resources = template["Resources"]
    props = resources["ShadowOutcomesBucket"].get("Properties", {})
    problems = []
    rules = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
    if not any(r.get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm") in ("AES256", "aws:kms")
               for r in rules):
        problems.append("not encrypted")
    block = props.get("PublicAccessBlockConfiguration", {})
    if len(block) != 4 or set(block.values()) != {True}:
        problems.append("public access not fully blocked")
    if props.get("OwnershipControls") != {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}:
        problems.append("ACLs not disabled")
    expiring = [r for r in props.get("LifecycleConfiguration", {}).get("Rules", [])
                if r.get("Status") == "Enabled" and r.get("Prefix") == "outcomes/"
                and r.get("ExpirationInDays") == {"Ref": "ShadowRetentionDays"}
                and "NoncurrentDays" in r.get("NoncurrentVersionExpiration", {})]
    if not expiring:
        problems.append("no rule expiring outcomes/ after ShadowRetentionDays")
    policies = [r["Properties"]["PolicyDocument"] for r in resources.values() if r["Type"] == "AWS::S3::BucketPolicy"
                and r["Properties"]["Bucket"] == {"Ref": "ShadowOutcomesBucket"}]
    tls = [s for p in policies for s in p["Statement"]
           if (s["Effect"], s["Principal"], s["Action"]) == ("Deny", "*", "s3:*")
           and s.get("Condition") == {"Bool": {"aws:SecureTransport": False}}
           and s["Resource"] == [{"Fn::GetAtt": ["ShadowOutcomesBucket", "Arn"]},
                                 {"Fn::Sub": "${ShadowOutcomesBucket.Arn}/*"}]]
    if not tls:
        problems.append("no bucket policy denying requests without TLS")
    return problems


def test_the_outcomes_bucket_is_encrypted_private_tls_only_and_expires_records(template: dict[str, Any]) -> None:
    assert outcome_bucket_problems(template) == []


@pytest.mark.parametrize(("change", "problem"), [
    (lambda r: r["ShadowOutcomesBucket"]["Properties"].pop("BucketEncryption"), "not encrypted"),
    (lambda r: r["ShadowOutcomesBucket"]["Properties"]["PublicAccessBlockConfiguration"].update(
        RestrictPublicBuckets=False), "public access not fully blocked"),
    (lambda r: r["ShadowOutcomesBucket"]["Properties"]["LifecycleConfiguration"]["Rules"][0].update(
        ExpirationInDays=3650), "no rule expiring outcomes/ after ShadowRetentionDays"),
    (lambda r: r.pop("ShadowOutcomesBucketPolicy"), "no bucket policy denying requests without TLS"),
])
def test_the_bucket_check_fails_on_a_weaker_bucket(template: dict[str, Any], change: Any, problem: str) -> None:
    broken = copy.deepcopy(template)
    change(broken["Resources"])
    assert outcome_bucket_problems(broken) == [problem]


# -- the budget table -------------------------------------------------------------------------------------


def test_the_budget_table_is_keyed_by_pk_expires_and_is_encrypted_like_the_circuit_breaker(
        template: dict[str, Any]) -> None:
    table = resource(template, "ShadowBudgetTable")
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    # Point-in-time recovery as the circuit breaker's table (off, with the reason next to the resource).
    breaker = resource(template, "CircuitBreakerTable")
    assert ("PointInTimeRecoverySpecification" in properties) == (
        "PointInTimeRecoverySpecification" in breaker["Properties"])
    skipped = {s["id"] for s in table["Metadata"]["checkov"]["skip"]}
    assert skipped == {s["id"] for s in breaker["Metadata"]["checkov"]["skip"]} == {"CKV_AWS_28", "CKV_AWS_119"}


# -- outputs ----------------------------------------------------------------------------------------------


def test_the_outputs_name_the_shadow_state_machine_the_bucket_and_the_dataset_uri(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["ShadowStateMachineArn"]["Value"] == {"Ref": "ShadowStateMachine"}
    assert outputs["ShadowOutcomesBucketName"]["Value"] == {"Ref": "ShadowOutcomesBucket"}
    assert outputs["ShadowOutcomesUri"]["Value"] == {"Fn::Sub": "s3://${ShadowOutcomesBucket}/outcomes/"}
