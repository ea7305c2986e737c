"""Confidence signals of the heuristic scorer: prior by tier gap x (1 - penalty) per signal that fired.

The heuristic is what ``scoring.score_answer`` falls back to when the calibrated model
(``src/model_router/data/scorer_model.json``) is absent. These tests pin its arithmetic, so they run against
the fallback explicitly (the ``heuristic_scorer`` fixture); the calibrated scorer is tested in
test_scorer_calibration.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model_router.scoring import score as scoring
from model_router.scoring.logistic import sigmoid
from model_router.scoring.score import PRIOR_BY_GAP, score_answer
from model_router.tiers import Tier


@pytest.fixture(autouse=True, scope="module")
def heuristic_scorer() -> Iterator[None]:
    """No calibrated model: score_answer uses the heuristic fallback (module-scoped for hypothesis)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scoring, "load_scorer_model", lambda: None)
        yield

THRESHOLD = 0.8  # the default CONFIDENCE_THRESHOLD
PROMPT = "What is the capital of France?"
GOOD = "The capital of France is Paris."


def score(answer: str, *, stop_reason: str = "end_turn", tier: Tier = Tier.HAIKU, prompt: str = PROMPT,
          complexity: str = "simple", signals: dict[str, Any] | None = None,
          response_format: dict[str, Any] | None = None) -> Any:
    return score_answer(answer, stop_reason=stop_reason, tier=tier, prompt=prompt, complexity=complexity,
                        signals=signals or {}, response_format=response_format)


def test_a_clean_answer_keeps_the_prior_and_passes_the_threshold() -> None:
    result = score(GOOD)
    assert result.confidence == PRIOR_BY_GAP[0] == 0.95
    assert result.confidence >= THRESHOLD
    assert result.reasons == ["prior 0.95 (Haiku for a simple request)"]


@pytest.mark.parametrize("answer", ["", "   ", "\n\t"])
def test_empty_answer_scores_zero(answer: str) -> None:
    result = score(answer)
    assert result.confidence == 0.0
    assert result.reasons[-1] == "empty answer"


def test_guardrail_intervention_scores_zero() -> None:
    assert score("Sorry, I can't discuss that.", stop_reason="guardrail_intervened").confidence == 0.0


def test_truncation_at_max_tokens_drops_below_the_threshold() -> None:
    result = score(GOOD, stop_reason="max_tokens")
    assert result.confidence == pytest.approx(0.95 * 0.4)
    assert result.confidence < THRESHOLD
    assert any("truncated" in r for r in result.reasons)


@pytest.mark.parametrize("answer", [
    "I'm sorry, but I can't help with that request.",
    "As an AI language model, I am unable to browse the internet.",
    "Sorry, that is not something I can answer.",
])
def test_refusal_lowers_confidence(answer: str) -> None:
    result = score(answer)
    assert result.confidence <= 0.95 * 0.3 + 1e-9
    assert result.confidence < THRESHOLD
    assert any(r.startswith("refusal") for r in result.reasons)


def test_hedging_lowers_confidence() -> None:
    # Three hedges in ten words: density 3, penalty min(0.12 * 3, 0.45) = 0.36.
    result = score("I think it is probably Paris, but I'm not sure.")
    assert result.confidence == pytest.approx(0.95 * (1 - 0.36))
    assert result.confidence < THRESHOLD
    assert any("3 hedge(s)" in r for r in result.reasons)


def test_hedging_is_capped_at_45_percent() -> None:
    hedgy = "Probably. " * 20
    assert score(hedgy).confidence == pytest.approx(0.95 * 0.55)


def test_one_hedge_in_a_long_answer_is_a_small_penalty() -> None:
    long_answer = "Paris is the capital of France. " * 50 + "It is probably the best known."  # ~306 words
    result = score(long_answer)
    assert 0.95 * 0.88 < result.confidence < 0.95
    assert result.confidence >= THRESHOLD


def test_hedges_that_the_prompt_itself_contains_do_not_count() -> None:
    prompt = "Rewrite this sentence more formally: 'I think it is probably going to rain.'"
    assert score("It is likely that it will rain; I think so too.", prompt=prompt).confidence == 0.95


def test_an_answer_that_echoes_the_prompt_is_penalised() -> None:
    prompt = "Please summarise the following paragraph about the history of the Roman Empire in one line."
    result = score("  please summarise the following paragraph about the history\nof the Roman Empire ", prompt=prompt)
    assert result.confidence == pytest.approx(0.95 * 0.2)
    assert any("echoes the prompt" in r for r in result.reasons)
    # Short answers (<= 40 characters) are never treated as echoes.
    assert score("the following paragraph", prompt=prompt).confidence == 0.95


SCHEMA = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}},
          "additionalProperties": False}


@pytest.mark.parametrize(
    ("answer", "factor", "reason"),
    [
        ('{"city": "Paris"}', 1.0, "JSON matches response_format"),
        ('```json\n{"city": "Paris"}\n```', 1.0, "JSON matches response_format"),
        ('Here you go:\n```\n{"city": "Paris"}\n```', 1.0, "JSON matches response_format"),
        ('{"city": 75}', 0.25, "JSON breaks response_format"),
        ('{"city": "Paris", "country": "France"}', 0.25, "JSON breaks response_format"),
        ("The capital is Paris.", 0.15, "answer is not the JSON the response_format asks for"),
        ('```json\n{"city": "Paris",}\n```', 0.15, "answer is not the JSON the response_format asks for"),
    ],
    ids=["valid", "fenced json", "fenced plain", "wrong type", "extra key", "not json", "fenced invalid"],
)
def test_response_format(answer: str, factor: float, reason: str) -> None:
    result = score(answer, response_format=SCHEMA)
    assert result.confidence == pytest.approx(0.95 * factor)
    assert any(r.startswith(reason) for r in result.reasons), result.reasons
    assert (result.confidence >= THRESHOLD) == (factor == 1.0)


def test_json_is_only_checked_when_a_response_format_is_asked_for() -> None:
    assert score("The capital is Paris.").confidence == 0.95


MATH_PROMPT = "A shop sells 3 apples for 2 dollars. How much do 12 apples cost?"


@pytest.mark.parametrize(
    ("answer", "penalised"),
    [
        ("Twelve apples are four groups of three apples, so they cost four times as much.", True),
        ("#### 8", False),
        ("Four groups of three, so the answer is 8 dollars.", False),
        ("12 / 3 = 4 groups, 4 * 2 = 8", False),
        ("The total is **8**", False),
        ("The cost is \\boxed{8}.", False),
    ],
)
def test_numeric_question_without_a_final_number(answer: str, penalised: bool) -> None:
    result = score(answer, prompt=MATH_PROMPT, complexity="moderate", tier=Tier.SONNET, signals={"math": True})
    assert (result.confidence < 0.95) == penalised
    if penalised:
        assert result.confidence == pytest.approx(0.95 * 0.65)
        assert any("without a final number" in r for r in result.reasons)


def test_the_math_signal_needs_a_digit_in_the_prompt() -> None:
    result = score("It is an integral over the unit circle.", prompt="What is a contour integral?",
                   signals={"math": True})
    assert result.confidence == 0.95


def test_code_requested_but_missing() -> None:
    signals = {"code": True}
    assert score("Use the merge step of merge sort.", signals=signals).confidence == pytest.approx(0.95 * 0.7)
    assert score("```python\ndef merge(a, b): ...\n```", signals=signals).confidence == 0.95


def test_very_short_answer_to_a_long_hard_request() -> None:
    signals = {"prompt_tokens": 200}
    assert score("Yes, it works.", complexity="complex", tier=Tier.OPUS,
                 signals=signals).confidence == pytest.approx(0.95 * 0.7)
    # Not for simple requests, nor for short prompts.
    assert score("Yes, it works.", complexity="simple", signals=signals).confidence == 0.95
    assert score("Yes, it works.", complexity="complex", tier=Tier.OPUS,
                 signals={"prompt_tokens": 20}).confidence == 0.95


@pytest.mark.parametrize(
    ("complexity", "tier", "prior"),
    [
        ("simple", Tier.HAIKU, 0.95),
        ("simple", Tier.OPUS, 0.95),  # a tier above the one asked for is no gap
        ("moderate", Tier.HAIKU, 0.78),
        ("moderate", Tier.SONNET, 0.95),
        ("complex", Tier.HAIKU, 0.6),
        ("complex", Tier.SONNET, 0.78),
        ("complex", Tier.OPUS, 0.95),
    ],
)
def test_prior_by_tier_gap(complexity: str, tier: Tier, prior: float) -> None:
    result = score(GOOD, tier=tier, complexity=complexity)
    assert result.confidence == prior
    assert result.reasons[0].startswith(f"prior {prior:.2f} ({tier.label} for a {complexity} request)")


def test_a_tier_below_the_classification_never_passes_the_default_threshold_alone() -> None:
    # The cascade relies on this: Haiku's best confidence on a moderate request is 0.78 < 0.8.
    assert PRIOR_BY_GAP[1] < THRESHOLD and PRIOR_BY_GAP[2] < THRESHOLD <= PRIOR_BY_GAP[0]


def test_penalties_multiply() -> None:
    result = score("I'm sorry, I think it is probably Paris.", stop_reason="max_tokens")
    # truncation 0.6, refusal 0.7, then two hedges in eight words: min(0.24, 0.45).
    assert result.confidence == pytest.approx(round(0.95 * 0.4 * 0.3 * 0.76, 4))
    assert len(result.reasons) == 4


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    answer=st.text(max_size=600),
    prompt=st.text(max_size=200),
    stop_reason=st.sampled_from(["end_turn", "max_tokens", "stop_sequence", "guardrail_intervened", "tool_use"]),
    tier=st.sampled_from(list(Tier)),
    complexity=st.sampled_from(["simple", "moderate", "complex"]),
    signals=st.fixed_dictionaries({}, optional={"math": st.booleans(), "code": st.booleans(),
                                                "prompt_tokens": st.integers(0, 10_000)}),
    with_format=st.booleans(),
)
def test_confidence_is_always_within_0_and_1(answer: str, prompt: str, stop_reason: str, tier: Tier,
                                            complexity: str, signals: dict[str, Any], with_format: bool) -> None:
    result = score_answer(answer, stop_reason=stop_reason, tier=tier, prompt=prompt, complexity=complexity,
                          signals=signals, response_format=SCHEMA if with_format else None)
    assert 0.0 <= result.confidence <= 1.0
    assert result.confidence <= PRIOR_BY_GAP[0]
    assert result.reasons


def test_deeply_nested_json_answer_is_scored_not_crashed() -> None:
    result = score("[" * 2000 + "]" * 2000, response_format={"type": "array"})
    assert 0.0 <= result.confidence <= 1.0


def test_the_logistic_function_is_one_over_one_plus_exp_minus_z() -> None:
    """The one sigmoid of the runtime: the calibrated scorer and the learned router's calibration use it."""
    assert sigmoid(0.0) == 0.5
    assert sigmoid(math.log(3)) == pytest.approx(0.75, abs=1e-15)  # odds 3:1
    assert sigmoid(-math.log(3)) == pytest.approx(0.25, abs=1e-15)
    assert sigmoid(2.5) + sigmoid(-2.5) == pytest.approx(1.0, abs=1e-15)
    assert sigmoid(1000.0) == 1.0 and sigmoid(-1000.0) == 0.0  # no OverflowError at either end
