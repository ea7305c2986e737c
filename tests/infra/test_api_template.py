"""The HTTP API in template.yaml and api/openapi.yaml: generated from the rules, off by default, and its VTL
mapping templates (rendered with a Velocity engine, tests/api_gateway_vtl.py) agree with the Python rules that
``model-router serve`` applies, case by case."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_gateway_vtl import escape_javascript, render

from model_router_tools.api import mapping, openapi, vtl
from model_router_tools.local.template import condition_values

ROOT = Path(__file__).resolve().parents[2]
SUBSTITUTIONS = {"HttpApiMaxRequestBytes": "2048", "ExpressRouterStateMachine": "arn:aws:states:r:1:stateMachine:E",
                 "RouterStateMachine": "arn:aws:states:r:1:stateMachine:S", "AWS::Partition": "aws",
                 "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "RouterStateMachine.Name": "S"}
API_RESOURCES = {"ExpressRouterLogGroup", "ExpressRouterStateMachine", "ExpressRouterFailedExecutionsAlarm",
                 "RouterApiRole", "RouterApiAccessLogGroup", "RouterApi"}


def _document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "api" / "openapi.yaml").read_text(encoding="utf-8"))
    return loaded


def _integration(path: str, method: str) -> dict[str, Any]:
    found: dict[str, Any] = _document()["paths"][path][method.lower()]["x-amazon-apigateway-integration"]
    return found


def _vtl(value: dict[str, str]) -> str:
    return value["Fn::Sub"]


# -- generated, wired, off by default ------------------------------------------------------------------------


def test_the_openapi_document_is_what_the_rules_generate() -> None:
    assert (ROOT / "api" / "openapi.yaml").read_text(encoding="utf-8") == openapi.render(), \
        "api/openapi.yaml has drifted: python -m model_router_tools.api.openapi"


def test_the_document_has_exactly_the_routes_of_the_rules_each_signed_and_integrated() -> None:
    document = _document()
    assert document["openapi"].startswith("3.")
    routes = {path: tuple(m.upper() for m in methods) for path, methods in document["paths"].items()}
    assert routes == mapping.ROUTES
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            assert operation["security"] == [{openapi.AUTH_SCHEME: []}], (path, method)
            integration = operation["x-amazon-apigateway-integration"]
            assert integration["credentials"] == {"Fn::GetAtt": ["RouterApiRole", "Arn"]}
            assert integration["type"] == "aws" and integration["passthroughBehavior"] == "never"
    actions = {path: _integration(path, m)["uri"]["Fn::Sub"].rsplit("/", 1)[1]
               for path, ms in mapping.ROUTES.items() for m in ms}
    assert actions == {mapping.GENERATE: "StartSyncExecution", mapping.EXECUTIONS: "StartExecution",
                       mapping.EXECUTION: "DescribeExecution"}


def test_iam_signing_by_default_and_a_cognito_jwt_authorizer_as_the_option(template: dict[str, Any]) -> None:
    scheme = _document()["components"]["securitySchemes"][openapi.AUTH_SCHEME]
    assert scheme["x-amazon-apigateway-authtype"] == {"Fn::If": ["HttpApiJwtAuth", "cognito_user_pools", "awsSigv4"]}
    assert scheme["x-amazon-apigateway-authorizer"]["Fn::If"][1]["providerARNs"] == [{"Ref": "HttpApiUserPoolArn"}]
    assert template["Parameters"]["HttpApiAuth"]["Default"] == "IAM"
    assert template["Conditions"]["HttpApiJwtAuth"] == {"Fn::Equals": [{"Ref": "HttpApiAuth"}, "JWT"]}


def test_the_template_includes_the_document_and_passes_the_limits_as_parameters(template: dict[str, Any]) -> None:
    api = template["Resources"]["RouterApi"]["Properties"]
    assert api["DefinitionBody"] == _document()  # inlined by the reader, as CloudFormation's AWS::Include does
    settings = api["MethodSettings"][0]
    assert settings["ThrottlingRateLimit"] == {"Ref": "HttpApiThrottleRate"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "HttpApiThrottleBurst"}
    assert settings["DataTraceEnabled"] is False  # bodies hold prompts and answers
    parameters = template["Parameters"]
    assert parameters["HttpApiThrottleRate"]["Default"] == mapping.DEFAULT_THROTTLE_RATE
    assert parameters["HttpApiThrottleBurst"]["Default"] == mapping.DEFAULT_THROTTLE_BURST
    assert parameters["HttpApiMaxRequestBytes"]["Default"] == mapping.DEFAULT_MAX_REQUEST_BYTES
    assert vtl.MAX_REQUEST_BYTES in _vtl(_integration(mapping.GENERATE, "POST")["requestTemplates"]["application/json"])


def _created(template: dict[str, Any], **parameters: str) -> set[str]:
    values = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()} | parameters
    conditions = condition_values(template, values)
    return {name for name, resource in template["Resources"].items()
            if "Condition" not in resource or conditions[resource["Condition"]]}


def test_a_deploy_without_the_api_creates_none_of_it(template: dict[str, Any]) -> None:
    assert template["Parameters"]["HttpApi"]["Default"] == "false"
    assert not _created(template) & API_RESOURCES
    assert _created(template, HttpApi="true") - _created(template) == API_RESOURCES
    # An Express router alone, for StartSyncExecution callers, without the API.
    assert _created(template, DeployExpressRouter="true") - _created(template) == {
        "ExpressRouterLogGroup", "ExpressRouterStateMachine", "ExpressRouterFailedExecutionsAlarm"}
    outputs = template["Outputs"]
    assert outputs["RouterApiUrl"]["Condition"] == "HttpApiOn"
    assert outputs["ExpressRouterStateMachineArn"]["Condition"] == "CreateExpressRouter"


def test_the_standard_router_stays_the_default_and_the_express_copy_runs_the_same_definition(
        template: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert template["Parameters"]["WorkflowType"]["Default"] == "STANDARD"
    standard = resources["RouterStateMachine"]["Properties"]
    express = resources["ExpressRouterStateMachine"]["Properties"]
    assert express["Type"] == "EXPRESS"
    for key in ("DefinitionUri", "DefinitionSubstitutions", "Tracing"):
        assert express[key] == standard[key], key
    # The same grants: the router's functions (an inline statement on the Express copy: sam build refuses policy
    # templates on a conditioned state machine), then the same shadow start, log delivery and traces.
    invoked = [r for p in standard["Policies"] if "LambdaInvokePolicy" in p
               for r in (f"{{'Fn::GetAtt': ['{p['LambdaInvokePolicy']['FunctionName']['Ref']}', 'Arn']}}",)]
    inline = express["Policies"][0]["Statement"][0]
    assert inline["Action"] == "lambda:InvokeFunction"
    assert [str(r) for r in inline["Resource"] if "Fn::GetAtt" in r] == invoked
    assert express["Policies"][1:] == [p for p in standard["Policies"] if "LambdaInvokePolicy" not in p]
    # The API runs /v1/executions on the Standard router: the stack refuses HttpApi with an Express one.
    rule = template["Rules"]["HttpApiNeedsTheStandardRouter"]
    assert rule["Assertions"][0]["Assert"] == {"Fn::Equals": [{"Ref": "WorkflowType"}, "STANDARD"]}


def test_the_vtl_leaves_cloudformation_only_its_placeholders() -> None:
    placeholders = {name for text in vtl.PLACEHOLDERS for name in re.findall(r"\$\{([^}]*)\}", text)}
    for path, methods in mapping.ROUTES.items():
        for method in methods:
            integration = _integration(path, method)
            texts = [_vtl(t) for t in integration["requestTemplates"].values()]
            texts += [_vtl(t) for r in integration["responses"].values() for t in r["responseTemplates"].values()]
            for text in texts:
                assert set(re.findall(r"\$\{([^}!]*)\}", text)) <= placeholders, (path, method)


# -- the request templates: the body and the override headers -> the execution's input -------------------------


def _start(path: str, body: Any, headers: dict[str, str] | None = None, raw: str | None = None) -> dict[str, Any]:
    template = _vtl(_integration(path, "POST")["requestTemplates"]["application/json"])
    rendered = render(template, body=raw if raw is not None else json.dumps(body), params=headers,
                      substitutions=SUBSTITUTIONS, request_id="0f0e-req")
    started: dict[str, Any] = rendered.json()
    return started


OVERRIDE_CASES = [
    ({"prompt": "hi"}, {}),
    ({"prompt": "hi"}, {"X-Model-Tier": "haiku"}),
    ({"prompt": "hi", "tier": "opus"}, {"X-Model-Tier": " sonnet "}),
    ({"prompt": "hi", "routing": {"max_tier": "opus", "strategy": "cascade"}}, {"X-Max-Tier": "haiku"}),
    ({"prompt": "hi"}, {"X-Max-Cost-USD": "0.05"}),
    ({"prompt": "hi", "routing": {"max_cost_usd": 1}}, {"X-Max-Cost-USD": "12"}),
    ({"prompt": "hi"}, {"X-Max-Cost-USD": "cheap"}),  # stays text: the schema refuses it naming the field
    ({"prompt": "hi"}, {"X-Max-Cost-USD": "1e9"}),
    ({"prompt": "hi"}, {"X-Model-Tier": 'ha"iku\\ it\'s é 😀 </x>'}),  # escaped, never injected
    ({"prompt": "hi"}, {"X-Model-Tier": "haiku\", \"routing\": {\"max_tier\": \"opus\"}, \"x\": \""}),
    ({"prompt": "hi", "promt": "typo"}, {"X-Model-Tier": "haiku"}),  # unknown field: passes unchanged
    ({"prompt": "hi", "routing": "opus"}, {"X-Max-Tier": "haiku"}),  # routing not an object: unchanged
    ({"prompt": "hi", "routing": {"max_teir": "opus"}}, {"X-Max-Tier": "haiku"}),
    ({"messages": [{"role": "user", "content": [{"text": "a \"quoted\"\nline"}]}], "system": "s",
      "inference": {"maxTokens": 5, "temperature": 0.5}, "response_format": {"type": "object", "properties": {}},
      "metadata": {"k": [1, 2.5, None, True]}, "request_id": "r-1",
      "routing": {"tiers": ["haiku", "sonnet"], "escalate": False, "confidence_threshold": 0.7}},
     {"X-Max-Tier": "sonnet", "X-Max-Cost-USD": "0.5", "X-Model-Tier": "haiku"}),
]


@pytest.mark.parametrize(("body", "headers"), OVERRIDE_CASES)
@pytest.mark.parametrize("path", [mapping.GENERATE, mapping.EXECUTIONS])
def test_the_request_template_builds_the_input_serve_builds(path: str, body: dict[str, Any],
                                                            headers: dict[str, str]) -> None:
    started = _start(path, body, headers)
    machine = "ExpressRouterStateMachine" if path == mapping.GENERATE else "RouterStateMachine"
    assert started["stateMachineArn"] == SUBSTITUTIONS[machine]
    assert json.loads(started["input"]) == mapping.apply_header_overrides(body, headers)
    if path == mapping.EXECUTIONS:
        assert started["name"] == "0f0e-req"  # the execution id GET /v1/executions/{id} reads


def test_a_bad_header_value_reaches_the_schema_check_in_its_field() -> None:
    from model_router.contracts.request import validate_request
    from model_router.errors import InvalidRequest

    for headers, field in (({"X-Max-Cost-USD": "cheap"}, "routing.max_cost_usd"),
                           ({"X-Model-Tier": "gpt"}, "tier"), ({"X-Max-Tier": "mega"}, "routing.max_tier")):
        request = json.loads(_start(mapping.GENERATE, {"prompt": "hi"}, headers)["input"])
        with pytest.raises(InvalidRequest, match=re.escape(field)):
            validate_request(request)


def test_a_body_over_the_limit_becomes_an_input_step_functions_refuses() -> None:
    limit = int(SUBSTITUTIONS["HttpApiMaxRequestBytes"])
    within = json.dumps({"prompt": "x" * (limit - 20)})
    over = json.dumps({"prompt": "x" * limit})
    assert json.loads(_start(mapping.GENERATE, None, raw=within)["input"]) == json.loads(within)
    marker = _start(mapping.GENERATE, None, raw=over, headers={"X-Model-Tier": "haiku"})["input"]
    assert marker == vtl.OVER_LIMIT_INPUT
    with pytest.raises(ValueError):
        json.loads(marker)  # not JSON: InvalidExecutionInput, before any execution starts


# -- the response templates: Step Functions' answer -> status and body, as serve answers -----------------------


def _respond(path: str, method: str, answer: dict[str, Any], pattern: str = "default",
             params: dict[str, str] | None = None) -> Any:
    template = _vtl(_integration(path, method)["responses"][pattern]["responseTemplates"]["application/json"])
    return render(template, body=json.dumps(answer), params=params, substitutions=SUBSTITUTIONS,
                  request_id="0f0e-req")


def test_a_succeeded_sync_execution_answers_its_result() -> None:
    result = {"status": "answered", "answer": 'a "b"\n', "attempts": [{"tier": "haiku"}]}
    rendered = _respond(mapping.GENERATE, "POST", {"status": "SUCCEEDED", "output": json.dumps(result)})
    assert rendered.status is None and rendered.json() == result


CAUSES = ["routing.confidence_threshold: 2 is greater than the maximum of 1",
          json.dumps({"message": "no allowed tier answered", "attempts": [{"tier": "haiku", "error": "x\"y"}]}),
          json.dumps({"tier": "sonnet", "cost_usd": 0.01}), "", "it's a \"cause\" é"]


@pytest.mark.parametrize("error", [*mapping.ERROR_STATUS, "States.TaskFailed", "Lambda.Unknown"])
@pytest.mark.parametrize("cause", CAUSES)
def test_a_failed_sync_execution_answers_the_status_and_body_serve_answers(error: str, cause: str) -> None:
    from model_router_tools.api.server import RouterApi

    rendered = _respond(mapping.GENERATE, "POST", {"status": "FAILED", "error": error, "cause": cause})
    expected = RouterApi._failed(error, cause)
    assert rendered.status == expected.status == mapping.status_for(error)
    assert rendered.json() == expected.body == mapping.error_body(error, cause)
    assert rendered.headers == expected.headers


def test_the_issue_s_mapping() -> None:
    assert [mapping.status_for(e) for e in ("Router.InvalidRequest", "Router.ModelRequestRejected",
                                            "Router.AllModelsFailed")] == [400, 422, 503]
    assert mapping.RETRY_AFTER_SECONDS[503] > 0
    assert mapping.SERVICE_ERRORS["ThrottlingException"][0] == 429


def test_a_timed_out_sync_execution_is_a_504() -> None:
    rendered = _respond(mapping.GENERATE, "POST", {"status": "TIMED_OUT"})
    assert rendered.status == 504 and rendered.json() == mapping.error_body("States.Timeout", None)


@pytest.mark.parametrize(("service_error", "status"), [
    *[(name, status) for name, (status, _) in mapping.SERVICE_ERRORS.items()], ("AccessDeniedException", 500)])
@pytest.mark.parametrize("path", [mapping.GENERATE, mapping.EXECUTIONS])
def test_a_step_functions_api_error_answers_its_status(path: str, service_error: str, status: int) -> None:
    answer = {"__type": f"com.amazonaws.swf.service.v2.model#{service_error}", "message": "m"}
    rendered = _respond(path, "POST", answer, pattern="[45]\\d{2}")
    error = mapping.SERVICE_ERRORS.get(service_error, (500, "Http.IntegrationError"))[1]
    assert (rendered.status, rendered.json()["error"]) == (status, error)
    assert rendered.headers == ({"Retry-After": str(mapping.RETRY_AFTER_SECONDS[status])}
                                if status in mapping.RETRY_AFTER_SECONDS else {})
    if status == 413:
        assert "2048" in rendered.json()["message"]


def test_a_started_execution_answers_202_with_its_id() -> None:
    responses = _integration(mapping.EXECUTIONS, "POST")["responses"]
    assert responses["default"]["statusCode"] == "202"
    rendered = _respond(mapping.EXECUTIONS, "POST", {"executionArn": "arn:...:S:0f0e-req", "startDate": 1.0})
    assert rendered.json() == {"execution_id": "0f0e-req", "status": "RUNNING"}


@pytest.mark.parametrize("described", [
    {"status": "RUNNING"},
    {"status": "SUCCEEDED", "output": json.dumps({"answer": "4", "tier": "haiku"})},
    {"status": "FAILED", "error": "Router.InvalidRequest", "cause": "prompt: must be a string"},
    {"status": "FAILED", "error": "Router.AllModelsFailed", "cause": json.dumps({"message": "none", "attempts": []})},
    {"status": "TIMED_OUT"}, {"status": "ABORTED"},
])
def test_describe_answers_the_execution_as_serve_keeps_it(described: dict[str, Any]) -> None:
    request = _vtl(_integration(mapping.EXECUTION, "GET")["requestTemplates"]["application/json"])
    asked = render(request, params={"id": "0f0e-req"}, substitutions=SUBSTITUTIONS).json()
    assert asked == {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:S:0f0e-req"}
    rendered = _respond(mapping.EXECUTION, "GET", described, params={"id": "0f0e-req"})
    expected: dict[str, Any] = {"execution_id": "0f0e-req", "status": described["status"]}
    if described["status"] == "SUCCEEDED":
        expected["result"] = json.loads(described["output"])
    elif described["status"] != "RUNNING":
        error = described.get("error") or ("States.Timeout" if described["status"] == "TIMED_OUT"
                                           else f"Execution.{described['status']}")
        expected |= mapping.error_body(error, described.get("cause"))
    assert rendered.json() == expected and rendered.status is None


def test_an_id_cannot_leave_the_standard_router_s_executions() -> None:
    request = _vtl(_integration(mapping.EXECUTION, "GET")["requestTemplates"]["application/json"])
    arn = render(request, params={"id": 'x", "executionArn": "arn:other'}, substitutions=SUBSTITUTIONS).json()
    assert list(arn) == ["executionArn"] and arn["executionArn"].startswith(
        "arn:aws:states:us-east-1:123456789012:execution:S:")


def test_the_emulated_escape_is_java_s() -> None:
    assert escape_javascript("a'b\"c\\d/e\n\u00e9\U0001F600\x01") == \
        "a\\'b\\\"c\\\\d\\/e\\n\\u00E9\\uD83D\\uDE00\\u0001"
