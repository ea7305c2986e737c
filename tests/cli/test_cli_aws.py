"""`invoke --aws` and `history --aws` against a deployed stack, through a real boto3 Step Functions client with
botocore's Stubber at the edge (nothing leaves the machine), and with no credentials at all: every failure
is one line that says what to set or check, never a botocore traceback."""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from cli_user import isolate_project, run_main

REGION = "eu-west-1"  # the ARN's region; no region is set anywhere else
STATE_MACHINE = f"arn:aws:states:{REGION}:123456789012:stateMachine:RouterStateMachine-abc"
EXECUTION = f"arn:aws:states:{REGION}:123456789012:execution:RouterStateMachine-abc:req-1"
NOW = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
RESULT = {"request_id": "req-1", "status": "answered", "tier": "haiku", "attempts": [], "cost": {}}


@pytest.fixture(autouse=True)
def no_aws_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No region, no credentials, no profile: empty config files, no AWS_* variables, no instance metadata."""
    isolate_project(monkeypatch, tmp_path)
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name in ("config", "credentials"):
        (tmp_path / name).write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def asked_regions() -> list[str]:
    return []


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch, asked_regions: list[str]) -> Iterator[Stubber]:
    """The Step Functions client the command line builds, stubbed; records the region it was built for."""
    from model_router_tools.cli import aws as aws_access

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    client = boto3.session.Session().client("stepfunctions", region_name=REGION)

    def stepfunctions_client(region: str) -> Any:
        asked_regions.append(region)
        return client

    monkeypatch.setattr(aws_access, "stepfunctions_client", stepfunctions_client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _machine(stub: Stubber, kind: str) -> None:
    stub.add_response("describe_state_machine", {
        "stateMachineArn": STATE_MACHINE, "name": "RouterStateMachine-abc", "definition": "{}",
        "roleArn": "arn:aws:iam::123456789012:role/r", "type": kind, "creationDate": NOW},
        {"stateMachineArn": STATE_MACHINE})


def _execution(status: str, **extra: Any) -> dict[str, Any]:
    return {"executionArn": EXECUTION, "stateMachineArn": STATE_MACHINE, "status": status, "startDate": NOW, **extra}


def test_the_region_comes_from_the_state_machine_arn_when_none_is_set(
        stub: Stubber, asked_regions: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    _machine(stub, "EXPRESS")
    stub.add_response("start_sync_execution", {**_execution("SUCCEEDED"), "stopDate": NOW,
                                               "output": json.dumps(RESULT)},
                      {"stateMachineArn": STATE_MACHINE, "input": ANY})
    outcome = run_main(capsys, "invoke", "What is 2+2?", "--aws", "--state-machine-arn", STATE_MACHINE)
    assert outcome.code == 0, outcome.err
    assert json.loads(outcome.out) == RESULT
    assert asked_regions == [REGION]


def test_a_standard_execution_is_started_with_every_flag_in_its_input_and_polled_to_its_end(
        stub: Stubber, capsys: pytest.CaptureFixture[str]) -> None:
    request = {"prompt": "What is 2+2?", "routing": {"strategy": "cascade", "confidence_threshold": 0.9,
                                                     "max_cost_usd": 0.5, "min_tier": "sonnet", "max_tier": "opus"},
               "tier": "sonnet", "request_id": "req-1"}
    _machine(stub, "STANDARD")
    stub.add_response("start_execution", {"executionArn": EXECUTION, "startDate": NOW},
                      {"stateMachineArn": STATE_MACHINE, "name": "req-1", "input": json.dumps(request)})
    stub.add_response("describe_execution", _execution("RUNNING"), {"executionArn": EXECUTION})
    stub.add_response("describe_execution", {**_execution("SUCCEEDED"), "stopDate": NOW,
                                             "output": json.dumps(RESULT)}, {"executionArn": EXECUTION})
    outcome = run_main(capsys, "invoke", "What is 2+2?", "--aws", "--state-machine-arn", STATE_MACHINE,
                       "--region", REGION, "--timeout", "30", "--strategy", "cascade", "--threshold", "0.9",
                       "--max-cost", "0.5", "--min-tier", "sonnet", "--max-tier", "opus", "--tier", "sonnet",
                       "--request-id", "req-1")
    assert outcome.code == 0, outcome.err
    assert json.loads(outcome.out) == RESULT
    assert outcome.err.strip() == f"started {EXECUTION}"


def test_an_execution_still_running_at_the_timeout_says_where_to_follow_it(
        stub: Stubber, capsys: pytest.CaptureFixture[str]) -> None:
    _machine(stub, "STANDARD")
    stub.add_response("start_execution", {"executionArn": EXECUTION, "startDate": NOW},
                      {"stateMachineArn": STATE_MACHINE, "name": ANY, "input": ANY})
    stub.add_response("describe_execution", _execution("RUNNING"), {"executionArn": EXECUTION})
    stub.add_response("describe_execution", _execution("RUNNING"), {"executionArn": EXECUTION})
    # Two looks: at the start and at the deadline, half a second later.
    outcome = run_main(capsys, "invoke", "hi", "--aws", "--state-machine-arn", STATE_MACHINE, "--timeout", "0.5")
    assert outcome.code == 1
    last = outcome.err.strip().splitlines()[-1]
    assert last.startswith(f"error: --timeout: {EXECUTION} is still RUNNING after 0.5 s")
    assert f"model-router history {EXECUTION} --aws" in last


def test_a_failed_execution_is_one_line_with_its_error_and_invalid_requests_exit_2(
        stub: Stubber, capsys: pytest.CaptureFixture[str]) -> None:
    _machine(stub, "EXPRESS")
    stub.add_response("start_sync_execution", {**_execution("FAILED"), "stopDate": NOW,
                                               "error": "Router.InvalidRequest",
                                               "cause": "routing.max_cost_usd: 0.0001 is below one Haiku call"},
                      {"stateMachineArn": STATE_MACHINE, "input": ANY})
    outcome = run_main(capsys, "invoke", "hi", "--aws", "--state-machine-arn", STATE_MACHINE, "--max-cost", "0.0001")
    assert outcome.code == 2
    assert outcome.error_line() == ("error: execution FAILED: Router.InvalidRequest: routing.max_cost_usd: 0.0001 is "
                                    "below one Haiku call")


@pytest.mark.parametrize(("operation", "code", "hint"), [
    ("describe_state_machine", "AccessDeniedException", "check AWS_PROFILE"),
    ("describe_state_machine", "StateMachineDoesNotExist", "check --state-machine-arn"),
    ("describe_state_machine", "UnrecognizedClientException", "AWS_ACCESS_KEY_ID"),
    ("start_execution", "ExecutionAlreadyExists", "pass another --request-id"),
])
def test_an_aws_error_is_one_line_that_says_what_to_check(
        stub: Stubber, capsys: pytest.CaptureFixture[str], operation: str, code: str, hint: str) -> None:
    if operation == "start_execution":
        _machine(stub, "STANDARD")
    stub.add_client_error(operation, service_error_code=code, service_message=f"{code} (from AWS)",
                          http_status_code=400)
    outcome = run_main(capsys, "invoke", "hi", "--aws", "--state-machine-arn", STATE_MACHINE, "--request-id", "r1")
    assert outcome.code == 2
    line = outcome.err.strip().splitlines()[-1]
    assert "Traceback" not in outcome.err
    assert line.startswith("error: invoke --aws: ") and f"{code}: {code} (from AWS)" in line and hint in line


@pytest.mark.parametrize("region_set", [False, True])
def test_without_credentials_the_user_is_told_what_to_set(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], region_set: bool) -> None:
    if region_set:
        monkeypatch.setenv("AWS_REGION", REGION)
    outcome = run_main(capsys, "invoke", "hi", "--aws", "--state-machine-arn", STATE_MACHINE)
    assert outcome.code == 2
    line = outcome.error_line()
    assert line.startswith("error: invoke --aws: no usable AWS credentials") and "AWS_PROFILE" in line


def test_an_unknown_profile_is_named(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    outcome = run_main(capsys, "invoke", "hi", "--aws", "--state-machine-arn", STATE_MACHINE)
    assert outcome.code == 2
    assert "no-such-profile" in outcome.error_line()


@pytest.mark.parametrize("arn", ["RouterStateMachine", "arn:aws:states:us-east-1:123:stateMachine:R",
                                 EXECUTION, "arn:aws:lambda:us-east-1:123456789012:function:Classify"])
def test_a_malformed_state_machine_arn_is_refused_before_any_call(
        capsys: pytest.CaptureFixture[str], arn: str) -> None:
    outcome = run_main(capsys, "invoke", "hi", "--aws", "--state-machine-arn", arn)
    assert outcome.code == 2
    line = outcome.error_line()
    assert line.startswith(f"error: invoke --aws: --state-machine-arn {arn!r} is not a Step Functions ARN")
    assert "arn:aws:states:REGION:ACCOUNT:stateMachine:NAME" in line


def test_a_region_other_than_the_arns_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_main(capsys, "invoke", "hi", "--aws", "--state-machine-arn", STATE_MACHINE, "--region", "us-east-1")
    assert outcome.code == 2
    assert f"--region us-east-1 but --state-machine-arn is in {REGION}" in outcome.error_line()


def test_aws_without_a_state_machine_arn_names_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_main(capsys, "invoke", "hi", "--aws")
    assert outcome.code == 2
    assert outcome.error_line().startswith("error: --aws needs --state-machine-arn")


# -- history --aws --------------------------------------------------------------------------------------------


def test_history_of_an_execution_that_does_not_exist_is_one_line(
        stub: Stubber, asked_regions: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    stub.add_client_error("describe_execution", service_error_code="ExecutionDoesNotExist",
                          service_message=f"Execution Does Not Exist: '{EXECUTION}'", http_status_code=400,
                          expected_params={"executionArn": EXECUTION})
    outcome = run_main(capsys, "history", "req-1", "--aws", "--state-machine-arn", STATE_MACHINE)
    assert outcome.code == 2
    line = outcome.error_line()
    assert line.startswith("error: history --aws: DescribeExecution: ExecutionDoesNotExist")
    assert asked_regions == [REGION]


def test_history_without_credentials_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_main(capsys, "history", EXECUTION, "--aws")
    assert outcome.code == 2
    assert "AWS_PROFILE" in outcome.error_line()


@pytest.mark.parametrize(("argv", "problem"), [
    (["history", "--aws"], "give the execution ARN"),
    (["history", "req-1", "--aws"], "give the execution ARN"),
    (["history", "req-1", "--aws", "--state-machine-arn", "nope"], "--state-machine-arn 'nope' is not"),
])
def test_history_aws_without_what_it_needs_says_what_to_give(
        capsys: pytest.CaptureFixture[str], argv: list[str], problem: str) -> None:
    outcome = run_main(capsys, *argv)
    assert outcome.code == 2
    assert problem in outcome.error_line()
