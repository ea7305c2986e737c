"""Every JSON log line of every handler says which request and execution it is about, captured from local runs.

The handlers correlate first, before any work: so a line logged while the request is classified, an answer
scored or a model called (by the handler, the logic under it or a library such as the circuit breaker)
carries ``request_id`` and ``execution`` too. The request id is the caller's when the contract accepts it,
else the execution name: an invalid id (huge, or holding anything) is never logged.

To show lines logged inside the logic, the step functions are wrapped (before the engine imports the
handlers) in versions that log one line of their own, then run the real thing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from moto import mock_aws

from model_router.observability import SERVICE
from model_router.providers import reset_providers
from model_router_tools.local.engine import LocalEngine

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

COMPONENTS = {"ClassifierFunction": "classifier", "HaikuInvokerFunction": "invoker",
              "SonnetInvokerFunction": "invoker", "OpusInvokerFunction": "invoker", "ScorerFunction": "scorer",
              "BatchFunction": "batch"}
INSIDE = "inside the step"
# Haiku always throttles and its circuit opens on the first failure: the circuit breaker's own warning is
# logged inside the invoker, and the run falls back to another tier.
FAULTS = {"FAULT_INJECTION": "haiku.throttle=1", "CIRCUIT_BREAKER": "memory", "CIRCUIT_BREAKER_MIN_CALLS": "1",
          "CIRCUIT_BREAKER_COOLDOWN_SECONDS": "3599"}


def log_lines(lines: list[str]) -> list[dict[str, Any]]:
    """The Powertools JSON log lines among a handler's stdout (EMF metric blobs are not log lines)."""
    return [json.loads(line) for line in lines if line.startswith("{") and not line.startswith('{"_aws"')]


@pytest.fixture
def logging_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each step function logs a line of its own, through a child of the service logger, then runs."""
    from model_router.steps import classify, decide, invoke

    step_logger = Logger(service=SERVICE, child=True)

    def logging(name: str, step: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            step_logger.info(INSIDE, extra={"step_function": name})
            return step(*args, **kwargs)
        return run

    for module, name in ((classify, "classify"), (invoke, "invoke_step"), (decide, "score_step"),
                         (decide, "failure_step")):
        monkeypatch.setattr(module, name, logging(name, getattr(module, name)))


@pytest.fixture
def new_engine(logging_steps: None) -> Iterator[Callable[[], LocalEngine]]:
    """Built in the test itself (the engine takes over the stdout the test runs with). A new engine imports
    the handlers afresh: they bind the logging step functions."""
    yield lambda: LocalEngine(env_overrides={"DEFAULT_STRATEGY": "heuristic", "REPLAY_BORROWED_TIERS": "1",
                                             **FAULTS})
    reset_providers()


def run_and_capture(engine: LocalEngine, request: Any, name: str) -> tuple[Any, list[dict[str, Any]]]:
    engine.output.clear()
    result = engine.run(request, name=name)
    return result, log_lines(list(engine.output))


def test_every_log_line_of_a_run_carries_its_request_and_execution(
        new_engine: Callable[[], LocalEngine], answered_records: list[dict[str, Any]]) -> None:
    engine = new_engine()
    prompt = answered_records[0]["prompt"]
    result, lines = run_and_capture(engine, {"prompt": prompt, "request_id": "order-7", "tier": "haiku"}, "run-1")
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    first = result.output["attempts"][0]
    assert (first["tier"], first["error"]["type"]) == ("haiku", "CircuitOpenException")  # its retry found it open
    messages = {line["message"] for line in lines}
    assert {"classified", "model call failed", "circuit opened", "model answered", "decided", INSIDE} <= messages
    assert {line.get("step_function") for line in lines} >= {"classify", "invoke_step", "score_step", "failure_step"}
    for line in lines:
        assert line.get("request_id") == "order-7", line
        assert line.get("execution") == result.execution_arn, line
        assert line.get("component") == COMPONENTS[line["function_name"]], line


HUGE_ID = "x" * 300


@pytest.mark.parametrize(("request_", "logged_as"), [
    ({"prompt": "What is the capital of France?"}, "execution name"),  # no id: the execution name is the id
    ({"prompt": "", "request_id": "order-8"}, "order-8"),  # invalid request, valid id
    ({"prompt": "What is 2+2?", "request_id": HUGE_ID}, "execution name"),  # invalid id: never logged
    ({"prompt": "What is 2+2?", "request_id": 42}, "execution name"),
    (["not", "an", "object"], "execution name"),
    ("just a string", "execution name"),
])
def test_a_request_without_a_usable_id_is_logged_under_its_execution_name(
        new_engine: Callable[[], LocalEngine], request_: Any, logged_as: str) -> None:
    engine = new_engine()
    name = "exec-without-id"
    result, lines = run_and_capture(engine, request_, name)
    assert lines, "the classifier logs at least one line"
    expected = name if logged_as == "execution name" else logged_as
    for line in lines:
        assert (line.get("request_id"), line.get("execution")) == (expected, result.execution_arn), line
    assert HUGE_ID not in "\n".join(engine.output)
    if result.status == "SUCCEEDED":
        assert result.output["request_id"] == expected


def test_all_models_failed_is_logged_under_the_request_too(new_engine: Callable[[], LocalEngine]) -> None:
    engine = new_engine()
    result, lines = run_and_capture(engine, {"prompt": "Not a recorded prompt", "request_id": "r-9"}, "exec-9")
    assert result.error == "Router.AllModelsFailed"
    assert {line["function_name"] for line in lines} >= {"HaikuInvokerFunction", "SonnetInvokerFunction",
                                                        "OpusInvokerFunction", "ScorerFunction"}
    assert all((line["request_id"], line["execution"]) == ("r-9", result.execution_arn) for line in lines)


# -- the batch workflow: the router's lines carry each batch line's request id ------------------------------------

INPUT_BUCKET, RESULTS_BUCKET = "batch-input", "batch-results"


@pytest.fixture
def debug_logs() -> Iterator[None]:
    """The batch function logs its per-line steps at debug."""
    service = logging.getLogger(SERVICE)
    level = service.level
    service.setLevel(logging.DEBUG)
    yield
    service.setLevel(level)


def test_batch_lines_are_logged_under_their_request_ids(
        tmp_path: Path, answered_records: list[dict[str, Any]], debug_logs: None) -> None:
    lines = [json.dumps({"prompt": answered_records[1]["prompt"], "request_id": "order-1"}),
             json.dumps({"prompt": answered_records[2]["prompt"]}),
             '{"prompt": "What is 2+2?", ']
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (INPUT_BUCKET, RESULTS_BUCKET):
            s3.create_bucket(Bucket=bucket)
        put = s3.put_object(Bucket=INPUT_BUCKET, Key="incoming/day.jsonl", Body="\n".join(lines).encode())
        reset_providers()
        engine = LocalEngine(
            state_machine="BatchStateMachine",
            parameters={"BatchInputBucket": INPUT_BUCKET, "BatchResultsBucket": RESULTS_BUCKET},
            env_overrides={"DEFAULT_STRATEGY": "heuristic", "IDEMPOTENCY_STORE": str(tmp_path / "done.sqlite")})
        event = {"detail-type": "Object Created", "source": "aws.s3",
                 "detail": {"bucket": {"name": INPUT_BUCKET},
                            "object": {"key": "incoming/day.jsonl", "etag": put["ETag"].strip('"')}}}
        result, logged = run_and_capture(engine, event, "batch-1")
    reset_providers()
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    ids = {1: "order-1", 2: "day-line-2", 3: "day-line-3"}
    batch = [line for line in logged if line["function_name"] == "BatchFunction"]
    assert {line["step"] for line in batch} == {"locate", "split", "prepare", "record", "finish"}
    for line in batch:
        assert line["component"] == "batch"
        if line["step"] in ("prepare", "record"):
            assert line["request_id"] == ids[line["line"]], line
        if line["step"] != "locate":
            assert line["input"] == "s3://batch-input/incoming/day.jsonl", line
    routed = [line for line in logged if line["function_name"] != "BatchFunction"]
    assert {line["request_id"] for line in routed} == {"order-1", "day-line-2"}  # line 3 is not JSON: not routed
    assert all(line["execution"] == result.execution_arn for line in routed)
    assert all(line["component"] == COMPONENTS[line["function_name"]] for line in routed)
