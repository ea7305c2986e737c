"""A state that sends its Lambda the wrong payload shows up in the execution history as MalformedEvent, naming
the field, and is not retried.

The real router definition is edited (one field dropped from one state's payload) and run on the local
engine from a copy of the project whose statemachine/ holds the edited file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from model_router.providers import reset_providers
from model_router_tools.local.engine import PROJECT_ROOT, LocalEngine

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

ROUTER_ASL = "router.asl.json"


def engine_without(tmp_path: Path, state: str, field: str, **env: str) -> LocalEngine:
    """An engine whose router definition leaves ``field`` out of ``state``'s Lambda payload."""
    for entry in PROJECT_ROOT.iterdir():
        if entry.name != "statemachine":
            (tmp_path / entry.name).symlink_to(entry)
    (tmp_path / "statemachine").mkdir()
    for entry in (PROJECT_ROOT / "statemachine").iterdir():
        if entry.name != ROUTER_ASL:
            (tmp_path / "statemachine" / entry.name).symlink_to(entry)
    definition = json.loads((PROJECT_ROOT / "statemachine" / ROUTER_ASL).read_text(encoding="utf-8"))
    del definition["States"][state]["Parameters"]["Payload"][field]
    (tmp_path / "statemachine" / ROUTER_ASL).write_text(json.dumps(definition), encoding="utf-8")
    reset_providers()
    return LocalEngine(root=tmp_path, env_overrides={"DEFAULT_STRATEGY": "heuristic", **env})


def task_failures(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["taskFailedEventDetails"] for e in events if e.get("taskFailedEventDetails")]


@pytest.fixture
def question(answered_records: list[dict[str, Any]]) -> Callable[[str], dict[str, Any]]:
    return lambda tier: {"prompt": answered_records[0]["prompt"], "request_id": "order-5", "tier": tier}


def test_a_malformed_classifier_event_fails_the_execution_naming_the_field(
        tmp_path: Path, question: Callable[[str], dict[str, Any]]) -> None:
    result = engine_without(tmp_path, "Classify Request", "execution_name.$").run(question("haiku"))
    assert result.error == "MalformedEvent"
    assert json.loads(result.cause or "{}")["errorMessage"] == "execution_name: missing"
    assert [f["error"] for f in task_failures(result.events)] == ["MalformedEvent"]  # once: no Retry matches it


def test_a_malformed_invoker_event_is_a_failed_attempt_naming_the_field(
        tmp_path: Path, question: Callable[[str], dict[str, Any]]) -> None:
    """Invoke Haiku's Catch records it like any failed call, and the run falls back to a tier whose
    payload is whole."""
    result = engine_without(tmp_path, "Invoke Haiku", "request_id.$").run(question("haiku"))
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    failed = result.output["attempts"][0]
    assert (failed["tier"], failed["outcome"]) == ("haiku", "failed")
    assert failed["error"] == {"type": "MalformedEvent", "message": "request_id: missing"}
    assert result.output["tier"] != "haiku"
    assert [f["error"] for f in task_failures(result.events)] == ["MalformedEvent"]
    reset_providers()


def test_a_malformed_scorer_event_fails_the_execution_naming_the_field(
        tmp_path: Path, question: Callable[[str], dict[str, Any]]) -> None:
    """Record Failed Attempt has no Catch: the execution fails with the scorer's error."""
    engine = engine_without(tmp_path, "Record Failed Attempt", "execution_started.$",
                            FAULT_INJECTION="haiku.malformed=1")
    result = engine.run(question("haiku"))
    assert result.error == "MalformedEvent"
    assert json.loads(result.cause or "{}")["errorMessage"] == "execution_started: missing"
    reset_providers()


def test_a_malformed_score_event_ends_in_scoring_failed_with_the_field(
        tmp_path: Path, question: Callable[[str], dict[str, Any]]) -> None:
    """Score Answer's Catch turns any scorer error into Router.ScoringFailed, the paid call named in the cause."""
    result = engine_without(tmp_path, "Score Answer", "execution_id.$").run(question("haiku"))
    assert result.error == "Router.ScoringFailed"
    failure = json.loads(result.cause or "{}")
    assert failure["error"] == "MalformedEvent"
    assert json.loads(failure["cause"])["errorMessage"] == "execution_id: missing"
    assert failure["unscored_attempt"]["tier"] == "haiku"
    reset_providers()
