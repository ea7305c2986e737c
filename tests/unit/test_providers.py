"""The replay provider (recorded real answers) and the fault injector."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from importlib import resources
from typing import Any

import pytest

from model_router import errors
from model_router.contracts.request import validate_request
from model_router.providers.base import ModelCall, ModelReply
from model_router.settings import DEFAULT_MODEL_IDS
from model_router.tiers import TIER_ORDER, Tier
from model_router_tools.faults.provider import FAULT_KINDS, FaultInjectingProvider, FaultPlan, FaultSpecError
from model_router_tools.replay.datasets import DATA_TIER_NAMES, sample_path, tier_maps
from model_router_tools.replay.provider import ReplayProvider


def make_call(messages: list[dict[str, Any]] | str, tier: Tier = Tier.HAIKU, **fields: Any) -> ModelCall:
    if isinstance(messages, str):
        messages = [{"role": "user", "content": [{"text": messages}]}]
    return ModelCall(tier=tier, model_id=DEFAULT_MODEL_IDS[tier], messages=messages, **fields)


def turns(*texts: str) -> list[dict[str, Any]]:
    request = validate_request({"messages": [{"role": "user" if i % 2 == 0 else "assistant", "content": t}
                                             for i, t in enumerate(texts)]})
    messages: list[dict[str, Any]] = request["messages"]
    return messages


@pytest.fixture(scope="module")
def replay() -> ReplayProvider:
    return ReplayProvider()


@pytest.fixture(scope="module")
def vendored_tiers() -> dict[str, Any]:
    models_file = resources.files("model_router_tools.replay.data").joinpath("sample.models.json")
    meta: dict[str, Any] = json.loads(models_file.read_text())
    return meta


def first_of(records: list[dict[str, Any]], source: str, *, answered: bool = True) -> dict[str, Any]:
    return next(r for r in records if r["source"] == source
                and all(isinstance(o.get("response"), str) for o in r["outcomes"].values()) == answered)


# -- tier maps ----------------------------------------------------------------------------------------


def test_tier_maps_follow_the_vendored_models_file(vendored_tiers: dict[str, Any]) -> None:
    maps = tier_maps(str(sample_path()))
    assert set(maps) == set(vendored_tiers)
    for source, meta in vendored_tiers.items():
        named = {DATA_TIER_NAMES[k]: v for k, v in meta["tiers"].items() if v}
        for tier in TIER_ORDER:
            if tier in named:
                assert maps[source].models[tier] == named[tier]
                assert tier not in maps[source].borrowed


def test_routellm_standard_tier_borrows_the_premium_model(vendored_tiers: dict[str, Any]) -> None:
    for source in ("routellm-gsm8k", "routellm-mmlu", "routellm-mtbench"):
        assert vendored_tiers[source]["tiers"]["standard"] is None
        tier_map = tier_maps(str(sample_path()))[source]
        assert tier_map.borrowed == {Tier.SONNET: Tier.OPUS}
        assert tier_map.models[Tier.SONNET] == vendored_tiers[source]["tiers"]["premium"]


# -- replay -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tier", [Tier.HAIKU, Tier.OPUS])
def test_known_prompt_returns_the_recorded_answer_of_the_tiers_model(
    replay: ReplayProvider, records: list[dict[str, Any]], vendored_tiers: dict[str, Any], tier: Tier
) -> None:
    record = first_of(records, "routellm-gsm8k")
    data_tier = {v: k for k, v in DATA_TIER_NAMES.items()}[tier]
    model = vendored_tiers["routellm-gsm8k"]["tiers"][data_tier]
    reply = replay.converse(make_call(record["prompt"], tier))
    expected = record["outcomes"][model]["response"]
    assert reply.text == expected
    assert reply.recorded_model == model
    assert reply.stop_reason == "end_turn"
    assert reply.provider == "replay"
    assert reply.tokens_estimated is True
    assert reply.output_tokens == math.ceil(len(expected) / 4)
    assert reply.input_tokens == math.ceil(len(record["prompt"]) / 4)


@pytest.mark.parametrize("source", ["routellm-gsm8k", "routellm-mtbench"])
def test_a_tier_the_source_recorded_no_model_for_does_not_answer(
    replay: ReplayProvider, records: list[dict[str, Any]], source: str
) -> None:
    # RouteLLM recorded an economy and a premium model only: GPT-4's answer at Sonnet's price would
    # flatter the savings, so Sonnet is refused here and Classify Request never routes to it.
    record = first_of(records, source)
    with pytest.raises(errors.PromptNotRecordedException) as caught:
        replay.converse(make_call(record["prompt"], Tier.SONNET))
    assert "recorded no model for Sonnet" in str(caught.value)
    limit = replay.available_tiers(make_call(record["prompt"]).messages)
    assert limit is not None and limit.tiers == {Tier.HAIKU, Tier.OPUS}
    assert f"{source} recorded answers for Haiku and Opus only" in limit.reason


def test_a_three_tier_source_or_an_unrecorded_prompt_sets_no_tier_limit(
    replay: ReplayProvider, records: list[dict[str, Any]]
) -> None:
    record = first_of(records, "llmrouter", answered=False)
    assert replay.available_tiers(make_call(record["prompt"]).messages) is None
    assert replay.available_tiers(make_call("What is the airspeed velocity of an unladen swallow?").messages) is None


def test_with_borrowed_tiers_sonnet_replays_the_premium_model_on_routellm(records: list[dict[str, Any]]) -> None:
    # The three-tier path tests and the fault campaign only (REPLAY_BORROWED_TIERS).
    borrowing = ReplayProvider(borrowed_tiers=True)
    record = first_of(records, "routellm-gsm8k")
    haiku = borrowing.converse(make_call(record["prompt"], Tier.HAIKU))
    sonnet = borrowing.converse(make_call(record["prompt"], Tier.SONNET))
    opus = borrowing.converse(make_call(record["prompt"], Tier.OPUS))
    assert sonnet.text == opus.text != haiku.text
    assert borrowing.available_tiers(make_call(record["prompt"]).messages) is None


def test_lookup_ignores_whitespace_differences(replay: ReplayProvider, records: list[dict[str, Any]]) -> None:
    record = first_of(records, "routellm-gsm8k")
    spaced = "  " + record["prompt"].replace(" ", "  \n") + "\n"
    assert replay.converse(make_call(spaced)).text == replay.converse(make_call(record["prompt"])).text


def test_system_prompt_counts_as_input(replay: ReplayProvider, records: list[dict[str, Any]]) -> None:
    record = first_of(records, "routellm-gsm8k")
    system = [{"text": "You are a careful grade-school maths tutor."}]
    reply = replay.converse(make_call(record["prompt"], system=system))
    assert reply.input_tokens == math.ceil(len(record["prompt"] + "\n" + system[0]["text"]) / 4)


def test_mt_bench_second_turn_is_answered_from_turn2_responses(
    replay: ReplayProvider, records: list[dict[str, Any]]
) -> None:
    record = first_of(records, "routellm-mtbench")
    first, second = record["meta"]["turns"][:2]
    tier_map = tier_maps(str(sample_path()))["routellm-mtbench"]
    for tier in tier_map.recorded_tiers:
        model = tier_map.models[tier]
        messages = turns(first, record["outcomes"][model]["response"], second)
        reply = replay.converse(make_call(messages, tier))
        assert reply.text == record["meta"]["turn2_responses"][model]
        assert reply.text != record["outcomes"][model]["response"]
        assert reply.recorded_model == model


def test_mt_bench_unrecorded_second_turn_is_not_answered(replay: ReplayProvider,
                                                         records: list[dict[str, Any]]) -> None:
    record = first_of(records, "routellm-mtbench")
    messages = turns(record["meta"]["turns"][0], "ok", "Something the benchmark never asked.")
    with pytest.raises(errors.PromptNotRecordedException):
        replay.converse(make_call(messages))


def test_mt_bench_later_turns_are_not_answered_with_the_turn_two_answer(
    replay: ReplayProvider, records: list[dict[str, Any]]
) -> None:
    record = first_of(records, "routellm-mtbench")
    first, second = record["meta"]["turns"][:2]
    messages = turns(first, "answer one", second, "answer two", "And a third, unrecorded question?")
    with pytest.raises(errors.PromptNotRecordedException):
        replay.converse(make_call(messages))


def test_unknown_prompt_raises_prompt_not_recorded_with_a_helpful_message(replay: ReplayProvider) -> None:
    with pytest.raises(errors.PromptNotRecordedException) as caught:
        replay.converse(make_call("What is the airspeed velocity of an unladen swallow, really?", Tier.SONNET))
    message = str(caught.value)
    assert f"not among the {len(replay.index)} recorded prompts" in message
    assert "sample.jsonl.gz" in message
    assert "demo --list" in message  # how to find prompts that work
    assert (caught.value.tier, caught.value.model_id) == ("sonnet", DEFAULT_MODEL_IDS[Tier.SONNET])


@pytest.mark.parametrize("source", ["routellm-mmlu", "llmrouter"])
def test_record_without_answer_text_raises_prompt_not_recorded(replay: ReplayProvider, records: list[dict[str, Any]],
                                                                source: str) -> None:
    record = first_of(records, source, answered=False)
    # Pick a record that is also the one the index returns for its prompt (first wins on duplicates).
    record = replay.lookup(make_call(record["prompt"]).messages) or record
    with pytest.raises(errors.PromptNotRecordedException) as caught:
        replay.converse(make_call(record["prompt"], Tier.OPUS))
    assert record["id"] in str(caught.value)
    assert "scores only" in str(caught.value)


@pytest.mark.parametrize("max_tokens", [1, 10, 37])
def test_max_tokens_smaller_than_the_answer_truncates(replay: ReplayProvider, records: list[dict[str, Any]],
                                                      max_tokens: int) -> None:
    record = first_of(records, "routellm-gsm8k")
    full = replay.converse(make_call(record["prompt"])).text
    assert len(full) > max_tokens * 4
    reply = replay.converse(make_call(record["prompt"], inference={"maxTokens": max_tokens}))
    assert reply.stop_reason == "max_tokens"
    assert reply.text == full[: max_tokens * 4]
    assert reply.output_tokens == max_tokens


def test_max_tokens_at_least_the_answer_does_not_truncate(replay: ReplayProvider,
                                                          records: list[dict[str, Any]]) -> None:
    record = first_of(records, "routellm-gsm8k")
    full = replay.converse(make_call(record["prompt"]))
    reply = replay.converse(make_call(record["prompt"], inference={"maxTokens": full.output_tokens}))
    assert (reply.text, reply.stop_reason) == (full.text, "end_turn")


def test_the_reply_carries_no_score(replay: ReplayProvider, records: list[dict[str, Any]]) -> None:
    names = {f.name for f in dataclasses.fields(ModelReply)}
    assert not names & {"score", "scores", "reference", "judge_scores"}
    record = first_of(records, "routellm-gsm8k")
    reply = replay.converse(make_call(record["prompt"]))
    assert set(dataclasses.asdict(reply)) == {"text", "stop_reason", "input_tokens", "output_tokens", "latency_ms",
                                              "provider", "tokens_estimated", "recorded_model", "answer_recorded",
                                              "note", "cache_read_tokens", "cache_write_tokens", "cache_writes_by_ttl",
                                              "service_tier"}


def test_replay_logs_calls() -> None:
    provider = ReplayProvider()
    with pytest.raises(errors.PromptNotRecordedException):
        provider.converse(make_call("not recorded", Tier.OPUS))
    assert provider.log.calls == [("opus", DEFAULT_MODEL_IDS[Tier.OPUS])]


# -- fault plan ---------------------------------------------------------------------------------------


def test_parse_a_full_spec() -> None:
    plan = FaultPlan.parse("throttle=0.2, server_error=0.05 ,sonnet.throttle=1,opus.timeout=0.5,seed=7")
    assert plan.rates == {"throttle": 0.2, "server_error": 0.05}
    assert plan.tier_rates == {(Tier.SONNET, "throttle"): 1.0, (Tier.OPUS, "timeout"): 0.5}
    assert plan.seed == 7
    assert plan.rate(Tier.SONNET, "throttle") == 1.0  # the tier's own rate wins
    assert plan.rate(Tier.HAIKU, "throttle") == 0.2  # else the global one
    assert plan.rate(Tier.OPUS, "timeout") == 0.5
    assert plan.rate(Tier.HAIKU, "timeout") == 0.0  # else none


def test_parse_tolerates_empty_parts_and_defaults_the_seed() -> None:
    plan = FaultPlan.parse(",throttle=1,,")
    assert (plan.rates, plan.tier_rates, plan.seed) == ({"throttle": 1.0}, {}, 0)
    assert FaultPlan.parse("") == FaultPlan()


@pytest.mark.parametrize(("spec", "named"), [
    ("explode=1", "unknown fault 'explode'"), ("throttle=1.5", "'throttle=1.5': the rate is not a number in [0, 1]"),
    ("throttle=-0.1", "'throttle=-0.1': the rate"), ("throttle=often", "'throttle=often': the rate"),
    ("throttle=nan", "'throttle=nan': the rate"), ("throttle", "'throttle' is not NAME=VALUE"),
    ("=1", "'=1' is not NAME=VALUE"), ("haiku.throttle=", "is not NAME=VALUE"),
    ("gpt.throttle=1", "unknown tier 'gpt'"), ("sonnet.explode=1", "unknown fault 'explode'"),
    ("seed=x", "seed='x' is not a whole number"), ("throttle=0.1,throttle=0.2", "'throttle' is given twice"),
])
def test_a_spec_that_means_nothing_is_a_fault_spec_error_naming_the_part(spec: str, named: str) -> None:
    with pytest.raises(FaultSpecError, match=re.escape(named)):
        FaultPlan.parse(spec)


# -- fault injector -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prompts(records: list[dict[str, Any]]) -> list[str]:
    answered = [r for r in records if r["source"] == "routellm-gsm8k"
                and all(isinstance(o.get("response"), str) for o in r["outcomes"].values())]
    return [r["prompt"] for r in answered[:8]]


def outcome(provider: FaultInjectingProvider, call: ModelCall) -> str | None:
    try:
        reply = provider.converse(call)
    except errors.ModelInvocationError as exc:
        return type(exc).__name__
    return "truncated" if reply.stop_reason == "max_tokens" else None


EXPECTED_ERRORS = {
    "throttle": "ThrottlingException",
    "server_error": "ServiceUnavailableException",
    "timeout": "ModelTimeoutException",
    "malformed": "ModelErrorException",
    "content_filtered": "ContentFilteredException",
    "context_overflow": "ContextWindowExceededException",
    "validation": "ValidationException",
    "not_ready": "ModelNotReadyException",
    "truncated": "truncated",
}


def test_every_fault_kind_is_covered() -> None:
    assert set(EXPECTED_ERRORS) == set(FAULT_KINDS)


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_rate_one_always_faults(prompts: list[str], kind: str) -> None:
    provider = FaultInjectingProvider(ReplayProvider(borrowed_tiers=True), FaultPlan.parse(f"{kind}=1"))
    results = [outcome(provider, make_call(p, tier)) for p in prompts[:3] for tier in Tier]
    assert results == [EXPECTED_ERRORS[kind]] * 9
    assert provider.injected == {kind: 9}
    assert len(provider.log) == 9
    # Only truncation reaches the model; every other fault is raised before the call.
    assert len(provider.inner.log) == (9 if kind == "truncated" else 0)  # type: ignore[attr-defined]


def test_injected_errors_name_the_tier_and_model(prompts: list[str]) -> None:
    provider = FaultInjectingProvider(ReplayProvider(), FaultPlan.parse("opus.throttle=1"))
    with pytest.raises(errors.ThrottlingException) as caught:
        provider.converse(make_call(prompts[0], Tier.OPUS))
    assert (caught.value.tier, caught.value.model_id) == ("opus", DEFAULT_MODEL_IDS[Tier.OPUS])
    assert "injected" in str(caught.value)


def test_truncation_halves_the_real_answer(replay: ReplayProvider, prompts: list[str]) -> None:
    full = replay.converse(make_call(prompts[0]))
    provider = FaultInjectingProvider(ReplayProvider(), FaultPlan.parse("truncated=1"))
    cut = provider.converse(make_call(prompts[0]))
    assert cut.text == full.text[: len(full.text) // 2]
    assert cut.output_tokens == full.output_tokens // 2
    assert cut.stop_reason == "max_tokens"


def test_rate_zero_never_faults(prompts: list[str]) -> None:
    spec = ",".join(f"{kind}=0" for kind in FAULT_KINDS)
    provider = FaultInjectingProvider(ReplayProvider(borrowed_tiers=True), FaultPlan.parse(spec))
    assert [outcome(provider, make_call(p, tier)) for p in prompts for tier in Tier] == [None] * (3 * len(prompts))
    assert provider.injected == {}


def test_per_tier_rates_apply_to_that_tier_only(prompts: list[str]) -> None:
    provider = FaultInjectingProvider(ReplayProvider(), FaultPlan.parse("sonnet.throttle=1,haiku.timeout=1"))
    for prompt in prompts[:3]:
        assert outcome(provider, make_call(prompt, Tier.HAIKU)) == "ModelTimeoutException"
        assert outcome(provider, make_call(prompt, Tier.SONNET)) == "ThrottlingException"
        assert outcome(provider, make_call(prompt, Tier.OPUS)) is None
    assert dict(provider.injected) == {"timeout": 3, "throttle": 3}


def sequence(seed: int, prompts: list[str], order: list[tuple[int, Tier]]) -> dict[tuple[int, Tier], list[str | None]]:
    provider = FaultInjectingProvider(ReplayProvider(),
                                      FaultPlan.parse(f"throttle=0.3,timeout=0.2,truncated=0.2,seed={seed}"))
    seen: dict[tuple[int, Tier], list[str | None]] = {}
    for index, tier in order:
        seen.setdefault((index, tier), []).append(outcome(provider, make_call(prompts[index], tier)))
    return seen


def test_same_seed_same_faults_on_the_same_call_sequence(prompts: list[str]) -> None:
    order = [(i % len(prompts), tier) for i in range(40) for tier in Tier]
    first, second = sequence(11, prompts, order), sequence(11, prompts, order)
    assert first == second
    flat = [o for outcomes in first.values() for o in outcomes]
    assert None in flat and len(set(flat)) >= 3, "the rates should produce a mix of outcomes"


def test_draws_do_not_depend_on_how_calls_interleave(prompts: list[str]) -> None:
    # Seeded per (prompt, tier, call number): another order of the same calls sees the same faults per prompt.
    order = [(i % len(prompts), tier) for i in range(40) for tier in Tier]
    assert sequence(11, prompts, order) == sequence(11, prompts, sorted(order, key=lambda c: (c[1].rank, c[0])))


def test_another_seed_gives_other_faults(prompts: list[str]) -> None:
    order = [(i % len(prompts), tier) for i in range(40) for tier in Tier]
    assert sequence(11, prompts, order) != sequence(12, prompts, order)


def test_fault_rate_is_roughly_the_configured_rate(prompts: list[str]) -> None:
    provider = FaultInjectingProvider(ReplayProvider(), FaultPlan.parse("throttle=0.3,seed=5"))
    results = [outcome(provider, make_call(prompts[i % len(prompts)], Tier.HAIKU)) for i in range(800)]
    rate = results.count("ThrottlingException") / len(results)
    assert 0.25 < rate < 0.35, rate  # 800 Bernoulli(0.3) draws: sd ~0.016
