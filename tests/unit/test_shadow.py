"""Shadow evaluation's runtime parts without the engine: sampling, the budget ledger, the judge (a real
bedrock-runtime client stubbed with botocore's Stubber for the Converse judge), outcome records and the
shadow events."""

from __future__ import annotations

import datetime
import functools
import json
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from model_router.circuit import BreakerPolicy, CircuitBreaker, CircuitBreakingProvider, MemoryBreakerStore
from model_router.contracts.request import schema, validate_request
from model_router.providers.base import ModelCall, ModelReply
from model_router.providers.bedrock import BedrockConverseProvider
from model_router.settings import Settings, SettingsError
from model_router.shadow import judge as judge_module
from model_router.shadow.budget import DynamoDBLedger, MemoryLedger
from model_router.shadow.judge import (
    PAIRWISE_SYSTEM,
    ConverseJudge,
    JudgeError,
    JudgeInput,
    judge_estimate_usd,
    judge_for,
    parse_pairwise,
    parse_single,
)
from model_router.shadow.outcome import derived_complexity, outcome_record, record_id
from model_router.shadow.sampling import sample_point, sample_probability, shadow_decision, uncertainty
from model_router.shadow.steps import failure_step, reserve_step
from model_router.steps.classify import classify_step
from model_router.steps.events import InvokerEvent, JudgeEvent, MalformedEvent, ShadowLedgerEvent
from model_router.tiers import Tier
from model_router_tools.local.template import load_template

PROMPT = "A train leaves at 3 pm and travels 120 km at 60 km/h. When does it arrive?"
NOW = datetime.datetime(2026, 12, 2, 10, 0, tzinfo=datetime.UTC)


def settings(**env: str) -> Settings:
    return Settings.from_mapping(env)


@functools.cache
def _classified(raw: str) -> dict[str, Any]:
    state = classify_step({"request": json.loads(raw)}, Settings.from_mapping({"DEFAULT_STRATEGY": "heuristic"}))
    assert state["valid"], state
    return state


def accepted_state(request_id: str = "req-1", confidence: float = 0.9, threshold: float = 0.8,
                   routing: dict[str, Any] | None = None) -> dict[str, Any]:
    raw = {"prompt": PROMPT, "request_id": request_id, **({"routing": routing} if routing else {})}
    classified = _classified(json.dumps(raw))
    return {
        "request": classified["request"], "request_id": request_id,
        "classification": classified["classification"],
        "plan": {**classified["plan"], "threshold": threshold},
        "attempts": [{"attempt": 1, "tier": "haiku", "model_id": Settings().model_ids[Tier.HAIKU],
                      "outcome": "accepted", "input_tokens": 25, "output_tokens": 40, "cost_usd": 0.000225,
                      "latency_ms": 300.0, "note": "a provider note"}],
        "best": {"attempt": 1, "tier": "haiku", "model_id": Settings().model_ids[Tier.HAIKU],
                 "answer": "It arrives at 5 pm. #### 5", "confidence": confidence},
        "cost": {"premium_estimate_usd": 0.0011},
        "status": "answered",
    }


# -- sampling ---------------------------------------------------------------------------------------------


def test_the_sample_is_fixed_by_the_request_id_and_its_share_is_the_rate() -> None:
    assert sample_point("abc") == sample_point("abc") != sample_point("abd")
    config = settings(SHADOW_SAMPLE_RATE="0.25")
    sampled = [shadow_decision(accepted_state(f"r{i}"), config, "answered")["sampled"] for i in range(4000)]
    # Binomial(4000, 0.25): mean 1000, sd 27; 5 sd either side.
    assert 865 <= sum(sampled) <= 1135
    again = [shadow_decision(accepted_state(f"r{i}"), config, "answered")["sampled"] for i in range(4000)]
    assert sampled == again


def test_rate_zero_samples_nothing_and_a_request_may_opt_out() -> None:
    assert not shadow_decision(accepted_state(), settings(), "answered")["sampled"]
    everything = settings(SHADOW_SAMPLE_RATE="1")
    assert shadow_decision(accepted_state(), everything, "answered")["sampled"]
    opted_out = shadow_decision(accepted_state(routing={"shadow": False}), everything, "answered")
    assert not opted_out["sampled"] and "opted out" in opted_out["skipped"]
    blocked = shadow_decision(accepted_state(), everything, "blocked")
    assert not blocked["sampled"] and blocked["skipped"] == "status blocked"


def test_the_request_contract_takes_routing_shadow_as_a_boolean_only() -> None:
    assert validate_request({"prompt": "hi", "routing": {"shadow": False}})["routing"]["shadow"] is False
    from model_router.contracts.request import InvalidRequest
    with pytest.raises(InvalidRequest) as caught:
        validate_request({"prompt": "hi", "routing": {"shadow": "no"}})
    assert caught.value.field == "routing.shadow"


def test_the_uncertainty_sampler_prefers_answers_near_the_threshold_and_never_gives_zero() -> None:
    assert uncertainty(0.8, 0.8) == 1.0
    assert uncertainty(0.0, 0.8) == 0.0
    near, far = (sample_probability("uncertainty", 0.1, c, 0.8) for c in (0.79, 0.99))
    assert near > far > 0
    assert far >= 0.1 * 0.2  # the floor: every request keeps a chance (its inverse is the estimate's weight)
    assert sample_probability("uncertainty", 0.9, 0.8, 0.8) == 1.0  # capped
    assert sample_probability("uniform", 0.1, 0.99, 0.8) == 0.1
    # Spread evenly over [0, 1], the mean probability stays near the rate.
    mean = statistics.fmean(sample_probability("uncertainty", 0.2, c / 1000, 0.5) for c in range(1001))
    assert mean == pytest.approx(0.2, abs=0.01)


@pytest.mark.parametrize(("env", "named"), [({"SHADOW_SAMPLE_RATE": "1.5"}, "SHADOW_SAMPLE_RATE"),
                                            ({"SHADOW_SAMPLER": "random"}, "SHADOW_SAMPLER"),
                                            ({"STORE_SHADOW_PROMPTS": "yes"}, "STORE_SHADOW_PROMPTS"),
                                            ({"SHADOW_MAX_USD_PER_DAY": "-1"}, "SHADOW_MAX_USD_PER_DAY")])
def test_bad_shadow_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_mapping(env)


# -- the budget ---------------------------------------------------------------------------------------------


def test_the_memory_ledger_reserves_within_the_cap_and_settles() -> None:
    ledger = MemoryLedger()
    assert ledger.reserve("2026-12-02", 0.6, 1.0) == (True, 0.6)
    assert ledger.reserve("2026-12-02", 0.6, 1.0) == (False, 0.6)  # would pass the cap
    assert ledger.reserve("2026-12-03", 0.6, 1.0)[0]  # a new day starts at zero
    assert ledger.settle("2026-12-02", -0.2) == pytest.approx(0.4)
    assert ledger.reserve("2026-12-02", 0.6, 1.0) == (True, pytest.approx(1.0))


@pytest.fixture
def budget_table() -> Iterator[Any]:
    from model_router_tools.local.engine import PROJECT_ROOT

    props = load_template(PROJECT_ROOT / "template.yaml")["Resources"]["ShadowBudgetTable"]["Properties"]
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="budget", BillingMode=props["BillingMode"],
                            AttributeDefinitions=props["AttributeDefinitions"], KeySchema=props["KeySchema"])
        yield client


def test_the_dynamodb_ledger_caps_the_day_atomically_and_sets_a_ttl(budget_table: Any) -> None:
    ledger = DynamoDBLedger("budget", budget_table)
    assert ledger.reserve("2026-12-02", 0.004, 0.01) == (True, pytest.approx(0.004))
    assert ledger.reserve("2026-12-02", 0.004, 0.01) == (True, pytest.approx(0.008))
    assert ledger.reserve("2026-12-02", 0.004, 0.01) == (False, pytest.approx(0.008))
    assert ledger.reserve("2026-12-02", 0.5, 0.01)[0] is False  # more than the cap alone
    assert ledger.settle("2026-12-02", -0.003) == pytest.approx(0.005)
    item = budget_table.get_item(TableName="budget", Key={"pk": {"S": "shadow-spend#2026-12-02"}})["Item"]
    assert float(item["spent_usd"]["N"]) == pytest.approx(0.005)
    expires = datetime.datetime.fromtimestamp(int(item["expires_at"]["N"]), tz=datetime.UTC)
    assert expires.date() == datetime.date(2027, 1, 6)  # 35 days on: a month of spend can be read back


def test_reserve_step_lists_the_other_tiers_and_stops_when_the_day_is_spent() -> None:
    config = settings(SHADOW_SAMPLE_RATE="1", SHADOW_MAX_USD_PER_DAY="0.05")
    ledger = MemoryLedger()
    first = reserve_step(accepted_state(), config, ledger, NOW)
    assert first["allowed"] and first["tiers_to_ask"] == ["sonnet", "opus"] and first["day"] == "2026-12-02"
    assert 0 < first["reserved_usd"] < 0.05
    spent = 0
    while reserve_step(accepted_state(), config, ledger, NOW)["allowed"]:
        spent += 1
    last = reserve_step(accepted_state(), config, ledger, NOW)
    assert not last["allowed"] and last["tiers_to_ask"] == [] and "budget is spent" in last["reason"]
    assert ledger.spent("2026-12-02") <= 0.05


# -- the judge --------------------------------------------------------------------------------------------------


def test_verdicts_are_read_from_the_last_rating_lines_and_out_of_range_ones_are_refused() -> None:
    assert parse_pairwise("A is better.\nRating A: [[8]]\nRating B: [[3.5]]") == (8.0, 3.5)
    assert parse_pairwise("Format: Rating A: [[n]]. Then Rating A: [[2]] Rating B: [[9]]") == (2.0, 9.0)
    assert parse_pairwise("Rating A: [[11]]\nRating B: [[5]]") == (None, 5.0)
    assert parse_pairwise("I cannot judge this.") == (None, None)
    assert parse_single("Good.\nRating: [[7]]") == 7.0 and parse_single("Rating: 7") is None


@pytest.fixture
def bedrock(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[BedrockConverseProvider, Stubber]]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_CONFIG_FILE": str(tmp_path / "none"),
                        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    provider = BedrockConverseProvider(region="us-east-1", connect_timeout_s=5.0, read_timeout_s=100.0)
    with Stubber(provider.client) as stub:
        yield provider, stub
        stub.assert_no_pending_responses()


def verdict(text: str, input_tokens: int = 500, output_tokens: int = 80) -> dict[str, Any]:
    return {"output": {"message": {"role": "assistant", "content": [{"text": text}]}}, "stopReason": "end_turn",
            "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens,
                      "totalTokens": input_tokens + output_tokens}, "metrics": {"latencyMs": 900}}


OPEN_QUESTION = validate_request({"prompt": "Write a haiku about autumn."})
ANSWERS = {Tier.HAIKU: "Leaves fall, red and gold.", Tier.OPUS: "Crimson leaves drift down / ..."}


def test_the_converse_judge_asks_twice_with_the_positions_swapped_and_averages(
        bedrock: tuple[BedrockConverseProvider, Stubber]) -> None:
    provider, stub = bedrock
    config = settings()
    judge = ConverseJudge(provider, config)
    # A judge biased to position A by 2 points: the swap cancels it.
    first_params = {"modelId": config.judge_model_id, "system": [{"text": PAIRWISE_SYSTEM}],
                    "messages": [{"role": "user", "content": [{"text": judge_module.pairwise_prompt(
                        judge_module.conversation_text(OPEN_QUESTION), ANSWERS[Tier.OPUS], ANSWERS[Tier.HAIKU])}]}],
                    "inferenceConfig": {"maxTokens": 512, "temperature": 0.0}}
    stub.add_response("converse", verdict("Rating A: [[9]]\nRating B: [[6]]"), first_params)
    second_params = {**first_params, "messages": [{"role": "user", "content": [{"text": judge_module.pairwise_prompt(
        judge_module.conversation_text(OPEN_QUESTION), ANSWERS[Tier.HAIKU], ANSWERS[Tier.OPUS])}]}]}
    stub.add_response("converse", verdict("Rating A: [[8]]\nRating B: [[7]]"), second_params)
    result = judge.judge(JudgeInput(OPEN_QUESTION, ANSWERS))
    assert result.method == "llm" and result.calls == 2 and result.model_id == config.judge_model_id
    assert result.verdicts[Tier.HAIKU].score == pytest.approx((6 + 8) / 20)  # B first, A second
    assert result.verdicts[Tier.OPUS].score == pytest.approx((9 + 7) / 20)
    price = judge_module.price_for(config.judge_model_id)
    assert result.cost_usd == pytest.approx(2 * price.cost(500, 80))
    recorded = result.to_dict()["judge"]
    assert recorded["prompt_version"] == judge_module.PROMPT_VERSION and recorded["unreadable_verdicts"] == 0


def test_an_unreadable_verdict_is_counted_and_never_guessed(bedrock: tuple[BedrockConverseProvider, Stubber]) -> None:
    provider, stub = bedrock
    judge = ConverseJudge(provider, settings())
    stub.add_response("converse", verdict("Both are fine."))
    stub.add_response("converse", verdict("Rating A: [[5]]\nRating B: [[9]]"))  # the swapped one reads
    one = judge.judge(JudgeInput(OPEN_QUESTION, ANSWERS))
    assert one.unreadable == 1 and one.verdicts[Tier.HAIKU].score == 0.5 and one.verdicts[Tier.OPUS].score == 0.9
    stub.add_response("converse", verdict("no idea"))
    stub.add_response("converse", verdict("Rating: [[5]]"))
    none = judge.judge(JudgeInput(OPEN_QUESTION, ANSWERS))
    assert none.unreadable == 2
    assert none.verdicts[Tier.HAIKU].score is None and "could not be read" in (none.verdicts[Tier.HAIKU].error or "")
    assert none.verdicts[Tier.OPUS].score is None


def test_a_judge_error_propagates_as_the_named_bedrock_error(bedrock: tuple[BedrockConverseProvider, Stubber]) -> None:
    provider, stub = bedrock
    stub.add_client_error("converse", "ThrottlingException", "Too many requests", http_status_code=429)
    from model_router import errors
    with pytest.raises(errors.ThrottlingException):  # the shadow ASL retries it, then Record Shadow Failure
        ConverseJudge(provider, settings()).judge(JudgeInput(OPEN_QUESTION, ANSWERS))


class NoCalls:
    name = "none"

    def converse(self, call: ModelCall) -> ModelReply:
        raise AssertionError("a checkable answer must not cost a judge call")


def test_final_answers_are_checked_against_the_reference_answer_without_a_judge_call() -> None:
    request = validate_request({"prompt": PROMPT})
    answers = {Tier.HAIKU: "2 hours, so 5 pm. #### 5", Tier.SONNET: "It takes 3 hours. #### 6",
               Tier.OPUS: "120 / 60 = 2 hours after 3 pm. #### 5"}
    result = ConverseJudge(NoCalls(), settings()).judge(JudgeInput(request, answers))  # type: ignore[arg-type]
    assert result.method == "final_answer" and result.calls == 0
    assert {t: v.score for t, v in result.verdicts.items()} == {Tier.OPUS: 1.0, Tier.HAIKU: 1.0, Tier.SONNET: 0.0}
    # The reference's own arithmetic is wrong: the check does not apply (the LLM judge would be asked).
    wrong = {Tier.HAIKU: "#### 5", Tier.OPUS: "120 / 60 = 3 hours. #### 6"}
    assert judge_module.final_answer_verdicts(wrong, Tier.OPUS) is None


def test_answers_that_fail_response_format_score_zero_before_anything_else() -> None:
    request = validate_request({"prompt": "Give a JSON object with a name.", "response_format": {
        "type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}})
    answers = {Tier.HAIKU: "name: Ada", Tier.OPUS: '{"wrong": 1}'}
    result = ConverseJudge(NoCalls(), settings()).judge(JudgeInput(request, answers))  # type: ignore[arg-type]
    assert result.method == "response_format" and result.calls == 0
    assert result.verdicts[Tier.HAIKU].score == 0.0 and "json_invalid" in (result.verdicts[Tier.HAIKU].error or "")
    opus = result.verdicts[Tier.OPUS]
    assert opus.score == 0.0 and "json_schema_violation" in (opus.error or "")


def test_judges_come_from_a_registry_and_only_converse_ships_in_the_layer() -> None:
    with pytest.raises(JudgeError, match="'magic' is not a registered judge"):
        judge_for(settings(JUDGE="magic"))
    assert judge_estimate_usd(settings(), 100, 100, 2) > 0


# -- outcome records ---------------------------------------------------------------------------------------


def judged_state(**env: str) -> dict[str, Any]:
    state = accepted_state()
    state["shadow"] = {"sampled": True, "sampler": "uniform", "probability": 0.25}
    state["budget"] = {"value": {"allowed": True, "day": "2026-12-02", "reserved_usd": 0.01}}
    state["answers"] = [
        {"tier": "sonnet", "model_id": Settings().model_ids[Tier.SONNET], "answer": "5 pm #### 5",
         "input_tokens": 25, "output_tokens": 30, "cost_usd": 0.0005, "latency_ms": 500.0},
        {"tier": "opus", "failed": True, "error": "ThrottlingException",
         "cause": json.dumps({"errorMessage": "slow down", "errorType": "ThrottlingException"})},
    ]
    state["verdicts"] = {"value": {"verdicts": {"haiku": {"score": 1.0, "judged_by": "final_answer", "error": None},
                                                "sonnet": {"score": 1.0, "judged_by": "final_answer", "error": None}},
                                   "judge": {"method": "final_answer", "model_id": None, "prompt_version": "judge-v1",
                                             "cost_usd": 0.0, "calls": 0}}}
    return state


def test_an_outcome_record_matches_its_schema_and_holds_no_text_by_default() -> None:
    record = outcome_record(judged_state(), settings(), NOW)
    jsonschema.validate(record, schema("outcome"))
    assert record["prompt"] is None and all(o["response"] is None for o in record["outcomes"].values())
    text = json.dumps(record)
    assert "train leaves" not in text and "5 pm" not in text
    assert record["id"] == record_id("req-1") and record["source"] == "shadow"
    opus = record["outcomes"][Settings().model_ids[Tier.OPUS]]
    assert opus["score"] is None and opus["error"] == "ThrottlingException: slow down"  # failed, not lost
    assert record["meta"]["route"]["start_tier"] == "haiku" and record["meta"]["sample_probability"] == 0.25
    assert record["meta"]["shadow_cost_usd"] == pytest.approx(0.0005)  # the ask it paid; the routed call is not
    assert record["meta"]["tiers"]["standard"] == Settings().model_ids[Tier.SONNET]
    assert record["meta"]["features"]["hashed"] and record["meta"]["notes"] == ["a provider note"]


def test_store_shadow_prompts_keeps_the_prompt_and_the_answers() -> None:
    record = outcome_record(judged_state(), settings(STORE_SHADOW_PROMPTS="true"), NOW)
    jsonschema.validate(record, schema("outcome"))
    assert record["prompt"] == PROMPT
    assert record["outcomes"][Settings().model_ids[Tier.HAIKU]]["response"] == "It arrives at 5 pm. #### 5"


def test_complexity_is_derived_as_the_shared_data_derives_it() -> None:
    assert derived_complexity({Tier.HAIKU: 0.7, Tier.OPUS: 1.0}) == "simple"
    assert derived_complexity({Tier.HAIKU: 0.2, Tier.SONNET: 0.5, Tier.OPUS: 1.0}) == "moderate"
    assert derived_complexity({Tier.HAIKU: 0.2, Tier.SONNET: 0.4, Tier.OPUS: 0.1}) == "complex"
    assert derived_complexity({Tier.HAIKU: None, Tier.OPUS: 1.0}) == "unknown"


def test_a_failure_is_described_for_the_count_and_the_console() -> None:
    failure = failure_step({"request_id": "r", "error": {"Error": "Lambda.Unknown",
                                                         "Cause": json.dumps({"errorMessage": "boom"})}})
    assert failure == {"status": "failed", "request_id": "r", "error": "Lambda.Unknown", "cause": "boom"}


# -- events and the circuit breaker ------------------------------------------------------------------------


def test_shadow_events_name_the_malformed_field() -> None:
    with pytest.raises(MalformedEvent, match=r"^step: 'judge' is not one of"):
        ShadowLedgerEvent.from_event({"step": "judge", "shadow": {}, "execution_id": "x"})
    with pytest.raises(MalformedEvent, match=r"^shadow\.best: missing"):
        ShadowLedgerEvent.from_event({"step": "reserve", "execution_id": "x", "shadow": {
            k: {} for k in ("request", "classification", "plan", "attempts", "shadow")}})
    with pytest.raises(MalformedEvent, match=r"^answers\[0\]\.tier"):
        JudgeEvent.from_event({"request": {"messages": [{}]}, "request_id": "r", "execution_id": "x",
                               "best": {"tier": "opus"}, "attempts": [{}], "answers": [{"tier": "gpt"}]})
    with pytest.raises(MalformedEvent, match=r"^shadow: expected a boolean"):
        InvokerEvent.from_event({"request": {"messages": [{}]}, "request_id": "r", "execution_id": "x",
                                 "shadow": "yes"})


class Throttled:
    name = "throttled"

    def converse(self, call: ModelCall) -> ModelReply:
        from model_router import errors
        raise errors.ThrottlingException("slow down", tier=call.tier.value, model_id=call.model_id)


def test_shadow_calls_respect_an_open_circuit_but_never_open_one() -> None:
    policy = BreakerPolicy(min_calls=3, failure_rate=0.5)
    breaker = CircuitBreaker(MemoryBreakerStore(), policy)
    call = ModelCall(tier=Tier.SONNET, model_id="m", messages=[])
    shadow = CircuitBreakingProvider(Throttled(), breaker, count=False)
    for _ in range(10):
        with pytest.raises(Exception, match="slow down"):
            shadow.converse(call)
    routed = CircuitBreakingProvider(Throttled(), breaker)
    for _ in range(3):
        with pytest.raises(Exception, match="slow down"):
            routed.converse(call)  # only routed calls count: the third trips it
    from model_router import errors
    with pytest.raises(errors.CircuitOpenException):
        shadow.converse(call)
