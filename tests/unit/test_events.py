"""The typed inputs the handlers parse their events into (model_router.steps.events).

Good events have the shapes the state machines build (statemachine/router.asl.json, batch.asl.json); every
field a handler reads, missing or of the wrong type, is one MalformedEvent naming that field by its path.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from model_router.settings import Settings
from model_router.steps.classify import classify
from model_router.steps.events import (
    BatchFinishEvent,
    BatchLocateEvent,
    BatchPrepareEvent,
    BatchRecordEvent,
    BatchSplitEvent,
    ClassifierEvent,
    InvokerEvent,
    MalformedEvent,
    ScorerEvent,
    batch_log_keys,
    parse_batch_event,
)

ROOT = Path(__file__).resolve().parents[2]
EXECUTION_ID = "arn:aws:states:us-east-1:123456789012:execution:RouterStateMachine:exec-1"
STARTED = "2026-01-05T10:00:00.000Z"
MISSING = object()


def edited(event: dict[str, Any], path: str, value: Any = MISSING) -> dict[str, Any]:
    """A copy of ``event`` with the field at the dotted ``path`` removed (or set to ``value``)."""
    event = copy.deepcopy(event)
    *parents, key = path.split(".")
    node = event
    for name in parents:
        node = node[name]
    if value is MISSING:
        del node[key]
    else:
        node[key] = value
    return event


def malformed(parse: Any, event: Any) -> MalformedEvent:
    with pytest.raises(MalformedEvent) as raised:
        parse(event)
    return raised.value


def test_malformed_event_is_a_value_error_no_retry_of_either_workflow_matches() -> None:
    assert issubclass(MalformedEvent, ValueError)
    error = MalformedEvent("state.request_id", "missing")
    assert (error.field, str(error)) == ("state.request_id", "state.request_id: missing")
    for name in ("router.asl.json", "batch.asl.json"):
        text = (ROOT / "statemachine" / name).read_text(encoding="utf-8")
        retried = {error for retry in _retries(json.loads(text)) for error in retry["ErrorEquals"]}
        assert not retried & {"MalformedEvent", "ValueError", "States.ALL", "States.TaskFailed"}, name


def _retries(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        return [*node.get("Retry", []), *(r for value in node.values() for r in _retries(value))]
    if isinstance(node, list):
        return [r for value in node for r in _retries(value)]
    return []


@pytest.mark.parametrize("event", [None, [], "request", 7])
def test_an_event_that_is_not_an_object_is_named_as_the_event(event: Any) -> None:
    for parse in (ClassifierEvent.from_event, InvokerEvent.from_event, ScorerEvent.from_event, parse_batch_event):
        assert malformed(parse, event).field == "(event)"


# -- Classify Request ---------------------------------------------------------------------------------------

CLASSIFY = {"request": {"prompt": "What is 2+2?", "request_id": "order-42"}, "execution_name": "exec-1",
            "execution_id": EXECUTION_ID}


def test_classifier_event() -> None:
    event = ClassifierEvent.from_event(CLASSIFY)
    assert event == ClassifierEvent(request=CLASSIFY["request"], execution_name="exec-1", execution_id=EXECUTION_ID)
    assert event.request_id == "order-42"


@pytest.mark.parametrize("request_", [None, [], "What is 2+2?", {"prompt": ""}, {"prompt": 42}])
def test_classifier_takes_any_request_its_validation_is_the_logic_s(request_: Any) -> None:
    """The request is the caller's input: an invalid one is a valid: false result, not a malformed event."""
    event = ClassifierEvent.from_event({**CLASSIFY, "request": request_})
    assert event.request == request_
    assert classify(event, Settings())["valid"] is False


@pytest.mark.parametrize(("path", "value", "problem"), [
    ("request", MISSING, "missing"),
    ("execution_name", MISSING, "missing"),
    ("execution_name", 5, "expected a non-empty string, got number"),
    ("execution_name", "", "expected a non-empty string, got an empty string"),
    ("execution_id", MISSING, "missing"),
    ("execution_id", None, "expected a non-empty string, got null"),
])
def test_classifier_event_names_the_field(path: str, value: Any, problem: str) -> None:
    error = malformed(ClassifierEvent.from_event, edited(CLASSIFY, path, value))
    assert (error.field, error.problem) == (path, problem)


@pytest.mark.parametrize(("request_", "logged"), [
    ({"prompt": "hi", "request_id": "order-42"}, "order-42"),
    ({"prompt": "hi"}, "exec-1"),
    ({"prompt": "", "request_id": "order-42"}, "order-42"),  # invalid request, valid id: the caller's id
    ({"prompt": "hi", "request_id": "x" * 300}, "exec-1"),  # an invalid id is never echoed
    ({"prompt": "hi", "request_id": "bad id\n"}, "exec-1"),
    ({"prompt": "hi", "request_id": 42}, "exec-1"),
    (["not", "an", "object"], "exec-1"),
])
def test_the_request_id_known_before_validation_is_the_one_the_state_carries(request_: Any, logged: str) -> None:
    """The classifier correlates its logs with this id before classifying: it must be the state's id."""
    event = ClassifierEvent.from_event({**CLASSIFY, "request": request_})
    assert event.request_id == logged
    assert classify(event, Settings())["request_id"] == logged


def test_outside_a_workflow_the_request_id_is_the_caller_s_or_none() -> None:
    assert ClassifierEvent(request={"prompt": "hi"}).request_id is None
    assert ClassifierEvent(request={"prompt": "hi", "request_id": "r-1"}).request_id == "r-1"


# -- Invoke Haiku / Sonnet / Opus -----------------------------------------------------------------------------

INVOKE = {"request": {"messages": [{"role": "user", "content": [{"text": "What is 2+2?"}]}],
                      "inference": {"maxTokens": 64}, "request_id": "order-42"},
          "request_id": "order-42", "execution_id": EXECUTION_ID}


def test_invoker_event() -> None:
    event = InvokerEvent.from_event(INVOKE)
    assert event == InvokerEvent(request=INVOKE["request"], request_id="order-42", execution_id=EXECUTION_ID)
    assert InvokerEvent.from_event(edited(INVOKE, "request.inference")).request["messages"]


@pytest.mark.parametrize(("path", "value", "problem"), [
    ("request", MISSING, "missing"),
    ("request", "What is 2+2?", "expected an object, got string"),
    ("request.messages", MISSING, "missing"),
    ("request.messages", {}, "expected an array, got object"),
    ("request.messages", [], "expected a non-empty array"),
    ("request.inference", [64], "expected an object, got array"),
    ("request_id", MISSING, "missing"),
    ("request_id", 42, "expected a non-empty string, got number"),
    ("execution_id", MISSING, "missing"),
])
def test_invoker_event_names_the_field(path: str, value: Any, problem: str) -> None:
    error = malformed(InvokerEvent.from_event, edited(INVOKE, path, value))
    assert (error.field, error.problem) == (path, problem)


# -- Score Answer / Record Failed Attempt ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def classified() -> dict[str, Any]:
    state = classify(ClassifierEvent.from_event(CLASSIFY), Settings())
    assert state["valid"]
    return state


@pytest.fixture
def score_event(classified: dict[str, Any]) -> dict[str, Any]:
    reply = {"tier": classified["route"]["tier"], "model_id": "m", "answer": "4", "stop_reason": "end_turn",
             "input_tokens": 12, "output_tokens": 1, "latency_ms": 210.5, "cost_usd": 0.0001, "provider": "bedrock"}
    state = {**copy.deepcopy(classified), "invocation": {"attempt": reply}}
    return {"step": "score", "state": state, "execution_id": EXECUTION_ID, "execution_started": STARTED}


@pytest.fixture
def failure_event(classified: dict[str, Any]) -> dict[str, Any]:
    caught = {"Error": "ThrottlingException", "Cause": '{"errorMessage": "slow down"}'}
    state = {**copy.deepcopy(classified), "invocation": caught}
    return {"step": "failure", "state": state, "execution_id": EXECUTION_ID, "execution_started": STARTED}


def test_scorer_events(score_event: dict[str, Any], failure_event: dict[str, Any]) -> None:
    scored = ScorerEvent.from_event(score_event)
    assert (scored.step, scored.request_id, scored.execution_id, scored.execution_started) == (
        "score", "order-42", EXECUTION_ID, STARTED)
    assert scored.state is score_event["state"]  # the workflow state, passed on as the document it is
    failed = ScorerEvent.from_event(failure_event)
    assert (failed.step, failed.state["invocation"]["Error"]) == ("failure", "ThrottlingException")
    assert ScorerEvent.from_event(edited(failure_event, "state.invocation.Error")).step == "failure"


COMMON_STATE_FIELDS = [
    ("step", MISSING, "missing"),
    ("step", "scroe", "'scroe' is not one of score, failure"),
    ("step", 1, "number is not one of score, failure"),
    ("state", MISSING, "missing"),
    ("state", [], "expected an object, got array"),
    ("state.request_id", MISSING, "missing"),
    ("state.request", MISSING, "missing"),
    ("state.classification", None, "expected an object, got null"),
    ("state.plan", MISSING, "missing"),
    ("state.attempts", {}, "expected an array, got object"),
    ("state.route", MISSING, "missing"),
    ("state.route.tier", "gpt", "'gpt' is not one of haiku, sonnet, opus"),
    ("state.invocation", MISSING, "missing"),
    ("execution_id", MISSING, "missing"),
    ("execution_started", MISSING, "missing"),
]


@pytest.mark.parametrize(("path", "value", "problem"), [
    *COMMON_STATE_FIELDS,
    ("state.invocation.attempt", MISSING, "missing"),
    ("state.invocation.attempt.tier", MISSING, "missing"),
    ("state.invocation.attempt.model_id", "", "expected a non-empty string, got an empty string"),
    ("state.invocation.attempt.answer", MISSING, "missing"),
    ("state.invocation.attempt.answer", None, "expected a string, got null"),
    ("state.invocation.attempt.stop_reason", MISSING, "missing"),
    ("state.invocation.attempt.input_tokens", "12", "expected an integer, got string"),
    ("state.invocation.attempt.output_tokens", True, "expected an integer, got boolean"),
    ("state.invocation.attempt.latency_ms", MISSING, "missing"),
    ("state.invocation.attempt.cost_usd", None, "expected a number, got null"),
])
def test_score_event_names_the_field(score_event: dict[str, Any], path: str, value: Any, problem: str) -> None:
    error = malformed(ScorerEvent.from_event, edited(score_event, path, value))
    assert (error.field, error.problem) == (path, problem)


@pytest.mark.parametrize(("path", "value", "problem"), [
    *COMMON_STATE_FIELDS,
    ("state.invocation", "ThrottlingException", "expected an object, got string"),
    ("state.invocation.Error", 5, "expected a non-empty string, got number"),
])
def test_failure_event_names_the_field(failure_event: dict[str, Any], path: str, value: Any, problem: str) -> None:
    error = malformed(ScorerEvent.from_event, edited(failure_event, path, value))
    assert (error.field, error.problem) == (path, problem)


def test_a_bad_step_is_echoed_cut_short(score_event: dict[str, Any]) -> None:
    error = malformed(ScorerEvent.from_event, {**score_event, "step": "s" * 10_000})
    assert len(str(error)) < 100


# -- the batch function ---------------------------------------------------------------------------------------

SOURCE = {"bucket": "in", "key": "incoming/jobs.jsonl", "etag": "abc"}
BATCH = {"source": SOURCE, "results_bucket": "out", "results_prefix": "results/jobs/abc/",
         "map_run_prefix": "results/jobs/abc/map-run", "max_concurrency": 40, "tolerated_failure_percentage": 0.0}
BATCH_EVENTS: dict[str, dict[str, Any]] = {
    "locate": {"step": "locate", "event": {"detail-type": "Object Created"}},
    "split": {"step": "split", "batch": BATCH},
    "prepare": {"step": "prepare", "item": {"line": 3, "text": "{}"}, "source": SOURCE},
    "record": {"step": "record", "item": {"line": 3, "request_id": "jobs-3", "source": SOURCE,
                                          "routed": {"result": {"status": "answered"}}}},
    "finish": {"step": "finish", "batch": BATCH, "items": {"bucket": "out", "key": "results/jobs/abc/lines.json",
                                                          "lines": 3, "blank": 1},
               "map_run": {"ResultWriterDetails": {"Bucket": "out", "Key": "m.json"}}},
}


def test_batch_events() -> None:
    parsed = {step: parse_batch_event(event) for step, event in BATCH_EVENTS.items()}
    assert parsed["locate"] == BatchLocateEvent(execution_input={"detail-type": "Object Created"})
    assert parsed["split"] == BatchSplitEvent(batch=BATCH)
    assert parsed["prepare"] == BatchPrepareEvent(item={"line": 3, "text": "{}"}, line=3, source=SOURCE)
    assert parsed["record"] == BatchRecordEvent(item=BATCH_EVENTS["record"]["item"], line=3, request_id="jobs-3",
                                                source=SOURCE)
    assert parsed["finish"] == BatchFinishEvent(batch=BATCH, items=BATCH_EVENTS["finish"]["items"],
                                                map_run=BATCH_EVENTS["finish"]["map_run"])
    assert {step: event.step for step, event in parsed.items()} == {step: step for step in BATCH_EVENTS}


@pytest.mark.parametrize("execution_input", [None, [], "hello", {"detail": 5}])
def test_locate_takes_any_execution_input_its_step_rejects_what_is_not_a_batch(execution_input: Any) -> None:
    assert parse_batch_event({"step": "locate", "event": execution_input}) == BatchLocateEvent(execution_input)


@pytest.mark.parametrize(("step", "path", "value", "problem"), [
    ("locate", "step", "sweep", "'sweep' is not one of locate, split, prepare, record, finish"),
    ("locate", "step", MISSING, "missing"),
    ("locate", "event", MISSING, "missing"),
    ("split", "batch", MISSING, "missing"),
    ("split", "batch.source", MISSING, "missing"),
    ("split", "batch.source.bucket", MISSING, "missing"),
    ("split", "batch.source.key", 7, "expected a non-empty string, got number"),
    ("split", "batch.results_bucket", MISSING, "missing"),
    ("split", "batch.results_prefix", None, "expected a non-empty string, got null"),
    ("prepare", "item", MISSING, "missing"),
    ("prepare", "item.line", MISSING, "missing"),
    ("prepare", "item.line", "3", "expected an integer, got string"),
    ("prepare", "item.line", 0, "expected an integer >= 1, got 0"),
    ("prepare", "source", "s3://in/jobs.jsonl", "expected an object, got string"),
    ("prepare", "source.key", MISSING, "missing"),
    ("record", "item.line", 2.5, "expected an integer, got number"),
    ("record", "item.request_id", MISSING, "missing"),
    ("record", "item.source", MISSING, "missing"),
    ("record", "item.source.bucket", "", "expected a non-empty string, got an empty string"),
    ("record", "item.routed", MISSING, "missing"),
    ("record", "item.routed", None, "expected an object, got null"),
    ("finish", "batch.source", MISSING, "missing"),
    ("finish", "items", MISSING, "missing"),
    ("finish", "items.key", MISSING, "missing"),
    ("finish", "items.lines", "3", "expected an integer, got string"),
    ("finish", "items.blank", -1, "expected an integer >= 0, got -1"),
    ("finish", "map_run", MISSING, "missing"),
])
def test_batch_event_names_the_field(step: str, path: str, value: Any, problem: str) -> None:
    error = malformed(parse_batch_event, edited(BATCH_EVENTS[step], path, value))
    assert (error.field, error.problem) == (path, problem)


def test_batch_log_keys_name_the_line_and_input() -> None:
    keys = {step: batch_log_keys(parse_batch_event(event)) for step, event in BATCH_EVENTS.items()}
    uri = "s3://in/incoming/jobs.jsonl"
    assert keys == {
        "locate": {},
        "split": {"input": uri},
        "prepare": {"line": 3, "input": uri},
        "record": {"line": 3, "request_id": "jobs-3", "input": uri},
        "finish": {"input": uri},
    }
