"""Against a deployed stack (opt-in):

    MODEL_ROUTER_INTEGRATION=1 MODEL_ROUTER_STATE_MACHINE_ARN=arn:... pytest tests/integration

These call real Bedrock models and cost a few cents per run.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

import pytest

from model_router.contracts.request import validate_result

ARN = os.environ.get("MODEL_ROUTER_STATE_MACHINE_ARN", "")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("MODEL_ROUTER_INTEGRATION") != "1" or not ARN,
        reason="opt-in: set MODEL_ROUTER_INTEGRATION=1 and MODEL_ROUTER_STATE_MACHINE_ARN",
    ),
]


def run(request: dict[str, Any]) -> dict[str, Any]:
    import boto3

    sfn = boto3.client("stepfunctions")
    if sfn.describe_state_machine(stateMachineArn=ARN)["type"] == "EXPRESS":
        return dict(sfn.start_sync_execution(stateMachineArn=ARN, input=json.dumps(request)))
    arn = sfn.start_execution(stateMachineArn=ARN, name=uuid.uuid4().hex, input=json.dumps(request))["executionArn"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        out = dict(sfn.describe_execution(executionArn=arn))
        if out["status"] != "RUNNING":
            return out
        time.sleep(2)
    raise TimeoutError(arn)


def test_simple_request_is_answered_by_haiku_with_costs() -> None:
    out = run({"prompt": "What is the capital of France? Answer in one word.", "request_id": "it-simple"})
    assert out["status"] == "SUCCEEDED", out
    result = json.loads(out["output"])
    validate_result(result)
    assert result["tier"] == "haiku"
    assert "paris" in result["answer"].lower()
    attempt = result["attempts"][-1]
    assert attempt["input_tokens"] > 0 and attempt["output_tokens"] > 0 and attempt["cost_usd"] > 0
    assert not attempt.get("tokens_estimated")


def test_invalid_request_fails_before_any_model_call() -> None:
    out = run({"messages": [{"role": "assistant", "content": "hi"}]})
    assert out["status"] == "FAILED"
    assert out["error"] == "Router.InvalidRequest"
    assert "messages[0].role" in out["cause"]
