"""The HTTP API's OpenAPI document, ``api/openapi.yaml``: what clients read, and what API Gateway deploys.

The deployed part lives in ``x-amazon-apigateway-*`` extensions (OpenAPI tools ignore them): the Step Functions
integrations, their VTL mapping templates (:mod:`model_router_tools.api.vtl`, generated from the rules in
:mod:`model_router_tools.api.mapping`), the request validator, the gateway responses and the authorizer. Their
CloudFormation functions (``Fn::Sub``, ``Fn::If``) are resolved when template.yaml includes the file
(``AWS::Include``). Never edited by hand: ``python -m model_router_tools.api.openapi`` rewrites it, and
tests/infra/test_api_template.py fails when it has drifted.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from model_router_tools.api import mapping, vtl

PROJECT_ROOT = Path(__file__).resolve().parents[3]
OPENAPI_PATH = PROJECT_ROOT / "api" / "openapi.yaml"
AUTH_SCHEME = "router_auth"
ERROR_RESPONSES = {
    "400": "Router.InvalidRequest: the message names the field (also a body that is not a JSON object)",
    "403": "not signed or not allowed (SigV4), or no such route or method (API Gateway cannot tell these apart)",
    "413": "Http.PayloadTooLarge: the body is over HttpApiMaxRequestBytes",
    "422": "Router.ModelRequestRejected: the model provider refused the request itself; no tier would accept it",
    "429": "Http.Throttled: over the stage's throttle rate or burst, or Step Functions throttled the start "
           "(Retry-After)",
    "502": "Router.ScoringFailed: a model answered but scoring it failed",
    "503": "Router.AllModelsFailed: every allowed tier failed; detail lists every attempt (Retry-After)",
    "504": "States.Timeout",
    "500": "any other failure, named in error",
}


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def _integration(action: str, request: str, responses: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "aws",
        "httpMethod": "POST",
        "uri": _sub(f"arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}:states:action/{action}"),
        "credentials": {"Fn::GetAtt": ["RouterApiRole", "Arn"]},
        # Only JSON bodies reach Step Functions (415 otherwise), through the request template.
        "passthroughBehavior": "never",
        "requestTemplates": {"application/json": _sub(request)},
        "responses": {
            **responses,
            # A Step Functions API error (the pattern matches the integration's HTTP status).
            "[45]\\d{2}": {"statusCode": "500", "responseTemplates": {
                "application/json": _sub(vtl.error_response_template())}},
        },
    }


def _json(schema_ref: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}}


def _errors(*statuses: str) -> dict[str, Any]:
    return {status: _json("Error", ERROR_RESPONSES[status]) for status in statuses}


def _override_headers() -> list[dict[str, Any]]:
    field = {("tier",): "tier", ("routing", "max_tier"): "routing.max_tier",
             ("routing", "max_cost_usd"): "routing.max_cost_usd"}
    return [{"name": rule.header, "in": "header", "required": False,
             "description": f"Overrides the body's {field.get(rule.path, '.'.join(rule.path))}; the result is "
                            "validated as the body is",
             "schema": {"type": "number" if rule.number else "string"}} for rule in mapping.HEADER_OVERRIDES]


def _gateway_response(status: int, error: str, retry_after: int | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "statusCode": status,
        # Gateway responses have no $util: messageString is already a quoted JSON string.
        "responseTemplates": {"application/json": f'{{"error": "{error}", "message": $context.error.messageString}}'},
    }
    if retry_after is not None:
        response["responseParameters"] = {"gatewayresponse.header.Retry-After": f"'{retry_after}'"}
    return response


def build_document() -> dict[str, Any]:
    """The document as a dict (CloudFormation functions and all)."""
    security: list[dict[str, list[str]]] = [{AUTH_SCHEME: []}]
    generate = {
        "operationId": "generate",
        "summary": "Route one request on the Express router and wait for the result (StartSyncExecution)",
        "parameters": _override_headers(),
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Request"}}}},
        "responses": {"200": _json("Result", "the result (result.schema.json)"),
                      **_errors("400", "403", "413", "422", "429", "502", "503", "504", "500")},
        "security": security,
        "x-amazon-apigateway-request-validator": "body",
        "x-amazon-apigateway-integration": _integration(
            "StartSyncExecution", vtl.request_template(vtl.EXPRESS_ROUTER),
            {"default": {"statusCode": "200", "responseTemplates": {
                "application/json": _sub(vtl.generate_response_template())}}}),
    }
    start = {
        "operationId": "startExecution",
        "summary": "Start one request on the Standard router (StartExecution); poll GET /v1/executions/{id}",
        "parameters": _override_headers(),
        "requestBody": generate["requestBody"],
        "responses": {"202": _json("Started", "started: the execution id to poll"),
                      **_errors("400", "403", "413", "429", "500")},
        "security": security,
        "x-amazon-apigateway-request-validator": "body",
        "x-amazon-apigateway-integration": _integration(
            "StartExecution", vtl.request_template(vtl.STANDARD_ROUTER, name="$context.requestId"),
            {"default": {"statusCode": "202", "responseTemplates": {
                "application/json": _sub(vtl.start_response_template())}}}),
    }
    describe = {
        "operationId": "describeExecution",
        "summary": "An execution of the Standard router: its status, and its result or error",
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": _json("Execution", "the execution's status, and its result or error"),
                      **_errors("403", "429", "500"),
                      "404": _json("Error", "Http.NotFound: no such execution")},
        "security": security,
        "x-amazon-apigateway-integration": _integration(
            "DescribeExecution", vtl.describe_request_template(),
            {"default": {"statusCode": "200", "responseTemplates": {
                "application/json": _sub(vtl.describe_response_template())}}}),
    }
    error = {"type": "object", "required": ["error", "message"], "properties": {
        "error": {"type": "string",
                  "description": "Router.InvalidRequest, Router.AllModelsFailed, Http.Throttled, ..."},
        "message": {"type": "string", "description": "for Router.InvalidRequest, names the field"},
        "detail": {"type": "object", "description": "the execution's cause, when it is a JSON object"}}}
    return {
        "openapi": "3.0.1",
        "info": {
            "title": "model-router",
            "version": "1.0",
            "description": "Routes one LLM request to the cheapest Claude tier likely to answer it well. The request "
                           "and result are the router's contract (docs/contract.md); errors are "
                           '{"error": NAME, "message": TEXT}. Generated by model_router_tools.api.openapi.',
        },
        "paths": {mapping.GENERATE: {"post": generate}, mapping.EXECUTIONS: {"post": start},
                  mapping.EXECUTION: {"get": describe}},
        "components": {
            "schemas": {
                # Loose on purpose: API Gateway models are JSON Schema draft 4; the router checks the contract
                # (request.schema.json) and names the field.
                "Request": {"type": "object", "description": "request.schema.json (prompt or messages, ...)"},
                "Result": {"type": "object", "description": "result.schema.json (answer, tier, attempts, cost)"},
                "Started": {"type": "object", "required": ["execution_id", "status"], "properties": {
                    "execution_id": {"type": "string"}, "status": {"type": "string"}}},
                "Execution": {"type": "object", "required": ["execution_id", "status"], "properties": {
                    "execution_id": {"type": "string"},
                    "status": {"type": "string", "description": "RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED"},
                    "result": {"type": "object"}, "error": {"type": "string"}, "message": {"type": "string"},
                    "detail": {"type": "object"}}},
                "Error": error,
            },
            "securitySchemes": {AUTH_SCHEME: {
                # SigV4 (IAM) by default; with HttpApiAuth=JWT, Cognito user pool tokens. Both travel in Authorization.
                "type": "apiKey", "name": "Authorization", "in": "header",
                "x-amazon-apigateway-authtype": {"Fn::If": ["HttpApiJwtAuth", "cognito_user_pools", "awsSigv4"]},
                "x-amazon-apigateway-authorizer": {"Fn::If": [
                    "HttpApiJwtAuth", {"type": "cognito_user_pools", "providerARNs": [{"Ref": "HttpApiUserPoolArn"}]},
                    {"Ref": "AWS::NoValue"}]},
            }},
        },
        "x-amazon-apigateway-request-validators": {
            "body": {"validateRequestBody": True, "validateRequestParameters": False}},
        "x-amazon-apigateway-gateway-responses": {
            "BAD_REQUEST_BODY": _gateway_response(400, mapping.INVALID_BODY),
            "THROTTLED": _gateway_response(429, mapping.THROTTLED, mapping.RETRY_AFTER_SECONDS[429]),
            "REQUEST_TOO_LARGE": _gateway_response(413, mapping.PAYLOAD_TOO_LARGE),
            "DEFAULT_4XX": _gateway_response(400, "$context.error.responseType") | {"statusCode": None},
            "DEFAULT_5XX": _gateway_response(500, "$context.error.responseType") | {"statusCode": None},
        },
    }


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


class _Dumper(yaml.SafeDumper):
    """No anchors or aliases; multi-line strings (the VTL) as literal blocks, readable as written."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_Dumper.add_representer(str, _str)


def render() -> str:
    header = ("# Generated by `python -m model_router_tools.api.openapi` from src/model_router_tools/api/: "
              "do not edit.\n"
              "# The HTTP API (docs/api.md); template.yaml includes it as RouterApi's definition.\n")
    body = yaml.dump(_drop_none(build_document()), Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)
    return header + body


def main() -> int:
    OPENAPI_PATH.parent.mkdir(exist_ok=True)
    OPENAPI_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {OPENAPI_PATH.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
