"""The HTTP API's rules, as data: routes, error name -> HTTP status, header overrides, the error body.

Both fronts read these: ``api/openapi.yaml`` (the deployed REST API's VTL mapping templates, generated from this
module by :mod:`model_router_tools.api.openapi`) and ``model-router serve`` (:mod:`model_router_tools.api.server`).
A rule changes here and nowhere else; tests/unit/test_api_mapping.py renders the generated VTL and checks it
agrees with the Python below on the same cases.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

# -- routes ------------------------------------------------------------------------------------------------
GENERATE = "/v1/generate"  # POST: the Express router, synchronously (StartSyncExecution)
EXECUTIONS = "/v1/executions"  # POST: the Standard router, started (StartExecution) -> 202 and the execution id
EXECUTION = "/v1/executions/{id}"  # GET: that execution's status and result (DescribeExecution)
ROUTES: dict[str, tuple[str, ...]] = {GENERATE: ("POST",), EXECUTIONS: ("POST",), EXECUTION: ("GET",)}

# The default request-body limit, for the template's HttpApiMaxRequestBytes and `serve --max-request-bytes`.
# The router refuses a prompt over 120 KiB (contracts/request.py); this leaves room for the other fields, and
# stays well under Step Functions' 256 KiB input limit.
DEFAULT_MAX_REQUEST_BYTES = 131_072
# Throttling defaults, for the template's HttpApiThrottleRate / HttpApiThrottleBurst and serve's flags
# (requests per second, and the bucket a burst may drain).
DEFAULT_THROTTLE_RATE = 50
DEFAULT_THROTTLE_BURST = 100

# -- errors ------------------------------------------------------------------------------------------------
# A failed execution's error name -> HTTP status. Anything not listed is a 500 that still names the error.
ERROR_STATUS: dict[str, int] = {
    "Router.InvalidRequest": 400,  # the cause names the field
    "Router.ModelRequestRejected": 422,  # Bedrock refused the request itself (ValidationException): no tier would do
    "Router.AllModelsFailed": 503,  # every allowed tier failed (throttled, 5xx, timeouts): try again later
    "Router.ScoringFailed": 502,  # a model answered but the scorer crashed: a fault behind the gateway
    "States.Timeout": 504,
}
# Seconds a client should wait after a 503 or a 429: the circuit breaker's default cooldown, the time a failing
# tier gets no traffic (CircuitBreakerCooldownSeconds).
RETRY_AFTER_SECONDS: dict[int, int] = {503: 30, 429: 1}
INTERNAL_STATUS = 500

# Errors of the HTTP layer itself (not of an execution), in the same body shape.
THROTTLED = "Http.Throttled"  # 429: over the throttle rate / burst (API Gateway's stage throttling)
PAYLOAD_TOO_LARGE = "Http.PayloadTooLarge"  # 413: the body is over the limit
NOT_FOUND = "Http.NotFound"  # 404: no such route, or no such execution
METHOD_NOT_ALLOWED = "Http.MethodNotAllowed"  # 405 (serve; API Gateway answers 403 for an unknown method or path)
INVALID_BODY = "Router.InvalidRequest"  # 400: a body that is not a JSON object never starts an execution
# Step Functions API errors a start can meet, -> the HTTP error they become.
SERVICE_ERRORS: dict[str, tuple[int, str]] = {
    "ThrottlingException": (429, THROTTLED),
    "ExecutionLimitExceeded": (429, THROTTLED),
    "ExecutionDoesNotExist": (404, NOT_FOUND),
    "InvalidArn": (404, NOT_FOUND),
    # Only the request template's over-the-limit marker makes the input invalid (the body was checked as JSON).
    "InvalidExecutionInput": (413, PAYLOAD_TOO_LARGE),
}


def status_for(error: str | None) -> int:
    """The HTTP status of a failed execution's error."""
    return ERROR_STATUS.get(error or "", INTERNAL_STATUS)


def error_body(error: str, cause: str | None) -> dict[str, Any]:
    """The one error shape: ``{"error": NAME, "message": TEXT}``, plus ``detail`` when the cause is a JSON object
    (Router.AllModelsFailed's cause lists every attempt). ``message`` is the cause's own message, else its text,
    else the error name."""
    cause = cause or ""
    if cause.startswith("{"):
        try:
            detail = json.loads(cause)
        except ValueError:
            detail = None
        if isinstance(detail, dict):
            message = detail.get("message")
            return {"error": error, "message": message if isinstance(message, str) and message else error,
                    "detail": detail}
    return {"error": error, "message": cause or error}


# -- header overrides --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HeaderOverride:
    header: str
    path: tuple[str, ...]  # where in the request it lands
    number: bool = False  # a number when it reads as one; else the text, for the schema to refuse naming the field


HEADER_OVERRIDES = (
    HeaderOverride("X-Model-Tier", ("tier",)),
    HeaderOverride("X-Max-Tier", ("routing", "max_tier")),
    HeaderOverride("X-Max-Cost-USD", ("routing", "max_cost_usd"), number=True),
)
# What reads as a number in X-Max-Cost-USD (Java's String.matches in the VTL, re.fullmatch here).
NUMBER_PATTERN = r"[0-9]{1,6}(\.[0-9]{1,12})?"


@cache
def request_fields() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The request's top-level and routing field names, from request.schema.json (both closed objects)."""
    from model_router.contracts.request import schema

    request = schema("request")
    return tuple(request["properties"]), tuple(request["properties"]["routing"]["properties"])


def header_value(headers: Any, name: str) -> str:
    """A header's value, trimmed; "" when absent (API Gateway's ``$input.params`` reads an absent one as "")."""
    value = headers.get(name)
    return value.strip() if isinstance(value, str) else ""


def apply_header_overrides(body: Any, headers: Any) -> Any:
    """The request the router runs: ``body`` with the override headers' values in their fields.

    The body passes unchanged when no override header is set, when it is not an object, when it or its
    ``routing`` has a field the schema does not know, or when ``routing`` is not an object: the router's schema
    check then names the problem, exactly as for a body sent without headers. The overridden request goes
    through the same schema check, so a bad header value fails naming its field (``tier: 'gpt' is not one of
    ...``)."""
    values = [(rule, header_value(headers, rule.header)) for rule in HEADER_OVERRIDES]
    values = [(rule, value) for rule, value in values if value]
    if not values or not isinstance(body, dict):
        return body
    top, routing_fields = request_fields()
    routing = body.get("routing", {})
    if any(key not in top for key in body) or not isinstance(routing, dict) \
            or any(key not in routing_fields for key in routing):
        return body
    result = {**body}
    for rule, text in values:
        value: Any = text
        if rule.number and re.fullmatch(NUMBER_PATTERN, text):
            value = json.loads(text)
        if len(rule.path) == 1:
            result[rule.path[0]] = value
        else:
            result[rule.path[0]] = {**result.get(rule.path[0], {}), rule.path[1]: value}
    return result
