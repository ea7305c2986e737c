"""Least-privilege IAM, S3 hygiene and the guardrail wiring, checked on template.yaml.

The rules are generic: they walk every policy of every resource in the template (SAM ``Policies``, IAM roles
and policies), so resources added later are checked too. The template is read expanded (the three invokers
come from one Fn::ForEach), so each rule sees every resource CloudFormation creates. Each checker is also run
on a small broken template, to show it can fail.

* No ``*`` (or ``service:*``) action anywhere; ``Resource: "*"`` only for actions AWS offers no narrower
  resource for (:data:`STAR_RESOURCE_ACTIONS`, each with its reason).
* SAM policy templates only from :data:`SCOPED_POLICY_TEMPLATES`, each naming its resource; no managed policies.
* Each invoker may call only its own model: ``bedrock:InvokeModel`` on its own inference profile, and on the
  foundation model only through that profile; ``bedrock:ApplyGuardrail`` only on the configured guardrail.
  The shadow judge likewise only the judge model (JudgeModelId); the classifier only the classifier model
  (ClassifierModelId, else HaikuModelId) and only with AllowLlmClassifier; nothing else may call Bedrock.
* Each state machine may invoke exactly the functions its definition names; the routers and the batch may start
  only the shadow state machine (and the batch itself); the HTTP API's role may start only the two routers (and
  describe the Standard one's executions); the shadow ledger reaches only its table and prefix.
* Every S3 bucket: default encryption, public access blocked, and a bucket policy that denies non-TLS access.
* The classifier reads router models only when a model artifact is named (RouterModelUri or ChallengerModelUri):
  then ssm:GetParameter on the champion pointer the stack creates and s3:GetObject under RouterModelBucket/
  RouterModelPrefix, nothing else; no other resource reads them or any SSM parameter.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from model_router_tools.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TIERS = ("Haiku", "Sonnet", "Opus")
INVOKERS = {f"{tier}InvokerFunction" for tier in TIERS}
SHADOW_FUNCTIONS = {"ShadowLedgerFunction", "ShadowJudgeFunction", *INVOKERS}
PSEUDO = re.compile(r"^AWS::")

# Actions IAM cannot scope to a resource (the Service Authorization Reference lists no resource type for them).
STAR_RESOURCE_ACTIONS = {
    # Step Functions log delivery to CloudWatch Logs: vended-logs APIs take no resource ARN.
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    # X-Ray tracing: account-level APIs.
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    # CloudWatch metrics: PutMetricData has no resource (scope it with a cloudwatch:namespace condition).
    "cloudwatch:PutMetricData",
}
# SAM policy templates that scope to the resource they are given, with the parameter that names it.
SCOPED_POLICY_TEMPLATES = {
    "LambdaInvokePolicy": "FunctionName",
    "DynamoDBCrudPolicy": "TableName",
    "DynamoDBReadPolicy": "TableName",
    "DynamoDBWritePolicy": "TableName",
    "S3ReadPolicy": "BucketName",
    "S3WritePolicy": "BucketName",
    "S3CrudPolicy": "BucketName",
    "SQSSendMessagePolicy": "QueueName",
    "SNSPublishMessagePolicy": "TopicName",
    "StepFunctionsExecutionPolicy": "StateMachineName",
}


def load(path: Path = ROOT / "template.yaml") -> dict[str, Any]:
    """The template as CloudFormation deploys it: invokers expanded from their Fn::ForEach, includes inlined."""
    template, matches = decode(str(path))
    assert template is not None and not matches, matches
    return load_template(path)


# -- walking policies --------------------------------------------------------------------------------


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _branches(value: Any) -> Iterator[Any]:
    """Both branches of an ``Fn::If`` (a policy must be least-privilege whichever way a condition goes)."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        _, when_true, when_false = value["Fn::If"]
        yield from _branches(when_true)
        yield from _branches(when_false)
    elif isinstance(value, dict) and value == {"Ref": "AWS::NoValue"}:
        return
    else:
        yield value


def statements(document: Any) -> Iterator[dict[str, Any]]:
    for document_branch in _branches(document):
        for item in _listify(document_branch.get("Statement", [])):
            yield from (s for s in _branches(item) if isinstance(s, dict))


def policies(template: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(resource, policy item) for every identity policy in the template, SAM or plain IAM."""
    for name, resource in template["Resources"].items():
        kind, properties = resource.get("Type", ""), resource.get("Properties", {})
        if kind in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            for item in _listify(properties.get("Policies", [])):
                yield from ((name, branch) for branch in _branches(item))
        elif kind == "AWS::IAM::Role":
            for item in properties.get("Policies", []):
                yield name, item["PolicyDocument"]
            for arn in properties.get("ManagedPolicyArns", []):
                yield name, arn
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            yield name, properties["PolicyDocument"]


def names_in(value: Any) -> set[str]:
    """Parameters and resources an expression refers to (Ref, GetAtt, ${...} in Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add((inner if isinstance(inner, list) else inner.split("."))[0])
            elif key == "Fn::Sub":
                text, variables = (inner, {}) if isinstance(inner, str) else (inner[0], inner[1])
                found |= {v.split(".")[0] for v in re.findall(r"\$\{([^}!]+)\}", text)} - set(variables)
                found |= names_in(variables)
            else:
                found |= names_in(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= names_in(inner)
    return {n for n in found if not PSEUDO.match(n)}


def statement_problems(resource: str, statement: dict[str, Any]) -> list[str]:
    if statement.get("Effect") != "Allow":
        return []
    where = f"{resource} {statement.get('Sid', '(no Sid)')}"
    problems = []
    actions = [a for a in _listify(statement.get("Action", [])) if isinstance(a, str)]
    if "NotAction" in statement or "NotResource" in statement:
        problems.append(f"{where}: NotAction/NotResource grants everything else")
    problems += [f"{where}: wildcard action {a!r}" for a in actions if "*" in a]
    if "*" in _listify(statement.get("Resource", [])):
        too_broad = sorted(set(actions) - STAR_RESOURCE_ACTIONS)
        if too_broad:
            problems.append(f"{where}: Resource '*' for {too_broad}, which take a narrower resource")
    return problems


def policy_problems(template: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for resource, item in policies(template):
        if isinstance(item, str):
            problems.append(f"{resource}: managed policy {item!r} (write the statements it needs instead)")
        elif isinstance(item, dict) and "Statement" in item:
            for statement in statements(item):
                problems += statement_problems(resource, statement)
        elif isinstance(item, dict) and len(item) == 1:
            (name, parameters), = item.items()
            key = SCOPED_POLICY_TEMPLATES.get(name)
            if key is None:
                problems.append(f"{resource}: policy template {name} is not in SCOPED_POLICY_TEMPLATES")
            elif not isinstance(parameters, dict) or parameters.get(key) in (None, "*", ""):
                problems.append(f"{resource}: {name} must name its {key}")
        else:
            problems.append(f"{resource}: unrecognised policy item {item!r}")
    return problems


# -- the rules on template.yaml ---------------------------------------------------------------------


def test_no_wildcard_actions_and_no_star_resources_where_a_narrower_one_exists(template: dict[str, Any]) -> None:
    assert policy_problems(template) == []


def test_the_rules_catch_broad_grants() -> None:
    broken = {"Resources": {
        "Fn": {"Type": "AWS::Serverless::Function", "Properties": {"Policies": [
            "AmazonS3FullAccess",
            {"S3ReadPolicy": {"BucketName": "*"}},
            {"AdministratorPolicy": {}},
            {"Statement": [
                {"Sid": "All", "Effect": "Allow", "Action": "*", "Resource": "*"},
                {"Sid": "S3Star", "Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/*"},
                {"Sid": "ReadAny", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
                {"Fn::If": ["C", {"Sid": "Hidden", "Effect": "Allow", "Action": "dynamodb:*", "Resource": "x"},
                            {"Ref": "AWS::NoValue"}]},
                {"Sid": "Logs", "Effect": "Allow", "Action": "xray:PutTraceSegments", "Resource": "*"},
                {"Sid": "Deny", "Effect": "Deny", "Action": "*", "Resource": "*"},
            ]},
        ]}},
    }}
    problems = "\n".join(policy_problems(broken))
    for expected in ("managed policy 'AmazonS3FullAccess'", "S3ReadPolicy must name its BucketName",
                     "AdministratorPolicy is not in", "All: wildcard action '*'", "S3Star: wildcard action",
                     "ReadAny: Resource '*'", "Hidden: wildcard action 'dynamodb:*'"):
        assert expected in problems, problems
    assert "Logs" not in problems and "Deny" not in problems


def _bedrock_statements(template: dict[str, Any], function: str) -> list[dict[str, Any]]:
    return [s for resource, item in policies(template) if resource == function and isinstance(item, dict)
            for s in statements(item)
            if any(a.startswith("bedrock:") for a in _listify(s.get("Action", [])))]


def _assert_invokes_only(template: dict[str, Any], function: str, own: str) -> list[dict[str, Any]]:
    """``function`` may call bedrock:InvokeModel on the ``own`` parameter's inference profile, and on its
    foundation model only through that profile; returns its other Bedrock statements."""
    return _assert_statements_invoke_only(_bedrock_statements(template, function), function, own)


def _assert_statements_invoke_only(found: list[dict[str, Any]], function: str, own: str) -> list[dict[str, Any]]:
    invoke = [s for s in found if _listify(s["Action"]) == ["bedrock:InvokeModel"]]
    assert len(invoke) == 2, "one statement for the inference profile, one for its foundation model"
    for statement in invoke:
        models = names_in(statement["Resource"]) | names_in(statement.get("Condition", {}))
        assert models == {own}, f"{function} {statement.get('Sid')} reaches {models}, not only {own}"
    profile, foundation = sorted(invoke, key=lambda s: "foundation-model" in str(s["Resource"]))
    assert "inference-profile/${" + own + "}" in str(profile["Resource"])
    # The foundation model only through this model's own profile.
    condition = foundation["Condition"]["StringEquals"]["bedrock:InferenceProfileArn"]
    assert names_in(condition) == {own} and "inference-profile/" in str(condition)
    # Bedrock resources only: nothing else of the account.
    for statement in found:
        assert all(":bedrock:" in str(r) for r in _listify(statement["Resource"])), statement
    return [s for s in found if s not in invoke]


@pytest.mark.parametrize("tier", TIERS)
def test_each_invoker_may_call_only_its_own_model(template: dict[str, Any], tier: str) -> None:
    others = _assert_invokes_only(template, f"{tier}InvokerFunction", f"{tier}ModelId")
    assert all(_listify(s["Action"]) == ["bedrock:ApplyGuardrail"] for s in others), others


def test_the_judge_may_call_only_the_judge_model_and_nothing_else(template: dict[str, Any]) -> None:
    assert _assert_invokes_only(template, "ShadowJudgeFunction", "JudgeModelId") == []
    # No other statement of any kind: the judge reads its input from the execution and returns its verdicts.
    items = [item for resource, item in policies(template) if resource == "ShadowJudgeFunction"]
    assert [s for item in items for s in statements(item)] == _bedrock_statements(template, "ShadowJudgeFunction")
    assert all(set(item) == {"Statement"} for item in items), items


def test_the_judge_check_fails_on_another_model(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    statement = broken["Resources"]["ShadowJudgeFunction"]["Properties"]["Policies"][0]["Statement"][0]
    statement["Resource"] = {"Fn::Sub": "arn:aws:bedrock:us-east-1:1:inference-profile/${OpusModelId}"}
    with pytest.raises(AssertionError, match="not only JudgeModelId"):
        _assert_invokes_only(broken, "ShadowJudgeFunction", "JudgeModelId")


def test_only_the_invokers_the_judge_and_the_llm_classifier_may_call_bedrock(template: dict[str, Any]) -> None:
    callers = {resource for resource, item in policies(template) if isinstance(item, dict)
               for s in statements(item) if any(str(a).startswith("bedrock:") for a in _listify(s.get("Action", [])))}
    assert callers == INVOKERS | {"ShadowJudgeFunction", "ClassifierFunction"}


def test_the_guardrail_statement_exists_only_with_a_guardrail_and_names_only_it(template: dict[str, Any]) -> None:
    assert template["Conditions"]["HasGuardrail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "GuardrailId"}, ""]}]}
    for tier in TIERS:
        items = template["Resources"][f"{tier}InvokerFunction"]["Properties"]["Policies"][0]["Statement"]
        guarded = [i for i in items if isinstance(i, dict) and "Fn::If" in i]
        assert len(guarded) == 1
        condition, statement, otherwise = guarded[0]["Fn::If"]
        assert (condition, otherwise) == ("HasGuardrail", {"Ref": "AWS::NoValue"})
        assert statement["Action"] == "bedrock:ApplyGuardrail"
        assert names_in(statement["Resource"]) == {"GuardrailId"}
        assert "guardrail/${GuardrailId}" in str(statement["Resource"])


def _invoke_targets(template: dict[str, Any], machine: str) -> set[str]:
    targets = set()
    for resource, item in policies(template):
        if resource != machine or not isinstance(item, dict):
            continue
        if "LambdaInvokePolicy" in item:
            targets |= names_in(item["LambdaInvokePolicy"]["FunctionName"])
        for statement in statements(item) if "Statement" in item else []:
            if any(str(a).startswith("lambda:") for a in _listify(statement.get("Action", []))):
                targets |= names_in(statement["Resource"])
                # Inline grants only as lambda:InvokeFunction on named functions (and their versions): anything
                # wider is flagged, so the comparison with the functions the definition names fails.
                if (_listify(statement["Action"]) != ["lambda:InvokeFunction"]
                        or not all(_function_arn(r) for r in _listify(statement["Resource"]))):
                    targets.add("(inline lambda statement)")
    return targets


def _function_arn(resource: Any) -> bool:
    """A function's ARN, or its versions and aliases: {"Fn::GetAtt": [F, "Arn"]} or {"Fn::Sub": "${F.Arn}:*"}."""
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        return list(resource["Fn::GetAtt"])[1:] == ["Arn"]
    if isinstance(resource, dict) and isinstance(resource.get("Fn::Sub"), str):
        return re.fullmatch(r"\$\{[A-Za-z0-9]+\.Arn\}:\*", resource["Fn::Sub"]) is not None
    return False


def test_each_state_machine_may_invoke_exactly_the_functions_it_names(template: dict[str, Any]) -> None:
    machines = [n for n, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::StateMachine"]
    assert "RouterStateMachine" in machines
    for machine in machines:
        substitutions = template["Resources"][machine]["Properties"].get("DefinitionSubstitutions", {})
        named = set().union(*(names_in(v) for v in substitutions.values()))
        functions = {n for n in named if template["Resources"].get(n, {}).get("Type") == "AWS::Serverless::Function"}
        assert functions, machine
        assert _invoke_targets(template, machine) == functions, machine


def test_the_router_state_machine_invokes_only_the_five_router_functions(template: dict[str, Any]) -> None:
    assert _invoke_targets(template, "RouterStateMachine") == {
        "ClassifierFunction", "HaikuInvokerFunction", "SonnetInvokerFunction", "OpusInvokerFunction", "ScorerFunction"}


def test_the_shadow_state_machine_invokes_exactly_the_ledger_the_judge_and_the_invokers(
        template: dict[str, Any]) -> None:
    assert _invoke_targets(template, "ShadowStateMachine") == SHADOW_FUNCTIONS
    assert len(SHADOW_FUNCTIONS) == 5


# -- Step Functions: who may start which state machine ---------------------------------------------------


def _state_machine_starts(template: dict[str, Any]) -> dict[str, list[Any]]:
    """Resource -> the resources of its statements that allow a states: action (StartExecution and the rest)."""
    found: dict[str, list[Any]] = {}
    for resource, item in policies(template):
        if isinstance(item, dict) and "StepFunctionsExecutionPolicy" in item:
            found.setdefault(resource, []).append(item)
        for statement in statements(item) if isinstance(item, dict) and "Statement" in item else []:
            actions = [str(a) for a in _listify(statement.get("Action", []))]
            if statement.get("Effect") == "Allow" and any(a.startswith("states:") for a in actions):
                found.setdefault(resource, []).append((actions, statement["Resource"]))
    return found


BATCH_SELF = {"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
                         ":stateMachine:${AWS::StackName}-batch"}
BATCH_EXECUTIONS = {"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
                               ":execution:${AWS::StackName}-batch/*"}
SHADOW = {"Ref": "ShadowStateMachine"}
# The HTTP API (api/openapi.yaml): /v1/generate runs the Express router, /v1/executions starts the Standard one
# and GET /v1/executions/{id} describes its executions (only its own: the ARN prefix of its name).
API_STARTS = [
    (["states:StartSyncExecution"], {"Ref": "ExpressRouterStateMachine"}),
    (["states:StartExecution"], {"Ref": "RouterStateMachine"}),
    (["states:DescribeExecution"], {"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
                                               ":execution:${RouterStateMachine.Name}:*"}),
]


def test_router_and_batch_may_start_only_the_shadow_state_machine(template: dict[str, Any]) -> None:
    # The router's "Start Shadow Evaluation" runs in the router, and in each batch line (Route Request holds the
    # router's states): both may StartExecution on the shadow state machine and no other; the batch also starts
    # and tracks its own executions (the sweep and the Distributed Map's children).
    starts = _state_machine_starts(template)
    api_role = starts.pop("RouterApiRole")
    assert api_role == API_STARTS  # below: the HTTP API's role starts only the two routers
    assert starts == {
        "RouterStateMachine": [(["states:StartExecution"], SHADOW)],
        "ExpressRouterStateMachine": [(["states:StartExecution"], SHADOW)],
        "BatchStateMachine": [
            (["states:StartExecution"], BATCH_SELF),
            (["states:DescribeExecution", "states:StopExecution"], BATCH_EXECUTIONS),
            (["states:StartExecution"], SHADOW),
        ],
    }


def test_the_start_check_fails_on_a_broader_grant(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    statement = next(s for s in broken["Resources"]["RouterStateMachine"]["Properties"]["Policies"][-1]["Statement"]
                     if s["Sid"] == "StartShadowEvaluation")
    statement["Resource"] = {"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:*"}
    assert _state_machine_starts(broken)["RouterStateMachine"] != [(["states:StartExecution"], SHADOW)]
    broken["Resources"]["ShadowStateMachine"]["Properties"]["Policies"].append(
        {"StepFunctionsExecutionPolicy": {"StateMachineName": "x"}})
    assert "ShadowStateMachine" in _state_machine_starts(broken)


def test_the_http_api_role_may_start_only_the_router_machines_and_nothing_else(template: dict[str, Any]) -> None:
    role = template["Resources"]["RouterApiRole"]
    assert role["Condition"] == "HttpApiOn"
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [(s["Principal"], s["Action"]) for s in trust] == [
        ({"Service": "apigateway.amazonaws.com"}, "sts:AssumeRole")]
    assert trust[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    found = [(_listify(s["Action"]), s["Resource"]) for resource, item in policies(template)
             if resource == "RouterApiRole" for s in statements(item)]
    assert found == API_STARTS
    # Every integration of the API runs with this role, and names one of the actions it allows.
    from model_router_tools.api.openapi import build_document

    for methods in build_document()["paths"].values():
        for operation in methods.values():
            integration = operation["x-amazon-apigateway-integration"]
            assert integration["credentials"] == {"Fn::GetAtt": ["RouterApiRole", "Arn"]}
            action = "states:" + integration["uri"]["Fn::Sub"].rsplit("/", 1)[1]
            assert any(action in actions for actions, _ in API_STARTS), action


def test_the_api_role_check_fails_on_a_broader_grant(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    statement = broken["Resources"]["RouterApiRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][1]
    statement["Resource"] = {"Ref": "BatchStateMachine"}
    assert _state_machine_starts(broken)["RouterApiRole"] != API_STARTS


# -- the shadow ledger: its table and its prefix, nothing else -------------------------------------------


def test_the_ledger_touches_only_its_table_and_the_outcomes_prefix(template: dict[str, Any]) -> None:
    items = [item for resource, item in policies(template) if resource == "ShadowLedgerFunction"]
    assert all(isinstance(item, dict) and set(item) == {"Statement"} for item in items), items
    found = sorted(((sorted(_listify(s["Action"])), s["Resource"]) for item in items for s in statements(item)),
                   key=str)
    assert found == sorted([
        (["dynamodb:GetItem", "dynamodb:UpdateItem"], {"Fn::GetAtt": ["ShadowBudgetTable", "Arn"]}),
        (["s3:PutObject"], {"Fn::Sub": "${ShadowOutcomesBucket.Arn}/outcomes/*"}),
    ], key=str)
    assert _bedrock_statements(template, "ShadowLedgerFunction") == []
    # The prefix it may write is the prefix it is told to write to, and the one the lifecycle rule expires.
    properties = template["Resources"]["ShadowLedgerFunction"]["Properties"]
    assert properties["Environment"]["Variables"]["SHADOW_OUTCOMES_PREFIX"] == "outcomes/"


# -- S3 ----------------------------------------------------------------------------------------------


def bucket_problems(template: dict[str, Any]) -> list[str]:
    resources = template["Resources"]
    problems = []
    for name, bucket in resources.items():
        if bucket.get("Type") != "AWS::S3::Bucket":
            continue
        properties = bucket.get("Properties", {})
        rules = properties.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
        algorithms = {r.get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules}
        if not algorithms & {"AES256", "aws:kms", "aws:kms:dsse"}:
            problems.append(f"{name}: no default encryption")
        block = properties.get("PublicAccessBlockConfiguration", {})
        if not all(block.get(k) is True for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls",
                                                  "RestrictPublicBuckets")):
            problems.append(f"{name}: public access not fully blocked")
        policies_of_bucket = [r["Properties"]["PolicyDocument"] for r in resources.values()
                              if r.get("Type") == "AWS::S3::BucketPolicy"
                              and names_in(r["Properties"]["Bucket"]) == {name}]
        tls_only = any(
            s.get("Effect") == "Deny" and s.get("Principal") in ("*", {"AWS": "*"})
            and "s3:*" in _listify(s.get("Action"))
            and str(s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")).lower() == "false"
            and any(names_in(r) == {name} and "/*" not in str(r) for r in _listify(s.get("Resource")))
            and any(names_in(r) == {name} and "/*" in str(r) for r in _listify(s.get("Resource")))
            for document in policies_of_bucket for s in statements(document)
        )
        if not tls_only:
            problems.append(f"{name}: no bucket policy denying s3:* without TLS on the bucket and its objects")
    return problems


def test_every_bucket_is_encrypted_private_and_tls_only(template: dict[str, Any]) -> None:
    if not any(r["Type"] == "AWS::S3::Bucket" for r in template["Resources"].values()):
        pytest.skip("no S3 bucket in the template")
    assert bucket_problems(template) == []


def test_the_bucket_rule_catches_an_open_bucket(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    broken["Resources"]["LooseBucket"] = {"Type": "AWS::S3::Bucket", "Properties": {}}
    broken["Resources"]["LooseBucketPolicy"] = {"Type": "AWS::S3::BucketPolicy", "Properties": {
        "Bucket": {"Ref": "LooseBucket"}, "PolicyDocument": {"Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": {"Fn::GetAtt": ["LooseBucket", "Arn"]},
             "Condition": {"Bool": {"aws:SecureTransport": False}}}]}}}  # the objects are not covered
    assert bucket_problems(broken) == [
        "LooseBucket: no default encryption",
        "LooseBucket: public access not fully blocked",
        "LooseBucket: no bucket policy denying s3:* without TLS on the bucket and its objects",
    ]


# -- the classifier: the champion pointer and the router model artifacts, only when a model artifact is named ----

CHAMPION_PARAMETER = "/${AWS::StackName}/router/champion-model-uri"
MODEL_PREFIX_ARN = "arn:${AWS::Partition}:s3:::${RouterModelBucket}/${RouterModelPrefix}*"
ARTIFACT = "s3://router-models-bucket/router-models/v2.json.gz#sha256=" + "ab" * 32


def _effective_statements(template: dict[str, Any], resource: str, **params: str) -> list[dict[str, Any]]:
    """``resource``'s statements as CloudFormation creates them for these parameter values (defaults otherwise):
    every Fn::If decided on the template's conditions (nested ones too), AWS::NoValue dropped."""
    from model_router_tools.local.template import condition_values

    values = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()} | params
    conditions = condition_values(template, values)

    def decide(node: Any) -> Any:
        while isinstance(node, dict) and set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            node = when_true if conditions[name] else when_false
        if node == {"Ref": "AWS::NoValue"}:
            return None
        if isinstance(node, dict):
            return {key: decide(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inner for inner in map(decide, node) if inner is not None]
        return node

    found = []
    for item in _listify(template["Resources"][resource]["Properties"].get("Policies", [])):
        document = decide(item)
        found += [statement for statement in _listify((document or {}).get("Statement", [])) if statement]
    return found


def test_the_classifier_reads_nothing_without_a_model_artifact(template: dict[str, Any]) -> None:
    assert _effective_statements(template, "ClassifierFunction") == []
    # ChallengerShare alone names no artifact: still nothing.
    assert _effective_statements(template, "ClassifierFunction", ChallengerShare="0.5") == []


@pytest.mark.parametrize("uris", [{"RouterModelUri": ARTIFACT}, {"ChallengerModelUri": ARTIFACT},
                                  {"RouterModelUri": ARTIFACT, "ChallengerModelUri": ARTIFACT.replace("v2", "v3")}])
def test_with_a_model_artifact_the_classifier_reads_only_its_pointer_and_the_model_prefix(
        template: dict[str, Any], uris: dict[str, str]) -> None:
    found = _effective_statements(template, "ClassifierFunction", RouterModelBucket="router-models-bucket", **uris)
    assert sorted((s["Sid"], s["Action"], s["Resource"]) for s in found) == [
        ("ReadChampionModelPointer", "ssm:GetParameter",
         {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter" + CHAMPION_PARAMETER}),
        ("ReadRouterModelArtifacts", "s3:GetObject", {"Fn::Sub": MODEL_PREFIX_ARN}),
    ]
    assert all(s["Effect"] == "Allow" and "Condition" not in s for s in found)


def test_the_pointer_the_classifier_may_read_is_the_one_the_stack_creates_and_names_in_its_environment(
        template: dict[str, Any]) -> None:
    resources = template["Resources"]
    parameter = resources["ChampionModelParameter"]
    assert parameter["Condition"] == "UseRouterModelArtifacts"
    assert parameter["Properties"]["Name"] == {"Fn::Sub": CHAMPION_PARAMETER}
    # Seeded from RouterModelUri, "bundled" when it is empty (a challenger alone: the bundled champion).
    assert parameter["Properties"]["Value"] == {"Fn::If": ["HasRouterModelUri", {"Ref": "RouterModelUri"}, "bundled"]}
    env = resources["ClassifierFunction"]["Properties"]["Environment"]["Variables"]
    assert env["ROUTER_MODEL_URI"] == {"Fn::If": ["UseRouterModelArtifacts", {"Fn::Sub": "ssm:" + CHAMPION_PARAMETER},
                                                  ""]}
    assert env["CHALLENGER_MODEL_URI"] == {"Ref": "ChallengerModelUri"}
    assert env["CHALLENGER_SHARE"] == {"Ref": "ChallengerShare"}
    conditions = template["Conditions"]
    assert conditions["HasRouterModelUri"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "RouterModelUri"}, ""]}]}
    assert conditions["UseRouterModelArtifacts"] == {"Fn::Or": [
        {"Condition": "HasRouterModelUri"}, {"Fn::Not": [{"Fn::Equals": [{"Ref": "ChallengerModelUri"}, ""]}]}]}
    # A URI without the bucket the grant names cannot deploy.
    rule = template["Rules"]["RouterModelArtifactsNeedTheirBucket"]
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "RouterModelBucket"}, ""]}]}


def test_with_model_artifacts_the_classifier_has_room_for_two_models(template: dict[str, Any]) -> None:
    from model_router_tools.local.template import function_specs

    assert template["Resources"]["ClassifierFunction"]["Properties"]["MemorySize"] == {
        "Fn::If": ["UseRouterModelArtifacts", 512, 256]}
    assert template["Globals"]["Function"]["MemorySize"] == 256  # what every other function has
    assert function_specs(template, ROOT)["ClassifierFunction"].memory_mb == 256
    with_models = function_specs(template, ROOT, {"ChallengerModelUri": ARTIFACT, "RouterModelBucket": "b"})
    assert with_models["ClassifierFunction"].memory_mb == 512


def test_only_the_classifier_reads_router_models_or_any_ssm_parameter(template: dict[str, Any]) -> None:
    readers = {resource for resource, item in policies(template) if isinstance(item, dict)
               for s in statements(item)
               if any(str(a).startswith("ssm:") for a in _listify(s.get("Action", [])))
               or names_in(s.get("Resource", "")) & {"RouterModelBucket", "RouterModelPrefix"}}
    assert readers == {"ClassifierFunction"}


def _model_read_problems(template: dict[str, Any]) -> list[str]:
    """What the classifier's model statements grant beyond the pointer and the model prefix."""
    found = _effective_statements(template, "ClassifierFunction", RouterModelBucket="b", ChallengerModelUri=ARTIFACT)
    expected = {("ssm:GetParameter", CHAMPION_PARAMETER), ("s3:GetObject", MODEL_PREFIX_ARN)}
    problems = []
    for statement in found:
        resource = str(statement["Resource"].get("Fn::Sub")) if isinstance(statement["Resource"], dict) else ""
        if not any(statement["Action"] == action and resource.endswith(end) for action, end in expected):
            problems.append(f"{statement.get('Sid')}: {statement['Action']} on {statement['Resource']}")
    return problems


def test_the_model_read_check_fails_on_a_broader_grant(template: dict[str, Any]) -> None:
    assert _model_read_problems(template) == []
    broken = copy.deepcopy(template)
    document = broken["Resources"]["ClassifierFunction"]["Properties"]["Policies"][0]["Fn::If"][1]
    document["Statement"][1]["Resource"] = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${RouterModelBucket}/*"}
    assert _model_read_problems(broken) == [
        "ReadRouterModelArtifacts: s3:GetObject on {'Fn::Sub': 'arn:${AWS::Partition}:s3:::${RouterModelBucket}/*'}"]


@pytest.mark.parametrize("uri", [
    ARTIFACT, ARTIFACT.replace(".json.gz", ".json"), ARTIFACT.replace("router-models/", ""),
    ARTIFACT.replace("v2", "a/b/c.d"), ARTIFACT.replace("v2", ""), ARTIFACT.replace("v2.json.gz", "v2.pkl"),
    ARTIFACT.replace("#sha256=", ""), ARTIFACT.upper(), ARTIFACT.replace("v2", "my model"), ARTIFACT + "#x",
    ARTIFACT.replace("router-models-bucket", "b"), "s3://router-models-bucket/x.json.gz#sha256=abc", "",
])
def test_the_template_accepts_exactly_the_model_uris_the_classifier_accepts(template: dict[str, Any],
                                                                           uri: str) -> None:
    # A URI the stack deploys but the classifier's settings refuse would fail every classification.
    from model_router.routing.model_uri import parse_model_uri

    try:
        accepted = uri == "" or bool(parse_model_uri(uri))
    except ValueError:
        accepted = False
    for name in ("RouterModelUri", "ChallengerModelUri"):
        pattern = template["Parameters"][name]["AllowedPattern"]
        assert bool(re.match(pattern, uri)) == accepted, (name, uri)


# -- the LLM classifier: the classifier model alone, and only with AllowLlmClassifier ------------------------

CLASSIFIER_MODEL = "eu.anthropic.claude-sonnet-4-6"


def _inline_sub_refs(node: Any) -> Any:
    """Fn::Sub variables that are a plain Ref written into the text (``${ClassifierModel}`` with ClassifierModel
    = Ref HaikuModelId reads ``${HaikuModelId}``), so statements compare with the invokers' own."""
    if isinstance(node, list):
        return [_inline_sub_refs(inner) for inner in node]
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("Fn::Sub"), list):
        text, variables = node["Fn::Sub"]
        kept = {}
        for name, value in variables.items():
            if isinstance(value, dict) and set(value) == {"Ref"}:
                text = text.replace("${" + name + "}", "${" + value["Ref"] + "}")
            else:
                kept[name] = _inline_sub_refs(value)
        return {"Fn::Sub": [text, kept] if kept else text}
    return {key: _inline_sub_refs(value) for key, value in node.items()}


def _classifier_bedrock(template: dict[str, Any], **params: str) -> list[dict[str, Any]]:
    found = _effective_statements(template, "ClassifierFunction", **params)
    return [_inline_sub_refs(s) for s in found if any(str(a).startswith("bedrock:") for a in _listify(s["Action"]))]


def _without_sids(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: value for key, value in s.items() if key != "Sid"} for s in found]


def _haiku_invoker_model_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    found = _effective_statements(template, "HaikuInvokerFunction")
    return [s for s in found if _listify(s["Action"]) == ["bedrock:InvokeModel"]]


def test_the_llm_classifier_conditions_read_their_parameters(template: dict[str, Any]) -> None:
    conditions = template["Conditions"]
    assert conditions["LlmClassifierAllowed"] == {"Fn::Equals": [{"Ref": "AllowLlmClassifier"}, "true"]}
    assert conditions["HasClassifierModelId"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ClassifierModelId"}, ""]}]}
    assert template["Parameters"]["AllowLlmClassifier"]["Default"] == "false"


@pytest.mark.parametrize("params", [
    {}, {"ClassifierModelId": CLASSIFIER_MODEL}, {"DefaultStrategy": "learned+llm"},
    {"RouterModelUri": ARTIFACT, "RouterModelBucket": "router-models-bucket"},
])
def test_without_allow_llm_classifier_the_classifier_has_no_bedrock_permission(
        template: dict[str, Any], params: dict[str, str]) -> None:
    assert _classifier_bedrock(template, **params) == []
    found = _effective_statements(template, "ClassifierFunction", **params)
    assert "bedrock" not in str(found)


def test_allowed_with_no_classifier_model_the_classifier_may_call_only_the_haiku_model(
        template: dict[str, Any]) -> None:
    found = _classifier_bedrock(template, AllowLlmClassifier="true")
    assert _assert_statements_invoke_only(found, "ClassifierFunction", "HaikuModelId") == []
    # Exactly the Haiku invoker's grant on its model, ARN for ARN: the classifier reaches no further.
    assert _without_sids(found) == _without_sids(_haiku_invoker_model_statements(template))
    assert sorted(s["Sid"] for s in found) == ["InvokeClassifierFoundationModelThroughProfile",
                                               "InvokeClassifierInferenceProfile"]
    assert {"SonnetModelId", "OpusModelId", "JudgeModelId", "ClassifierModelId"}.isdisjoint(names_in(found))


def test_allowed_with_a_classifier_model_the_classifier_may_call_only_that_model(template: dict[str, Any]) -> None:
    found = _classifier_bedrock(template, AllowLlmClassifier="true", ClassifierModelId=CLASSIFIER_MODEL)
    assert _assert_statements_invoke_only(found, "ClassifierFunction", "ClassifierModelId") == []
    haiku_shape = str(_without_sids(_haiku_invoker_model_statements(template))).replace("HaikuModelId",
                                                                                        "ClassifierModelId")
    assert str(_without_sids(found)) == haiku_shape
    assert {"HaikuModelId", "SonnetModelId", "OpusModelId", "JudgeModelId"}.isdisjoint(names_in(found))


def test_the_llm_classifier_grant_sits_beside_the_model_artifact_reads(template: dict[str, Any]) -> None:
    found = _effective_statements(template, "ClassifierFunction", AllowLlmClassifier="true",
                                  RouterModelUri=ARTIFACT, RouterModelBucket="router-models-bucket")
    assert sorted(s["Sid"] for s in found) == [
        "InvokeClassifierFoundationModelThroughProfile", "InvokeClassifierInferenceProfile",
        "ReadChampionModelPointer", "ReadRouterModelArtifacts"]
    # Its own policy item, gated on the condition alone.
    items = template["Resources"]["ClassifierFunction"]["Properties"]["Policies"]
    gated = [item for item in items if "bedrock" in str(item)]
    assert len(gated) == 1 and gated[0]["Fn::If"][0] == "LlmClassifierAllowed"
    assert gated[0]["Fn::If"][2] == {"Ref": "AWS::NoValue"}


def test_the_classifier_may_call_the_model_its_environment_names(template: dict[str, Any]) -> None:
    from model_router_tools.local.template import function_specs

    for params, own in (({}, "HaikuModelId"), ({"ClassifierModelId": CLASSIFIER_MODEL}, "ClassifierModelId")):
        values = {"AllowLlmClassifier": "true", **params}
        env = function_specs(template, ROOT, values)["ClassifierFunction"].environment
        expected = values.get(own) or str(template["Parameters"][own]["Default"])
        assert env["CLASSIFIER_MODEL_ID"] == expected
        assert names_in(_classifier_bedrock(template, **values)) == {own}


def test_the_classifier_check_fails_on_another_tier_s_model(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    document = broken["Resources"]["ClassifierFunction"]["Properties"]["Policies"][1]["Fn::If"][1]
    document["Statement"][0]["Resource"]["Fn::Sub"][1]["ClassifierModel"] = {"Ref": "OpusModelId"}
    found = _classifier_bedrock(broken, AllowLlmClassifier="true")
    with pytest.raises(AssertionError, match="not only HaikuModelId"):
        _assert_statements_invoke_only(found, "ClassifierFunction", "HaikuModelId")
