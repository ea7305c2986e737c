"""Every path of statemachine/router.asl.json, executed for real on the local engine (moto's interpreter,
the real handlers, the replay provider, and the fault injector where a path needs a failure).

Expectations come from the ASL (state names, Choice rules, Retry policies) and from the decision rules in
src/model_router/steps/decide.py and scoring.py; recorded answers are picked by those rules, not from a run.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from model_router.contracts.request import prompt_text, validate_result
from model_router.scoring.score import score_answer
from model_router.settings import DEFAULT_MODEL_IDS
from model_router.steps.classify import classify_step
from model_router.tiers import PREMIUM_TIER, Tier
from model_router_tools.local.engine import ExecutionResult, LocalEngine
from model_router_tools.replay.datasets import sample_path, tier_maps
from model_router_tools.replay.provider import normalise

# The engine silences Powertools' "No application metrics" warning; pytest resets filters per test.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

ASL: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "statemachine" / "router.asl.json").read_text()
)
STATES: dict[str, Any] = ASL["States"]
INVOKE = {Tier.HAIKU: "Invoke Haiku", Tier.SONNET: "Invoke Sonnet", Tier.OPUS: "Invoke Opus"}
INVOKER_FUNCTIONS = {Tier.HAIKU: "HaikuInvokerFunction", Tier.SONNET: "SonnetInvokerFunction",
                     Tier.OPUS: "OpusInvokerFunction"}
THRESHOLD = 0.8  # the template's ConfidenceThreshold default
FAST_S = 2.0  # Retry waits are recorded, not slept: even 9 retries must finish well within this

START = ["Classify Request", "Route By Complexity"]
SCORED = ["Score Answer", "Confident Enough?"]
FAILED = ["Record Failed Attempt", "Fall Back Or Fail?"]
DONE = ["Shadow This Request?", "Build Result"]  # no shadowing by default: one Choice, then the result


# -- expectations from the ASL ----------------------------------------------------------------------


def retrier(state: str, error: str) -> dict[str, Any] | None:
    for rule in STATES[state].get("Retry", []):
        if error in rule["ErrorEquals"] or "States.ALL" in rule["ErrorEquals"]:
            return dict(rule)
    return None


def retries(state: str, error: str) -> int:
    rule = retrier(state, error)
    return int(rule.get("MaxAttempts", 3)) if rule else 0


def wait_caps(state: str, error: str) -> list[float]:
    """Upper bound of each Retry wait: IntervalSeconds x BackoffRate^n, capped at MaxDelaySeconds (full jitter
    draws from [0, cap])."""
    rule = retrier(state, error)
    assert rule is not None
    return [min(rule.get("IntervalSeconds", 1) * rule.get("BackoffRate", 2.0) ** n,
                rule.get("MaxDelaySeconds", math.inf)) for n in range(rule.get("MaxAttempts", 3))]


def successors(name: str) -> set[str]:
    state = STATES[name]
    targets = {state[key] for key in ("Next", "Default") if key in state}
    targets |= {rule["Next"] for rule in state.get("Choices", []) + state.get("Catch", [])}
    return targets


def choice_edges() -> set[tuple[str, str]]:
    return {(name, target) for name, state in STATES.items() if state["Type"] == "Choice"
            for target in successors(name)}


# -- the data, picked by the decision rules ----------------------------------------------------------


def tier_model(record: dict[str, Any], tier: Tier) -> str:
    return tier_maps(str(sample_path()))[record["source"]].models[tier]


def recorded(record: dict[str, Any], tier: Tier) -> str:
    answer: str = record["outcomes"][tier_model(record, tier)]["response"]
    return answer


def classify(engine: LocalEngine, request: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = classify_step({"request": request}, engine.function_settings("ClassifierFunction"))
    assert state["valid"], state
    return state


def confidence(state: dict[str, Any], tier: Tier, answer: str) -> float:
    return score_answer(answer, stop_reason="end_turn", tier=tier, prompt=prompt_text(state["request"]),
                        complexity=state["classification"]["complexity"],
                        signals=state["classification"]["signals"],
                        response_format=state["request"].get("response_format")).confidence


@pytest.fixture(scope="module", autouse=True)
def heuristic_scorer() -> Any:
    """These paths are built on the heuristic scorer's arithmetic (prior x penalties); the calibrated
    scorer has its own tests and runs through the real workflow in tests/offline/test_eval.py."""
    import model_router.scoring.score as scoring

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scoring, "load_scorer_model", lambda: None)
        yield


@pytest.fixture(scope="module")
def unique(answered_records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Answered records whose prompt is recorded once (the replay index keeps the first of duplicates)."""
    counts = Counter(normalise(r["prompt"]) for r in answered_records)
    return [r for r in answered_records if counts[normalise(r["prompt"])] == 1]


@pytest.fixture(scope="module")
def simple_record(engine: LocalEngine, unique: list[dict[str, Any]]) -> dict[str, Any]:
    """Classified simple (starts at Haiku), and every tier's recorded answer clears the threshold."""
    for record in unique:
        state = classify(engine, {"prompt": record["prompt"]})
        if state["classification"]["complexity"] == "simple" and state["route"]["tier"] == "haiku" and all(
            confidence(state, tier, recorded(record, tier)) >= THRESHOLD for tier in Tier
        ):
            return record
    pytest.fail("no simple record whose answers all clear the threshold")


@pytest.fixture(scope="module")
def moderate_record(engine: LocalEngine, unique: list[dict[str, Any]]) -> dict[str, Any]:
    """A GSM8K record classified moderate (Sonnet) whose Sonnet and Opus answers clear the threshold."""
    for record in unique:
        if record["source"] != "routellm-gsm8k":
            continue
        state = classify(engine, {"prompt": record["prompt"]})
        if state["classification"]["complexity"] == "moderate" and all(
            confidence(state, tier, recorded(record, tier)) >= THRESHOLD for tier in (Tier.SONNET, Tier.OPUS)
        ):
            return record
    pytest.fail("no moderate GSM8K record")


@pytest.fixture(scope="module")
def mt_bench_record(unique: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in unique if r["source"] == "routellm-mtbench" and len(r["meta"].get("turns") or []) >= 2)


# -- running and checking ------------------------------------------------------------------------------


class Run:
    """One execution with what it cost: provider calls per tier, Lambda invocations, wall time."""

    def __init__(self, engine: LocalEngine, request: Any):
        # The (cached) providers the invoker handlers will get; today the three tiers share one.
        providers = {id(p): p for p in (engine.function_provider(f)
                                        for f in INVOKER_FUNCTIONS.values())}.values()
        calls_before = [len(p.log.calls) for p in providers]  # type: ignore[attr-defined]
        invocations_before = dict(engine.invocations)
        started = time.perf_counter()
        self.result: ExecutionResult = engine.run(request)
        self.seconds = time.perf_counter() - started
        self.calls = Counter(Tier(tier) for p, before in zip(providers, calls_before, strict=True)
                             for tier, _ in p.log.calls[before:])  # type: ignore[attr-defined]
        self.invocations = {k: v - invocations_before.get(k, 0) for k, v in engine.invocations.items()
                            if v - invocations_before.get(k, 0)}


def scheduled_per_state(result: ExecutionResult) -> Counter[str]:
    """TaskScheduled events per state: 1 + the number of retries."""
    counts: Counter[str] = Counter()
    current = ""
    for event in result.events:
        if "stateEnteredEventDetails" in event:
            current = event["stateEnteredEventDetails"]["name"]
        if _type(event) == "TaskScheduled":
            counts[current] += 1
    return counts


def _type(event: dict[str, Any]) -> str:
    return str(getattr(event["type"], "value", event["type"]))


def check_history(result: ExecutionResult) -> None:
    types = [_type(e) for e in result.events]
    assert types[0] == "ExecutionStarted"
    assert types[-1] == ("ExecutionSucceeded" if result.status == "SUCCEEDED" else "ExecutionFailed")
    entered = [(e["stateEnteredEventDetails"]["name"], _type(e)) for e in result.events
               if "stateEnteredEventDetails" in e]
    assert [name for name, _ in entered] == result.states_entered
    for name, event_type in entered:
        assert event_type == f"{STATES[name]['Type']}StateEntered", (name, event_type)
    assert result.states_entered[0] == ASL["StartAt"]
    for here, there in itertools.pairwise(result.states_entered):
        assert there in successors(here), f"{here} -> {there} is not a transition of the ASL"
    last = STATES[result.states_entered[-1]]
    assert last.get("End") or last["Type"] == "Fail"


def attempts_of(output_or_cause: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(a["tier"], a["outcome"], (a["error"] or {}).get("type")) for a in output_or_cause["attempts"]]


def premium_price() -> tuple[float, float]:
    """USD per token of the default premium model, from prices.json by hand (us. profile: +10% if marked)."""
    table = json.loads(resources.files("model_router.data").joinpath("prices.json").read_text())
    model_id = DEFAULT_MODEL_IDS[PREMIUM_TIER]
    entry = table["models"][model_id.split(".", 1)[1]]
    factor = 1 + table["geo_premium"] if entry["geo_premium"] else 1
    return entry["input"] * factor / 1e6, entry["output"] * factor / 1e6


def check_output(result: ExecutionResult, *, status: str, tier: Tier,
                 attempts: list[tuple[str, str, str | None]], states: list[str]) -> dict[str, Any]:
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    out: dict[str, Any] = result.output
    validate_result(out)
    assert (out["status"], out["tier"]) == (status, tier.value), out["reason"]
    assert attempts_of(out) == attempts
    assert result.states_entered == states
    check_history(result)

    assert [a["attempt"] for a in out["attempts"]] == list(range(1, len(attempts) + 1))
    chosen = next(a for a in out["attempts"] if a["outcome"] == "accepted")
    assert (chosen["tier"], chosen["model_id"], chosen["confidence"]) == (tier.value, out["model_id"],
                                                                         out["confidence"])
    assert out["model_id"] == DEFAULT_MODEL_IDS[tier]
    for attempt in out["attempts"]:
        assert "score" not in attempt and "answer" not in attempt
        if attempt["outcome"] == "failed":
            assert attempt["cost_usd"] == 0 and attempt["confidence"] is None

    cost, usage = out["cost"], out["usage"]
    assert cost["models_usd"] == pytest.approx(sum(a["cost_usd"] for a in out["attempts"]), abs=1e-8)
    assert cost["total_usd"] == pytest.approx(cost["models_usd"] + cost["orchestration_usd"], abs=2e-8)
    assert cost["orchestration_usd"] > 0
    assert cost["savings_usd"] == pytest.approx(cost["premium_estimate_usd"] - cost["models_usd"], abs=2e-8)
    premium = next((a for a in out["attempts"] if a["tier"] == PREMIUM_TIER.value and a["outcome"] != "failed"),
                   None)
    if premium is not None:
        assert cost["premium_estimate_usd"] == pytest.approx(premium["cost_usd"], abs=1e-8)
    else:
        per_in, per_out = premium_price()
        expected = chosen["input_tokens"] * per_in + chosen["output_tokens"] * per_out
        assert cost["premium_estimate_usd"] == pytest.approx(expected, abs=1e-8)
    assert usage == {"input_tokens": sum(a["input_tokens"] for a in out["attempts"]),
                     "output_tokens": sum(a["output_tokens"] for a in out["attempts"]),
                     # Replay reports no prompt-cache tokens (docs/costs.md).
                     "cache_read_input_tokens": 0, "cache_write_input_tokens": 0}
    assert out["notes"] and "Replay" in out["notes"][0]
    return out


def check_failure(result: ExecutionResult, *, error: str, attempts: list[tuple[str, str, str | None]],
                  states: list[str]) -> dict[str, Any]:
    assert result.status == "FAILED"
    assert result.error == error
    assert result.output is None
    assert result.states_entered == states
    check_history(result)
    cause: dict[str, Any] = result.cause_json()
    assert attempts_of(cause) == attempts
    assert all(a["outcome"] == "failed" for a in cause["attempts"])
    return cause


# -- Route By Complexity ---------------------------------------------------------------------------------


def test_simple_prompt_goes_to_haiku(engine: LocalEngine, simple_record: dict[str, Any]) -> None:
    run = Run(engine, {"prompt": simple_record["prompt"], "request_id": "simple-1", "metadata": {"k": "v"}})
    out = check_output(run.result, status="answered", tier=Tier.HAIKU, attempts=[("haiku", "accepted", None)],
                       states=[*START, "Invoke Haiku", *SCORED, *DONE])
    assert out["answer"] == recorded(simple_record, Tier.HAIKU)
    assert out["confidence"] >= THRESHOLD
    assert (out["request_id"], out["metadata"]) == ("simple-1", {"k": "v"})
    assert out["classification"]["complexity"] == "simple"
    assert run.calls == {Tier.HAIKU: 1}
    # The whole premium estimate is the same tokens at Opus prices, so the saving is positive.
    assert out["cost"]["savings_usd"] > 0


@pytest.mark.parametrize("tier", [Tier.SONNET, Tier.OPUS])
def test_caller_tier_goes_straight_to_that_invoker(engine: LocalEngine, simple_record: dict[str, Any],
                                                   tier: Tier) -> None:
    run = Run(engine, {"prompt": simple_record["prompt"], "tier": tier.value})
    out = check_output(run.result, status="answered", tier=tier, attempts=[(tier.value, "accepted", None)],
                       states=[*START, INVOKE[tier], *SCORED, *DONE])
    assert out["answer"] == recorded(simple_record, tier)
    assert "caller override" in out["classification"]["reason"]
    assert run.calls == {tier: 1}


def test_moderate_prompt_goes_to_sonnet(engine: LocalEngine, moderate_record: dict[str, Any]) -> None:
    run = Run(engine, {"prompt": moderate_record["prompt"]})
    check_output(run.result, status="answered", tier=Tier.SONNET, attempts=[("sonnet", "accepted", None)],
                 states=[*START, "Invoke Sonnet", *SCORED, *DONE])


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({"prompt": "hi", "routing": {"min_tier": "opus", "max_tier": "haiku"}}, "routing.min_tier"),
        ({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}, "messages[1].role"),
        ({"prompt": "hi", "routing": {"max_cost_usd": 1e-9}}, "routing.max_cost_usd"),
        ({"prompt": "hi", "colour": "blue"}, "colour"),
        ("just a string", "(request)"),
    ],
    ids=["min-above-max", "last-turn-assistant", "budget-too-small", "unknown-field", "not-an-object"],
)
def test_invalid_request_is_rejected_without_calling_a_model(engine_with: Callable[..., LocalEngine], request_: Any,
                                                             field: str) -> None:
    engine = engine_with()  # fresh: its invocation counts are this run's only
    run = Run(engine, request_)
    result = run.result
    assert result.status == "FAILED"
    assert result.error == "Router.InvalidRequest"
    assert result.cause is not None and result.cause.startswith(f"{field}: ")
    assert result.states_entered == [*START, "Reject Invalid Request"]
    check_history(result)
    assert run.calls == {}
    assert engine.invocations == {"ClassifierFunction": 1}
    assert not set(engine.invocations) & set(INVOKER_FUNCTIONS.values())


def test_unpaired_surrogate_ends_in_invalid_request(engine: LocalEngine) -> None:
    result = engine.run({"prompt": "hello \ud800"})
    assert (result.status, result.error) == ("FAILED", "Router.InvalidRequest")


# -- escalation (Confident Enough?) ----------------------------------------------------------------------


def test_truncated_answers_escalate_haiku_sonnet_opus(engine_with: Callable[..., LocalEngine],
                                                      simple_record: dict[str, Any]) -> None:
    # A max_tokens stop costs 60%: 0.95 x 0.4 = 0.38 < 0.8 on Haiku and Sonnet; Opus answers in full.
    engine = engine_with(FAULT_INJECTION="haiku.truncated=1,sonnet.truncated=1")
    run = Run(engine, {"prompt": simple_record["prompt"]})
    out = check_output(
        run.result, status="answered", tier=Tier.OPUS,
        attempts=[("haiku", "escalated", None), ("sonnet", "escalated", None), ("opus", "accepted", None)],
        states=[*START, "Invoke Haiku", *SCORED, "Invoke Sonnet", *SCORED, "Invoke Opus", *SCORED, *DONE],
    )
    assert [a["stop_reason"] for a in out["attempts"]] == ["max_tokens", "max_tokens", "end_turn"]
    assert all(a["confidence"] < THRESHOLD for a in out["attempts"][:2])
    assert out["answer"] == recorded(simple_record, Tier.OPUS)
    # Opus answered, so the premium estimate is its real cost and escalation cost more than going straight there.
    assert out["cost"]["premium_estimate_usd"] == pytest.approx(out["attempts"][2]["cost_usd"], abs=1e-8)
    assert out["cost"]["savings_usd"] < 0
    assert run.calls == {Tier.HAIKU: 1, Tier.SONNET: 1, Tier.OPUS: 1}


def test_unsatisfiable_response_format_escalates_to_the_top_and_keeps_the_best(
    engine: LocalEngine, moderate_record: dict[str, Any]
) -> None:
    # Recorded GSM8K answers are prose: "not the JSON the response_format asks for" costs 85%, so every tier
    # scores <= 0.95 x 0.15 and the run ends at Opus with the best of the three (ties go to the later attempt).
    request = {"prompt": moderate_record["prompt"], "routing": {"strategy": "cascade"},
               "response_format": {"type": "object", "required": ["answer"],
                                   "properties": {"answer": {"type": "number"}}}}
    result = engine.run(request)
    assert result.status == "SUCCEEDED", result.cause
    confidences = [a["confidence"] for a in result.output["attempts"]]
    assert len(confidences) == 3 and max(confidences) <= 0.95 * 0.15 + 1e-9
    best = max(range(3), key=lambda i: (confidences[i], i))
    # Haiku and Sonnet were escalated; Opus, the last, is accepted or (if an earlier answer scored higher) superseded.
    expected = [(tier.value, "accepted" if i == best else "escalated" if i < 2 else "superseded", None)
                for i, tier in enumerate(Tier)]
    out = check_output(result, status="answered_low_confidence", tier=list(Tier)[best], attempts=expected,
                       states=[*START, "Invoke Haiku", *SCORED, "Invoke Sonnet", *SCORED, "Invoke Opus", *SCORED,
                               *DONE])
    assert out["answer"] == recorded(moderate_record, list(Tier)[best])
    assert "no higher tier left" in out["reason"]


def test_cascade_escalates_haiku_to_sonnet(engine: LocalEngine, moderate_record: dict[str, Any]) -> None:
    # A moderate request on Haiku starts from the gap-1 prior 0.78 < 0.8: the cascade always moves up once.
    run = Run(engine, {"prompt": moderate_record["prompt"], "routing": {"strategy": "cascade"}})
    out = check_output(run.result, status="answered", tier=Tier.SONNET,
                       attempts=[("haiku", "escalated", None), ("sonnet", "accepted", None)],
                       states=[*START, "Invoke Haiku", *SCORED, "Invoke Sonnet", *SCORED, *DONE])
    assert out["attempts"][0]["confidence"] <= 0.78
    assert out["classification"]["strategy"] == "cascade"
    assert out["answer"] == recorded(moderate_record, Tier.SONNET)


def test_static_strategy_does_not_escalate(engine_with: Callable[..., LocalEngine],
                                           simple_record: dict[str, Any]) -> None:
    engine = engine_with(FAULT_INJECTION="haiku.truncated=1")
    run = Run(engine, {"prompt": simple_record["prompt"], "tier": "haiku", "routing": {"strategy": "static"}})
    out = check_output(run.result, status="answered_low_confidence", tier=Tier.HAIKU,
                       attempts=[("haiku", "accepted", None)], states=[*START, "Invoke Haiku", *SCORED, *DONE])
    assert "escalation is off" in out["reason"]
    assert run.calls == {Tier.HAIKU: 1}


def test_max_tier_stops_escalation(engine: LocalEngine, moderate_record: dict[str, Any]) -> None:
    run = Run(engine, {"prompt": moderate_record["prompt"], "routing": {"strategy": "cascade", "max_tier": "haiku"}})
    out = check_output(run.result, status="answered_low_confidence", tier=Tier.HAIKU,
                       attempts=[("haiku", "accepted", None)], states=[*START, "Invoke Haiku", *SCORED, *DONE])
    assert "no higher tier left" in out["reason"]


def expected_haiku_cost(prompt: str) -> float:
    table = json.loads(resources.files("model_router.data").joinpath("prices.json").read_text())
    entry = table["models"][DEFAULT_MODEL_IDS[Tier.HAIKU].split(".", 1)[1]]
    factor = 1 + table["geo_premium"] if entry["geo_premium"] else 1
    tokens_in, tokens_out = math.ceil(len(prompt) / 4), 512  # the README's assumed output length
    return (tokens_in * entry["input"] + tokens_out * entry["output"]) * factor / 1e6


def test_budget_cap_stops_escalation(engine: LocalEngine, moderate_record: dict[str, Any]) -> None:
    # Sonnet's estimate is 3x Haiku's (prices.json), so a budget of 2x the Haiku estimate admits Haiku
    # and rules out any escalation, whatever Haiku actually spent.
    budget = round(2 * expected_haiku_cost(moderate_record["prompt"]), 8)
    run = Run(engine, {"prompt": moderate_record["prompt"],
                       "routing": {"strategy": "cascade", "max_cost_usd": budget}})
    out = check_output(run.result, status="budget_capped", tier=Tier.HAIKU, attempts=[("haiku", "accepted", None)],
                       states=[*START, "Invoke Haiku", *SCORED, *DONE])
    assert out["confidence"] < THRESHOLD
    assert "max_cost_usd" in out["reason"]
    assert out["cost"]["models_usd"] <= budget
    assert run.calls == {Tier.HAIKU: 1}


# -- failures: Retry, Catch, Record Failed Attempt, Fall Back Or Fail? ------------------------------------


def test_throttled_haiku_retries_then_falls_back_to_sonnet(engine_with: Callable[..., LocalEngine],
                                                           simple_record: dict[str, Any]) -> None:
    engine = engine_with(FAULT_INJECTION="haiku.throttle=1")
    run = Run(engine, {"prompt": simple_record["prompt"]})
    out = check_output(run.result, status="answered", tier=Tier.SONNET,
                       attempts=[("haiku", "failed", "ThrottlingException"), ("sonnet", "accepted", None)],
                       states=[*START, "Invoke Haiku", *FAILED, "Invoke Sonnet", *SCORED, *DONE])
    allowed = retries("Invoke Haiku", "ThrottlingException")
    assert allowed >= 1, "the ASL retries throttling"
    assert run.calls == {Tier.HAIKU: 1 + allowed, Tier.SONNET: 1}
    assert scheduled_per_state(run.result)["Invoke Haiku"] == 1 + allowed
    assert run.seconds < FAST_S, "Retry waits must be recorded, not slept"
    assert "injected" in out["attempts"][0]["error"]["message"]
    assert out["answer"] == recorded(simple_record, Tier.SONNET)


@pytest.mark.parametrize(("kind", "error"), [("throttle", "ThrottlingException"), ("timeout", "ModelTimeoutException"),
                                             ("not_ready", "ModelNotReadyException")])
def test_retry_waits_follow_the_retry_policy(engine_with: Callable[..., LocalEngine], simple_record: dict[str, Any],
                                             kind: str, error: str) -> None:
    engine = engine_with(FAULT_INJECTION=f"haiku.{kind}=1")
    run = Run(engine, {"prompt": simple_record["prompt"]})
    assert run.result.status == "SUCCEEDED"
    caps = wait_caps("Invoke Haiku", error)
    assert len(run.result.retry_waits_s) == len(caps) == retries("Invoke Haiku", error)
    for wait, cap in zip(run.result.retry_waits_s, caps, strict=True):
        assert 0 <= wait <= cap
    assert run.seconds < FAST_S


@pytest.mark.parametrize(
    ("kind", "error"),
    [("timeout", "ModelTimeoutException"), ("server_error", "ServiceUnavailableException"),
     ("not_ready", "ModelNotReadyException"), ("malformed", "ModelErrorException"),
     ("content_filtered", "ContentFilteredException")],
)
def test_each_failure_is_retried_as_the_asl_says_then_falls_back(engine_with: Callable[..., LocalEngine],
                                                                 simple_record: dict[str, Any], kind: str,
                                                                 error: str) -> None:
    engine = engine_with(FAULT_INJECTION=f"haiku.{kind}=1")
    run = Run(engine, {"prompt": simple_record["prompt"]})
    check_output(run.result, status="answered", tier=Tier.SONNET,
                 attempts=[("haiku", "failed", error), ("sonnet", "accepted", None)],
                 states=[*START, "Invoke Haiku", *FAILED, "Invoke Sonnet", *SCORED, *DONE])
    assert run.calls[Tier.HAIKU] == 1 + retries("Invoke Haiku", error)
    assert run.seconds < FAST_S


def test_context_overflow_escalates_and_is_not_retried(engine_with: Callable[..., LocalEngine],
                                                       simple_record: dict[str, Any]) -> None:
    engine = engine_with(FAULT_INJECTION="haiku.context_overflow=1")
    run = Run(engine, {"prompt": simple_record["prompt"]})
    check_output(run.result, status="answered", tier=Tier.SONNET,
                 attempts=[("haiku", "failed", "ContextWindowExceededException"), ("sonnet", "accepted", None)],
                 states=[*START, "Invoke Haiku", *FAILED, "Invoke Sonnet", *SCORED, *DONE])
    assert retries("Invoke Haiku", "ContextWindowExceededException") == 0
    assert run.calls == {Tier.HAIKU: 1, Tier.SONNET: 1}


def test_context_overflow_never_falls_back_down(engine_with: Callable[..., LocalEngine],
                                                simple_record: dict[str, Any]) -> None:
    # From Sonnet a larger window is Opus only; Haiku is lower and untried but must not be called.
    engine = engine_with(FAULT_INJECTION="sonnet.context_overflow=1")
    run = Run(engine, {"prompt": simple_record["prompt"], "tier": "sonnet"})
    check_output(run.result, status="answered", tier=Tier.OPUS,
                 attempts=[("sonnet", "failed", "ContextWindowExceededException"), ("opus", "accepted", None)],
                 states=[*START, "Invoke Sonnet", *FAILED, "Invoke Opus", *SCORED, *DONE])
    assert Tier.HAIKU not in run.calls


def test_context_overflow_on_opus_has_nowhere_to_go(engine_with: Callable[..., LocalEngine],
                                                    simple_record: dict[str, Any]) -> None:
    engine = engine_with(FAULT_INJECTION="opus.context_overflow=1")
    run = Run(engine, {"prompt": simple_record["prompt"], "tier": "opus"})
    cause = check_failure(run.result, error="Router.AllModelsFailed",
                          attempts=[("opus", "failed", "ContextWindowExceededException")],
                          states=[*START, "Invoke Opus", *FAILED, "All Models Failed"])
    assert "ContextWindowExceededException" in cause["message"]
    assert run.calls == {Tier.OPUS: 1}


def test_validation_exception_fails_fast(engine_with: Callable[..., LocalEngine],
                                         simple_record: dict[str, Any]) -> None:
    engine = engine_with(FAULT_INJECTION="validation=1")
    run = Run(engine, {"prompt": simple_record["prompt"], "request_id": "reject-1"})
    cause = check_failure(run.result, error="Router.ModelRequestRejected",
                          attempts=[("haiku", "failed", "ValidationException")],
                          states=[*START, "Invoke Haiku", *FAILED, "Reject Model Request"])
    assert cause["request_id"] == "reject-1"
    assert run.calls == {Tier.HAIKU: 1}


def test_all_models_failed_lists_every_attempt(engine_with: Callable[..., LocalEngine],
                                               simple_record: dict[str, Any]) -> None:
    engine = engine_with(FAULT_INJECTION="throttle=1")
    run = Run(engine, {"prompt": simple_record["prompt"], "request_id": "doomed-1"})
    cause = check_failure(
        run.result, error="Router.AllModelsFailed",
        attempts=[(t.value, "failed", "ThrottlingException") for t in Tier],  # up from Haiku first
        states=[*START, "Invoke Haiku", *FAILED, "Invoke Sonnet", *FAILED, "Invoke Opus", *FAILED,
                "All Models Failed"],
    )
    assert cause["request_id"] == "doomed-1"
    assert {a["model_id"] for a in cause["attempts"]} == set(DEFAULT_MODEL_IDS.values())
    each = 1 + retries("Invoke Haiku", "ThrottlingException")
    assert run.calls == {Tier.HAIKU: each, Tier.SONNET: each, Tier.OPUS: each}
    assert run.seconds < FAST_S


def test_a_scorer_crash_ends_in_a_structured_error_naming_the_paid_call(
        engine: LocalEngine, simple_record: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # A scorer Lambda that crashes or times out (on AWS: Sandbox.Timedout) after Haiku answered.
    def crash(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("scorer crashed")

    monkeypatch.setattr("model_router.steps.decide.score_answer", crash)
    run = Run(engine, {"prompt": simple_record["prompt"], "request_id": "unscored-1"})
    result = run.result
    assert (result.status, result.error) == ("FAILED", "Router.ScoringFailed")
    assert result.states_entered == [*START, "Invoke Haiku", "Score Answer", "Describe Scoring Failure",
                                     "Scoring Failed"]
    cause = result.cause_json()
    assert cause["request_id"] == "unscored-1"
    assert cause["error"] == "RuntimeError"
    paid = cause["unscored_attempt"]
    assert (paid["tier"], paid["model_id"]) == ("haiku", DEFAULT_MODEL_IDS[Tier.HAIKU])
    assert paid["cost_usd"] > 0 and paid["output_tokens"] > 0
    assert cause["earlier_attempts"] == []
    # The answer is the caller's data: it stays out of an error cause that lands in logs and consoles.
    assert recorded(simple_record, Tier.HAIKU)[:40] not in json.dumps(cause)
    assert run.calls == {Tier.HAIKU: 1}


def test_failure_from_sonnet_tries_opus_then_haiku(engine_with: Callable[..., LocalEngine],
                                                   moderate_record: dict[str, Any]) -> None:
    # Higher untried tiers come first, then lower ones (no answer yet, and the error is not a context overflow).
    engine = engine_with(FAULT_INJECTION="sonnet.server_error=1,opus.server_error=1")
    run = Run(engine, {"prompt": moderate_record["prompt"]})
    out = check_output(
        run.result, status="answered_low_confidence", tier=Tier.HAIKU,
        attempts=[("sonnet", "failed", "ServiceUnavailableException"),
                  ("opus", "failed", "ServiceUnavailableException"), ("haiku", "accepted", None)],
        states=[*START, "Invoke Sonnet", *FAILED, "Invoke Opus", *FAILED, "Invoke Haiku", *SCORED, *DONE],
    )
    assert out["confidence"] <= 0.78  # a moderate request on Haiku
    assert out["answer"] == recorded(moderate_record, Tier.HAIKU)


def test_fallback_disabled_fails_after_the_first_tier(engine_with: Callable[..., LocalEngine],
                                                      simple_record: dict[str, Any]) -> None:
    engine = engine_with(FAULT_INJECTION="haiku.malformed=1")
    run = Run(engine, {"prompt": simple_record["prompt"], "routing": {"fallback": False}})
    check_failure(run.result, error="Router.AllModelsFailed", attempts=[("haiku", "failed", "ModelErrorException")],
                  states=[*START, "Invoke Haiku", *FAILED, "All Models Failed"])
    assert run.calls == {Tier.HAIKU: 1}


def test_a_failed_fallback_keeps_the_earlier_answer(engine_with: Callable[..., LocalEngine],
                                                    moderate_record: dict[str, Any]) -> None:
    # Cascade: Haiku answers at <= 0.78 and escalates; Sonnet and Opus are throttled out; Haiku's answer stands.
    engine = engine_with(FAULT_INJECTION="sonnet.throttle=1,opus.throttle=1")
    run = Run(engine, {"prompt": moderate_record["prompt"], "routing": {"strategy": "cascade"}})
    out = check_output(
        run.result, status="answered_low_confidence", tier=Tier.HAIKU,
        attempts=[("haiku", "accepted", None), ("sonnet", "failed", "ThrottlingException"),
                  ("opus", "failed", "ThrottlingException")],
        states=[*START, "Invoke Haiku", *SCORED, "Invoke Sonnet", *FAILED, "Invoke Opus", *FAILED, *DONE],
    )
    assert out["answer"] == recorded(moderate_record, Tier.HAIKU)
    assert out["confidence"] == out["attempts"][0]["confidence"] < THRESHOLD
    assert "keeping the best answer" in out["reason"]
    assert run.seconds < FAST_S


# -- conversations ----------------------------------------------------------------------------------------


def test_multi_turn_mt_bench_conversation(engine: LocalEngine, mt_bench_record: dict[str, Any]) -> None:
    first, second = mt_bench_record["meta"]["turns"][:2]
    earlier = recorded(mt_bench_record, Tier.HAIKU)
    request = {"messages": [{"role": "user", "content": first}, {"role": "assistant", "content": earlier},
                            {"role": "user", "content": [{"text": second}]}], "system": "Be vivid."}
    result = engine.run(request)
    assert result.status == "SUCCEEDED", result.cause
    out: dict[str, Any] = result.output
    validate_result(out)
    check_history(result)
    tier = Tier(out["tier"])
    assert out["answer"] == mt_bench_record["meta"]["turn2_responses"][tier_model(mt_bench_record, tier)]
    assert all(a["outcome"] != "failed" for a in out["attempts"])
    # The whole conversation and the system prompt were sent, not only the last turn.
    sent = "\n".join([first, earlier, second]) + "\nBe vivid."
    assert out["attempts"][0]["input_tokens"] == math.ceil(len(sent) / 4)
    assert result.states_entered[:3] == [*START, INVOKE[Tier(out["attempts"][0]["tier"])]]


# -- every branch ---------------------------------------------------------------------------------------


def test_every_choice_branch_is_taken(engine: LocalEngine, engine_with: Callable[..., LocalEngine],
                                      simple_record: dict[str, Any], moderate_record: dict[str, Any]) -> None:
    simple, moderate = simple_record["prompt"], moderate_record["prompt"]
    runs = [
        (engine, {"prompt": simple}),
        (engine, {"prompt": simple, "tier": "sonnet"}),
        (engine, {"prompt": simple, "tier": "opus"}),
        (engine, {"prompt": "x", "tier": "emperor"}),
        (engine_with(FAULT_INJECTION="haiku.truncated=1,sonnet.truncated=1"), {"prompt": simple}),
        (engine_with(FAULT_INJECTION="throttle=1"), {"prompt": simple}),
        (engine_with(FAULT_INJECTION="sonnet.throttle=1,opus.throttle=1"), {"prompt": moderate}),
        (engine_with(FAULT_INJECTION="sonnet.throttle=1,opus.throttle=1"),
         {"prompt": moderate, "routing": {"strategy": "cascade"}}),
        (engine_with(FAULT_INJECTION="validation=1"), {"prompt": simple}),
        (engine_with(SHADOW_SAMPLE_RATE="1"), {"prompt": simple}),  # Shadow This Request? -> Start Shadow Evaluation
    ]
    taken: set[tuple[str, str]] = set()
    for eng, request in runs:
        entered = eng.run(request).states_entered
        taken |= {(a, b) for a, b in itertools.pairwise(entered) if STATES[a]["Type"] == "Choice"}
    assert taken == choice_edges()
