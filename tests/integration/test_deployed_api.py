"""Against a deployed HTTP API (opt-in; a stack deployed with HttpApi=true and HttpApiAuth=IAM):

    MODEL_ROUTER_INTEGRATION=1 MODEL_ROUTER_API_URL=https://ID.execute-api.REGION.amazonaws.com/api \
        pytest tests/integration

Requests are SigV4-signed with the caller's credentials (execute-api:Invoke on the API). What the offline tests
cannot show runs here: the VTL mapping templates on API Gateway itself, the status override from a failed
execution, the Retry-After header and the size limit. These call real Bedrock models and cost a few cents.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

URL = os.environ.get("MODEL_ROUTER_API_URL", "").rstrip("/")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("MODEL_ROUTER_INTEGRATION") != "1" or not URL,
        reason="opt-in: set MODEL_ROUTER_INTEGRATION=1 and MODEL_ROUTER_API_URL",
    ),
]


def call(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
         raw: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    """(status, headers, parsed JSON body) of a SigV4-signed request."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    session = botocore.session.get_session()
    region = URL.split(".execute-api.", 1)[1].split(".", 1)[0]
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = AWSRequest(method=method, url=URL + path, data=data,
                         headers={"Content-Type": "application/json", **(headers or {})})
    SigV4Auth(session.get_credentials().get_frozen_credentials(), "execute-api", region).add_auth(request)
    prepared = request.prepare()
    http = urllib.request.Request(prepared.url, data=prepared.body, method=method, headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(http, timeout=120) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


def test_generate_answers_synchronously_with_costs() -> None:
    status, _, result = call("POST", "/v1/generate", {"prompt": "What is the capital of France? One word."})
    assert status == 200, result
    assert "paris" in result["answer"].lower() and result["cost"]["models_usd"] > 0


def test_an_invalid_request_is_400_naming_the_field() -> None:
    status, _, body = call("POST", "/v1/generate", {"prompt": "hi", "routing": {"confidence_threshold": 2}})
    assert status == 400 and body["error"] == "Router.InvalidRequest"
    assert "routing.confidence_threshold" in body["message"]


def test_the_tier_header_overrides_the_body() -> None:
    status, _, result = call("POST", "/v1/generate", {"prompt": "Say hello.", "tier": "opus"},
                             headers={"X-Model-Tier": "haiku"})
    assert status == 200 and [a["tier"] for a in result["attempts"]] == ["haiku"]


def test_an_oversized_body_is_413_before_any_execution() -> None:
    status, _, body = call("POST", "/v1/generate", raw=b'{"prompt": "' + b"x" * 300_000 + b'"}')
    assert status == 413, body


def test_an_execution_is_started_then_read_back() -> None:
    status, _, started = call("POST", "/v1/executions", {"prompt": "What is 2 + 2?"})
    assert status == 202, started
    assert started["status"] == "RUNNING"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status, _, described = call("GET", f"/v1/executions/{started['execution_id']}")
        assert status == 200, described
        if described["status"] != "RUNNING":
            break
        time.sleep(2)
    assert described["status"] == "SUCCEEDED" and described["result"]["answer"]
