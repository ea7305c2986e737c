"""`model-router history`: the per-state timeline of an execution that fell back and escalated, from a local
run kept on disk and from AWS (GetExecutionHistory through a real boto3 client, Stubber at the edge).

Expectations come from the ASL (state names, the Retry policy on ThrottlingException) and from the
execution's own result, not from a previous run of the timeline code.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from model_router_tools.cli.aws import AwsError
from model_router_tools.cli.history import build_timeline, fetch_aws
from model_router_tools.cli.main import main
from model_router_tools.local.engine import ExecutionResult, LocalEngine
from model_router_tools.local.executions import ExecutionStore

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

ASL = json.loads((Path(__file__).resolve().parents[2] / "statemachine" / "router.asl.json").read_text())
THROTTLE_RETRIES = next(rule["MaxAttempts"] for rule in ASL["States"]["Invoke Haiku"]["Retry"]
                        if "ThrottlingException" in rule["ErrorEquals"])
# Haiku throttled on every call (retries exhausted, caught, fall back to Sonnet); Sonnet's answer cut short
# (scores low, escalate to Opus).
FAULTS = "haiku.throttle=1,sonnet.truncated=1"
EXPECTED_PATH = [
    "Classify Request", "Route By Complexity",
    "Invoke Haiku", "Record Failed Attempt", "Fall Back Or Fail?",
    "Invoke Sonnet", "Score Answer", "Confident Enough?",
    "Invoke Opus", "Score Answer", "Confident Enough?",
    "Shadow This Request?", "Build Result",
]


@pytest.fixture
def request_(answered_records: list[dict[str, Any]]) -> dict[str, Any]:
    record = answered_records[0]
    return {"prompt": record["prompt"], "request_id": record["id"], "tier": "haiku"}


@pytest.fixture
def store(tmp_path: Path) -> ExecutionStore:
    return ExecutionStore(tmp_path / "executions", keep=5)


@pytest.fixture
def run(engine_with: Callable[..., LocalEngine], store: ExecutionStore,
        request_: dict[str, Any]) -> ExecutionResult:
    engine = engine_with(FAULT_INJECTION=FAULTS)
    engine.history = store
    result = engine.run(request_, name="fell-back-and-escalated")
    assert result.status == "SUCCEEDED", result.cause
    return result


def test_timeline_of_a_run_that_fell_back_and_escalated(run: ExecutionResult, store: ExecutionStore) -> None:
    timeline = build_timeline(store.load("fell-back-and-escalated"))
    assert timeline.status == "SUCCEEDED"
    assert timeline.path == EXPECTED_PATH == run.states_entered
    haiku = timeline.visits[2]
    assert haiku.calls == 1 + THROTTLE_RETRIES and haiku.retries == THROTTLE_RETRIES
    assert [e["error"] for e in haiku.errors] == ["ThrottlingException"] * (1 + THROTTLE_RETRIES)
    assert haiku.caught and haiku.next == "Record Failed Attempt"
    assert "caught ThrottlingException" in haiku.summary
    assert "fall back to Sonnet" in timeline.visits[3].summary
    sonnet, scored = timeline.visits[5], timeline.visits[6]
    assert not sonnet.errors and not sonnet.caught and "stop max_tokens" in sonnet.summary
    assert scored.summary.startswith("sonnet confidence") and "escalate" in scored.summary
    assert timeline.visits[7].summary == "→ Invoke Opus"
    assert "answered by opus" in timeline.visits[-1].summary
    # The attempt records are the result's; every state has entered <= exited, in order.
    assert timeline.attempts == run.output["attempts"]
    assert len(timeline.retry_waits_s) == THROTTLE_RETRIES
    for visit, following in zip(timeline.visits, timeline.visits[1:], strict=False):
        assert visit.exited is not None and visit.entered <= visit.exited <= following.entered


def test_history_command_prints_the_story_without_prompts(run: ExecutionResult, store: ExecutionStore,
                                                          request_: dict[str, Any],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "--history-dir", str(store.directory)]) == 0  # the most recent run
    out = capsys.readouterr().out
    for state in set(EXPECTED_PATH):
        assert state in out
    assert "ThrottlingException (caught)" in out and "escalated" in out and "accepted" in out
    prompt_words = request_["prompt"][:40]
    assert prompt_words not in out and run.output["answer"][:40] not in out

    assert main(["history", run.name, "--data", "--history-dir", str(store.directory)]) == 0
    assert json.dumps(request_["prompt"])[1:41] in capsys.readouterr().out  # --data shows the state data

    assert main(["history", run.execution_arn, "--json", "--history-dir", str(store.directory)]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in as_json["states"]] == EXPECTED_PATH
    assert as_json["states"][2]["retries"] == THROTTLE_RETRIES and "input" not in as_json["states"][0]


def test_history_of_a_failed_execution_reads_the_attempts_from_the_cause(
        engine_with: Callable[..., LocalEngine], store: ExecutionStore, request_: dict[str, Any]) -> None:
    engine = engine_with(FAULT_INJECTION="malformed=1")
    engine.history = store
    result = engine.run(request_, name="all-failed")
    timeline = build_timeline(store.load("all-failed"))
    assert timeline.status == "FAILED" and timeline.error == "Router.AllModelsFailed" == result.error
    assert timeline.path[-1] == "All Models Failed" and timeline.visits[-1].kind == "Fail"
    assert [a["outcome"] for a in timeline.attempts] == ["failed"] * 3
    assert "no allowed tier answered" in timeline.visits[-1].summary


def test_store_keeps_the_last_n_and_names_what_is_missing(tmp_path: Path) -> None:
    store = ExecutionStore(tmp_path, keep=3)
    for i in range(5):
        path = store.save({"name": f"run-{i}", "executionArn": f"arn:x:run-{i}", "status": "SUCCEEDED", "events": []})
        stamp = 1_700_000_000 + i  # distinct mtimes, whatever the file system's resolution
        os.utime(path, (stamp, stamp))
    store._prune()
    assert [r["name"] for r in store.recent()] == ["run-4", "run-3", "run-2"]
    assert store.load()["name"] == "run-4"
    with pytest.raises(LookupError, match="run-0"):
        store.load("run-0")
    with pytest.raises(LookupError, match="no local runs"):
        ExecutionStore(tmp_path / "empty").load()


def _api_event(event: dict[str, Any]) -> dict[str, Any]:
    """A stored local event as the Step Functions API returns it (timestamps as datetimes)."""
    out = dict(event)
    out["timestamp"] = datetime.datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00"))
    return out


def test_aws_history_reads_every_page(run: ExecutionResult, store: ExecutionStore) -> None:
    record = store.load(run.name)
    events = [_api_event(e) for e in record["events"]]
    arn = "arn:aws:states:us-east-1:123456789012:execution:RouterStateMachine-abc:fell-back-and-escalated"
    client = boto3.client("stepfunctions", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response("describe_execution", {
            "executionArn": arn, "stateMachineArn": arn.replace(":execution:", ":stateMachine:").rsplit(":", 1)[0],
            "name": run.name, "status": "SUCCEEDED", "startDate": events[0]["timestamp"],
            "stopDate": events[-1]["timestamp"], "output": json.dumps(run.output)}, {"executionArn": arn})
        half = len(events) // 2
        stub.add_response("get_execution_history", {"events": events[:half], "nextToken": "page-2"},
                          {"executionArn": arn, "includeExecutionData": True})
        stub.add_response("get_execution_history", {"events": events[half:]},
                          {"executionArn": arn, "includeExecutionData": True, "nextToken": "page-2"})
        fetched = fetch_aws(run.name, state_machine_arn=arn.replace(":execution:", ":stateMachine:").rsplit(":", 1)[0],
                            client=client)
        stub.assert_no_pending_responses()
    timeline = build_timeline(fetched)
    assert timeline.path == EXPECTED_PATH
    assert timeline.visits[2].caught and timeline.visits[2].retries == THROTTLE_RETRIES
    assert timeline.attempts == run.output["attempts"]


def test_express_executions_have_no_history_api() -> None:
    with pytest.raises(AwsError, match="CloudWatch Logs"):
        fetch_aws("arn:aws:states:us-east-1:123456789012:express:Router:run-1:abc", client=object())


def test_an_unwritable_store_costs_the_history_not_the_run(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.warns(UserWarning, match="execution history not kept"):
        assert ExecutionStore(blocker / "executions").save({"name": "x", "status": "SUCCEEDED", "events": []}) is None
