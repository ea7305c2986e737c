"""The llm and learned+llm strategies through the real state machine on the local engine: the classifier's verdict
picks the start, every fallback lands on the learned start with its reason, and the call's cost is in the result's
cost, savings and budget. The classifier's replies are scripted (CLASSIFIER_SCRIPT) or read from the recorded
outcomes (replay/classifier.py); recorded models stand in for Haiku/Sonnet/Opus."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from model_router.contracts.request import validate_result
from model_router_tools.local.engine import ExecutionResult, LocalEngine
from model_router_tools.replay.classifier import recorded_verdict
from model_router_tools.replay.datasets import sample_path, tier_maps

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture(scope="module")
def record(answered_records: list[dict[str, Any]]) -> dict[str, Any]:
    return answered_records[0]


def request(record: dict[str, Any], **routing: Any) -> dict[str, Any]:
    return {"prompt": record["prompt"], "routing": {"strategy": "llm", **routing}}


def invoked(result: ExecutionResult) -> list[str]:
    return [s.removeprefix("Invoke ").lower() for s in result.states_entered if s.startswith("Invoke ")]


def output(result: ExecutionResult) -> dict[str, Any]:
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    validate_result(result.output)
    out: dict[str, Any] = result.output
    return out


def test_the_scripted_verdict_picks_the_start_and_its_cost_counts(engine_with: Callable[..., LocalEngine],
                                                                   record: dict[str, Any]) -> None:
    result = engine_with(CLASSIFIER_SCRIPT="complex").run(request(record))
    out = output(result)
    llm = out["classification"]["llm"]
    assert (llm["outcome"], llm["verdict"], llm["asked"]) == ("used", "complex", True)
    assert invoked(result)[0] == "opus" and out["classification"]["tier"] == "opus"
    cost = out["cost"]
    assert cost["classification_usd"] == llm["cost_usd"] > 0
    assert cost["total_usd"] == pytest.approx(cost["models_usd"] + cost["classification_usd"]
                                              + cost["orchestration_usd"], abs=1e-8)
    assert cost["savings_usd"] == pytest.approx(cost["premium_estimate_usd"] - cost["models_usd"]
                                                - cost["classification_usd"], abs=1e-8)
    assert any("scripted or read from the recorded outcomes" in note for note in out["notes"])


def test_the_recorded_verdict_is_the_cheapest_tier_that_answered_right(engine_with: Callable[..., LocalEngine],
                                                                        record: dict[str, Any]) -> None:
    tier_map = tier_maps(str(sample_path()))[record["source"]]
    expected = recorded_verdict(record, tier_map.models, list(tier_map.models))
    out = output(engine_with().run(request(record)))
    assert out["classification"]["llm"]["verdict"] == expected


@pytest.mark.parametrize(("env", "kind"), [
    ({"CLASSIFIER_SCRIPT": "!error:ThrottlingException"}, "error"),
    ({"CLASSIFIER_SCRIPT": "!error:NoSuchError"}, "error"),  # a broken script fails the client, not the request
    ({"CLASSIFIER_SCRIPT": "I think it is complex"}, "unparseable"),
    ({"CLASSIFIER_SCRIPT": "!timeout", "CLASSIFIER_TIMEOUT_SECONDS": "0.1"}, "timeout"),
    ({"CLASSIFIER_SCRIPT": "complex", "ALLOW_LLM_CLASSIFIER": "false"}, "not_allowed"),
])
def test_every_fallback_starts_where_learned_would(engine_with: Callable[..., LocalEngine], record: dict[str, Any],
                                                   env: dict[str, str], kind: str) -> None:
    learned = output(engine_with().run({**request(record), "routing": {"strategy": "learned"}}))
    out = output(engine_with(**env).run(request(record)))
    llm = out["classification"]["llm"]
    assert (llm["outcome"], llm["fallback_kind"]) == ("fallback", kind)
    assert out["classification"]["tier"] == learned["classification"]["tier"]
    assert out["classification"]["reason"].startswith(f"LLM classifier not used ({kind}: ")
    assert out["cost"]["classification_usd"] == llm["cost_usd"]
    assert llm["asked"] is (kind != "not_allowed")
    if kind == "not_allowed":
        assert llm["cost_usd"] == 0


def test_learned_llm_asks_below_its_margin_only(engine_with: Callable[..., LocalEngine],
                                                record: dict[str, Any]) -> None:
    never = output(engine_with(CLASSIFIER_SCRIPT="complex", LLM_CLASSIFIER_MARGIN="0").run(
        request(record, strategy="learned+llm")))
    assert never["classification"]["llm"]["outcome"] == "not_asked" and never["cost"]["classification_usd"] == 0
    always = output(engine_with(CLASSIFIER_SCRIPT="complex", LLM_CLASSIFIER_MARGIN="1").run(
        request(record, strategy="learned+llm")))
    assert always["classification"]["llm"]["outcome"] == "used" and always["classification"]["tier"] == "opus"
    assert always["cost"]["classification_usd"] > 0


def test_max_tier_and_budget_hold_against_a_complex_verdict(engine_with: Callable[..., LocalEngine],
                                                            record: dict[str, Any]) -> None:
    engine = engine_with(CLASSIFIER_SCRIPT="complex")
    capped = engine.run(request(record, max_tier="sonnet"))
    assert "opus" not in invoked(capped) and output(capped)["classification"]["llm"]["verdict"] == "complex"
    assert "capped at max_tier Sonnet" in output(capped)["classification"]["reason"]
    alone = engine.run(request(record, max_tier="haiku"))  # one tier left: nothing to ask
    assert set(invoked(alone)) == {"haiku"} and output(alone)["classification"]["llm"]["asked"] is False
    budget = 0.004
    spent = output(engine.run(request(record, max_cost_usd=budget)))
    assert spent["classification"]["tier"] != "opus"
    assert spent["cost"]["models_usd"] + spent["cost"]["classification_usd"] <= budget


def test_the_deployment_default_strategy_can_be_llm(engine_with: Callable[..., LocalEngine],
                                                    record: dict[str, Any]) -> None:
    out = output(engine_with(DEFAULT_STRATEGY="llm", CLASSIFIER_SCRIPT="simple").run({"prompt": record["prompt"]}))
    assert out["classification"]["strategy"] == "llm" and out["classification"]["tier"] == "haiku"
