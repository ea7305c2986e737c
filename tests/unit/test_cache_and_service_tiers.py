"""Prompt caching and service tiers on a real boto3 bedrock-runtime client (botocore's Stubber at the edge), and
cache-aware routing on the classifier's own code."""

from __future__ import annotations

import json
from typing import Any

import pytest
from bedrock_fixtures import provider, stub
from botocore.stub import Stubber

from model_router.contracts.request import validate_request
from model_router.errors import InvalidRequest
from model_router.pricing import price_for
from model_router.providers.bedrock import BedrockConverseProvider
from model_router.settings import Settings, SettingsError
from model_router.steps.classify import classify_step
from model_router.steps.invoke import invoke_model

__all__ = ["provider", "stub"]  # the shared fixtures, used by name (tests/bedrock_fixtures.py)
HAIKU_ID = "us.anthropic.claude-haiku-4-5-20251001-v1:0"  # prompt caching documented, 5m and 1h
SONNET_ID = "us.anthropic.claude-sonnet-4-6"  # prompt caching not found in AWS docs: cachePoints dropped
OPUS_45_ID = "us.anthropic.claude-opus-4-5-20251101-v1:0"  # prompt caching documented, 5m and 1h
CACHED = [{"text": "You answer questions about the attached manual."}, {"cachePoint": {"type": "default", "ttl": "1h"}}]
MESSAGES = [{"role": "user", "content": [{"text": "What is the capital of France?"}]}]


def response(*, input_tokens: int = 20, output_tokens: int = 10, cache_read: int = 0, cache_write: int = 0,
             details: list[dict[str, Any]] | None = None, service_tier: str | None = None) -> dict[str, Any]:
    usage: dict[str, Any] = {"inputTokens": input_tokens, "outputTokens": output_tokens,
                             "totalTokens": input_tokens + output_tokens + cache_read + cache_write,
                             "cacheReadInputTokens": cache_read, "cacheWriteInputTokens": cache_write}
    if details is not None:
        usage["cacheDetails"] = details
    out: dict[str, Any] = {"output": {"message": {"role": "assistant", "content": [{"text": "Paris."}]}},
                           "stopReason": "end_turn", "usage": usage, "metrics": {"latencyMs": 300}}
    if service_tier:
        out["serviceTier"] = {"type": service_tier}
    return out


def settings_for(tier: str, model_id: str, **env: str) -> Settings:
    return Settings.from_mapping({"MODEL_TIER": tier, "MODEL_ID": model_id, **env})


# -- cachePoint passthrough and cache pricing ---------------------------------------------------------------


def test_cache_points_reach_bedrock_as_written_and_cache_tokens_are_priced(provider: BedrockConverseProvider,
                                                                          stub: Stubber) -> None:
    request = validate_request({"system": CACHED, "prompt": "What is the capital of France?"})
    stub.add_response("converse", response(input_tokens=20, cache_write=5000,
                                           details=[{"ttl": "1h", "inputTokens": 5000}]),
                      expected_params={"modelId": HAIKU_ID, "messages": MESSAGES, "system": CACHED,
                                       "inferenceConfig": {"maxTokens": 2048}})
    attempt = invoke_model(request, settings_for("haiku", HAIKU_ID), provider)
    price = price_for(HAIKU_ID)
    # Haiku 4.5 on a us. profile: $1.10 input, $5.50 output, 1h writes 2x input ($2.20) per 1M tokens.
    assert (price.input_per_1m, price.cache_write("1h"), price.cache_read) == pytest.approx((1.1, 2.2, 0.11))
    assert attempt["cache_write_input_tokens"] == 5000 and attempt["cache_read_input_tokens"] == 0
    assert attempt["cache_cost_usd"] == pytest.approx(5000 * 2.2 / 1e6)
    assert attempt["cost_usd"] == pytest.approx((20 * 1.1 + 10 * 5.5 + 5000 * 2.2) / 1e6)
    assert "notes" not in attempt


def test_cache_reads_cost_a_tenth_of_input(provider: BedrockConverseProvider, stub: Stubber) -> None:
    request = validate_request({"system": CACHED, "prompt": "What is the capital of France?"})
    stub.add_response("converse", response(input_tokens=20, cache_read=5000))
    attempt = invoke_model(request, settings_for("haiku", HAIKU_ID), provider)
    assert attempt["cache_cost_usd"] == pytest.approx(5000 * 0.11 / 1e6)
    assert attempt["cost_usd"] == pytest.approx((20 * 1.1 + 10 * 5.5 + 5000 * 0.11) / 1e6)


def test_writes_without_a_ttl_breakdown_are_priced_at_the_five_minute_rate(provider: BedrockConverseProvider,
                                                                            stub: Stubber) -> None:
    request = validate_request({"system": CACHED, "prompt": "What is the capital of France?"})
    stub.add_response("converse", response(input_tokens=0, output_tokens=0, cache_write=1_000_000))
    attempt = invoke_model(request, settings_for("haiku", HAIKU_ID), provider)
    assert attempt["cost_usd"] == pytest.approx(1.1 * 1.25)


def test_a_model_without_documented_caching_gets_no_cache_points_and_a_note(provider: BedrockConverseProvider,
                                                                            stub: Stubber) -> None:
    request = validate_request({"system": CACHED, "prompt": "What is the capital of France?"})
    stub.add_response("converse", response(),
                      expected_params={"modelId": SONNET_ID, "messages": MESSAGES, "system": CACHED[:1],
                                       "inferenceConfig": {"maxTokens": 2048}})
    attempt = invoke_model(request, settings_for("sonnet", SONNET_ID), provider)
    assert attempt["notes"] and "prompt caching is not documented" in attempt["notes"][0]


def test_a_deployment_may_record_caching_for_its_model(provider: BedrockConverseProvider, stub: Stubber) -> None:
    overrides = json.dumps({SONNET_ID: {"prompt_caching": {"ttls": ["5m"]}}})
    request = validate_request({"system": CACHED, "prompt": "What is the capital of France?"})
    # 1h is not recorded for it: the cachePoint goes without a ttl (Bedrock's 5-minute default).
    stub.add_response("converse", response(),
                      expected_params={"modelId": SONNET_ID, "messages": MESSAGES,
                                       "system": [CACHED[0], {"cachePoint": {"type": "default"}}],
                                       "inferenceConfig": {"maxTokens": 2048}})
    attempt = invoke_model(request, settings_for("sonnet", SONNET_ID, MODEL_FEATURE_OVERRIDES=overrides), provider)
    assert "ttl 1h is not documented" in attempt["notes"][0]


# -- service tiers -------------------------------------------------------------------------------------------


def test_a_documented_service_tier_is_passed_and_priced(provider: BedrockConverseProvider, stub: Stubber) -> None:
    overrides = json.dumps({HAIKU_ID: {"service_tiers": {"flex": {"input": 0.5, "output": 2.5}}}})
    request = validate_request({"prompt": "What is the capital of France?", "routing": {"service_tier": "flex"}})
    stub.add_response("converse", response(input_tokens=1000, output_tokens=100, service_tier="flex"),
                      expected_params={"modelId": HAIKU_ID, "messages": MESSAGES, "serviceTier": {"type": "flex"},
                                       "inferenceConfig": {"maxTokens": 2048}})
    attempt = invoke_model(request, settings_for("haiku", HAIKU_ID, MODEL_FEATURE_OVERRIDES=overrides), provider)
    assert attempt["service_tier"] == "flex" and "notes" not in attempt
    assert attempt["cost_usd"] == pytest.approx((1000 * 0.5 + 100 * 2.5) / 1e6)


@pytest.mark.parametrize("tier", ["flex", "priority", "reserved"])
def test_an_undocumented_service_tier_falls_back_to_default_with_a_note(provider: BedrockConverseProvider,
                                                                        stub: Stubber, tier: str) -> None:
    request = validate_request({"prompt": "What is the capital of France?", "routing": {"service_tier": tier}})
    stub.add_response("converse", response(),
                      expected_params={"modelId": HAIKU_ID, "messages": MESSAGES,
                                       "inferenceConfig": {"maxTokens": 2048}})
    attempt = invoke_model(request, settings_for("haiku", HAIKU_ID), provider)
    assert attempt["service_tier"] == "default"
    assert attempt["notes"] == [f"service tier {tier!r} is not documented for {HAIKU_ID} (data/model_features.json, "
                                "retrieved 2026-12-02): served on default"]


def test_the_deployment_default_service_tier_applies_when_the_request_names_none(
        provider: BedrockConverseProvider, stub: Stubber) -> None:
    stub.add_response("converse", response())
    attempt = invoke_model(validate_request({"prompt": "hi there"}),
                           settings_for("haiku", HAIKU_ID, DEFAULT_SERVICE_TIER="priority"), provider)
    assert attempt["service_tier"] == "default" and "'priority'" in attempt["notes"][0]


@pytest.mark.parametrize(("env", "value"), [("DEFAULT_SERVICE_TIER", "cheap"), ("BATCH_SERVICE_TIER", "batch"),
                                            ("MODEL_FEATURE_OVERRIDES", "{"),
                                            ("MODEL_FEATURE_OVERRIDES", '{"m": {"service_tiers": {"flex": {}}}}'),
                                            ("MODEL_FEATURE_OVERRIDES", '{"m": {"prompt_caching": {"ttls": ["2h"]}}}'),
                                            ("MODEL_FEATURE_OVERRIDES", '{"m": {"latency": "optimized"}}')])
def test_malformed_service_tier_settings_name_the_variable(env: str, value: str) -> None:
    with pytest.raises(SettingsError, match=env):
        Settings.from_mapping({env: value})


# -- the request contract's bounds on cachePoints -------------------------------------------------------------


@pytest.mark.parametrize(("request_", "field"), [
    ({"prompt": "hi", "system": [{"cachePoint": {"type": "default"}}]}, "system[0].cachePoint"),
    ({"prompt": "hi", "system": [{"text": "a"}, {"cachePoint": {"type": "default", "ttl": "2h"}}]},
     "system[1].cachePoint.ttl"),
    ({"prompt": "hi", "system": [{"text": "a"}, {"cachePoint": {"type": "ephemeral"}}]}, "system[1].cachePoint.type"),
    ({"prompt": "hi", "system": [{"text": "a"}, {"cachePoint": {"type": "default", "x": 1}}]},
     "system[1].cachePoint.x"),
    ({"prompt": "hi", "system": [{"text": "a", "cachePoint": {"type": "default"}}]}, "system[0]"),
    ({"prompt": "hi", "system": [{"text": "a"}, {"cachePoint": {"type": "default"}}] * 5}, "system[9].cachePoint"),
    ({"prompt": "hi", "system": [{"text": "a"}, {"cachePoint": {"type": "default", "ttl": "5m"}}, {"text": "b"},
                                 {"cachePoint": {"type": "default", "ttl": "1h"}}]}, "system[3].cachePoint.ttl"),
    ({"messages": [{"role": "user", "content": [{"text": "a"}, {"cachePoint": {"type": "default"}},
                                                {"cachePoint": {"type": "default"}}]}]}, "messages[0].content[2]"),
    ({"prompt": "hi", "routing": {"service_tier": "cheap"}}, "routing.service_tier"),
    ({"prompt": "hi", "routing": {"previous_tier": "gpt"}}, "routing.previous_tier"),
])
def test_bad_cache_points_and_service_tiers_name_the_field(request_: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        validate_request(request_)
    assert raised.value.field.startswith(field), raised.value


def test_existing_requests_stay_valid_and_keep_their_shape() -> None:
    request = validate_request({"prompt": "hi", "system": "be brief"})
    assert request["system"] == [{"text": "be brief"}] and request["messages"] == [
        {"role": "user", "content": [{"text": "hi"}]}]


# -- cache-aware routing: a conversation continuing on the tier that holds its cache -------------------------

DEPLOYMENT = {"OPUS_MODEL_ID": OPUS_45_ID}


def _next_turn(prefix_chars: int, previous: str | None = "opus") -> dict[str, Any]:
    manual = ("The manual says the valve opens at 3 bar. " * (prefix_chars // 42 + 1))[:prefix_chars]
    routing: dict[str, Any] = {"strategy": "cascade"}  # cascade would start on Haiku
    if previous:
        routing["previous_tier"] = previous
    return {"request_id": "conv-1-turn-2", "system": [{"text": manual}, {"cachePoint": {"type": "default"}}],
            "messages": [{"role": "user", "content": "At what pressure does the valve open?"},
                         {"role": "assistant", "content": "At 3 bar."},
                         {"role": "user", "content": "Thanks. Is that gauge pressure?"}],
            "routing": routing}


def _classify(request: dict[str, Any]) -> dict[str, Any]:
    state = classify_step({"request": request}, Settings.from_mapping(DEPLOYMENT))
    assert state["valid"], state
    return state


def test_a_conversation_stays_on_the_tier_holding_a_cache_that_outweighs_the_switch() -> None:
    state = _classify(_next_turn(80_000))  # ~20k cached tokens
    estimates = state["classification"]["route_estimates"]["cache"]
    assert state["route"]["tier"] == "opus", state["classification"]["reason"]
    assert "stays on Opus, which holds the prompt cache" in state["classification"]["reason"]
    costs = estimates["expected_cost_usd"]
    assert costs["opus"]["with_cache"] < costs["haiku"]["with_cache"]
    assert costs["opus"]["with_cache"] < costs["opus"]["without_cache"]
    # Haiku would write the cache anew: dearer than without caching.
    assert costs["haiku"]["with_cache"] > costs["haiku"]["without_cache"]
    assert estimates["previous_tier"] == "opus" and estimates["cacheable"] == ["haiku", "opus"]
    assert state["plan"]["cache"]["prefix_tokens"] == estimates["prefix_tokens"] == 20_000


def test_a_conversation_moves_when_the_cache_does_not_outweigh_the_switch() -> None:
    state = _classify(_next_turn(20_000))  # ~5k cached tokens: Opus's answer costs more than the cache saves
    costs = state["classification"]["route_estimates"]["cache"]["expected_cost_usd"]
    assert state["route"]["tier"] == "haiku", state["classification"]["reason"]
    assert "moves from Opus" in state["classification"]["reason"]
    assert costs["haiku"]["with_cache"] < costs["opus"]["with_cache"]


def test_no_previous_tier_no_stay_and_a_forced_tier_wins() -> None:
    assert _classify(_next_turn(80_000, previous=None))["route"]["tier"] == "haiku"
    forced = {**_next_turn(80_000), "tier": "sonnet"}
    assert _classify(forced)["route"]["tier"] == "sonnet"


def test_a_previous_tier_without_documented_caching_holds_no_cache() -> None:
    # Sonnet 4.6 documents no prompt caching on Bedrock: nothing to keep, the router's choice stands.
    state = _classify(_next_turn(80_000, previous="sonnet"))
    assert state["route"]["tier"] == "haiku"


def test_the_staying_turn_is_billed_at_cache_reads(provider: BedrockConverseProvider, stub: Stubber) -> None:
    state = _classify(_next_turn(80_000))
    estimated = state["classification"]["route_estimates"]["cache"]["expected_cost_usd"]["opus"]["with_cache"]
    stub.add_response("converse", response(input_tokens=40, output_tokens=512, cache_read=20_000))
    attempt = invoke_model(state["request"], settings_for("opus", OPUS_45_ID), provider)
    assert attempt["cost_usd"] == pytest.approx(estimated, rel=0.01)


def test_escalating_away_from_the_cache_holder_prices_the_cache_it_throws_away() -> None:
    from model_router.steps.decide import expected_attempt_cost
    from model_router.tiers import Tier

    state = _classify({**_next_turn(80_000, previous="haiku"), "routing": {"strategy": "cascade",
                                                                           "previous_tier": "haiku"}})
    settings = Settings.from_mapping(DEPLOYMENT)
    opus = expected_attempt_cost(state, Tier.OPUS, settings)
    haiku = expected_attempt_cost(state, Tier.HAIKU, settings)
    without = {**state, "plan": {k: v for k, v in state["plan"].items() if k != "cache"}}
    assert opus > expected_attempt_cost(without, Tier.OPUS, settings)  # the write premium on the new tier
    assert haiku < expected_attempt_cost(without, Tier.HAIKU, settings)  # reads on the holder
