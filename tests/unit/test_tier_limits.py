"""Which tiers a replayed request can be answered on: Classify Request asks the provider (providers.tier_limit)
and routes between those only, for every way into the workflow. RouteLLM recorded an economy and a premium
model, no standard one: Sonnet must not answer with GPT-4's recorded answer at Sonnet's price."""

from __future__ import annotations

from typing import Any

import pytest

from model_router.providers import tier_limit
from model_router.settings import Settings, settings_scope
from model_router.steps.classify import classify_step
from model_router.tiers import Tier

REPLAY = Settings(model_provider="replay")


def gsm8k(records: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in records if r["source"] == "routellm-gsm8k")


def classify(request: dict[str, Any], settings: Settings = REPLAY) -> dict[str, Any]:
    state: dict[str, Any] = classify_step({"request": request}, settings)
    return state


def test_a_two_tier_record_is_routed_between_its_recorded_tiers_and_the_plan_says_why(
        records: list[dict[str, Any]]) -> None:
    state = classify({"prompt": gsm8k(records)["prompt"], "routing": {"strategy": "cascade"}})
    assert state["plan"]["tiers"] == ["haiku", "opus"]
    (note,) = state["plan"]["notes"]
    assert "routellm-gsm8k recorded answers for Haiku and Opus only" in note and "Sonnet" in note


def test_a_three_tier_or_unrecorded_prompt_keeps_every_tier_and_adds_no_note(records: list[dict[str, Any]]) -> None:
    three_tier = next(r for r in records if r["source"] == "llmrouter")
    for prompt in (three_tier["prompt"], "A prompt nobody recorded, about swallows."):
        state = classify({"prompt": prompt})
        assert state["plan"]["tiers"] == ["haiku", "sonnet", "opus"]
        assert "notes" not in state["plan"]


def test_a_caller_forcing_sonnet_on_a_two_tier_record_starts_at_opus_and_is_told_why(
        records: list[dict[str, Any]]) -> None:
    state = classify({"prompt": gsm8k(records)["prompt"], "tier": "sonnet"})
    assert state["classification"]["tier"] == "opus"
    assert "Sonnet is not in the tiers that can answer it: start at Opus" in state["classification"]["reason"]


def test_a_caller_allowing_only_a_tier_the_source_never_recorded_gets_an_invalid_request(
        records: list[dict[str, Any]]) -> None:
    state = classify({"prompt": gsm8k(records)["prompt"], "routing": {"tiers": ["sonnet"]}})
    assert state["valid"] is False
    assert state["invalid"]["field"] == "routing.tiers"
    assert "recorded answers for Haiku and Opus only" in state["invalid"]["message"]


def test_bedrock_never_limits_the_tiers_and_builds_no_client_to_say_so(records: list[dict[str, Any]],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_client(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("tier_limit built a Bedrock client")

    monkeypatch.setattr("model_router.providers.bedrock.BedrockConverseProvider.__init__", no_client)
    messages = [{"role": "user", "content": [{"text": gsm8k(records)["prompt"]}]}]
    assert tier_limit(Settings(model_provider="bedrock"), messages) is None
    state = classify({"prompt": gsm8k(records)["prompt"]}, Settings(model_provider="bedrock"))
    assert state["plan"]["tiers"] == ["haiku", "sonnet", "opus"]


@pytest.mark.parametrize("borrowed", ["1", ""])
def test_replay_borrows_sonnet_only_when_a_path_test_asks_for_it(records: list[dict[str, Any]], borrowed: str) -> None:
    environment = {"MODEL_PROVIDER": "replay", "REPLAY_BORROWED_TIERS": borrowed}
    with settings_scope(environment):  # the replay provider reads its options from the function's environment
        state = classify({"prompt": gsm8k(records)["prompt"]}, Settings.from_mapping(environment))
    expected = [Tier.HAIKU, Tier.SONNET, Tier.OPUS] if borrowed else [Tier.HAIKU, Tier.OPUS]
    assert state["plan"]["tiers"] == [t.value for t in expected]
