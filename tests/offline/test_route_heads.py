"""The learned router's gain and output-length heads, the cost-aware start rule, and serving = harness."""

from __future__ import annotations

import json
import math
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from synthetic import synthetic_records

from model_router.contracts.request import validate_request
from model_router.pricing import Price, tier_prices
from model_router.routing import learned
from model_router.routing.learned import RoutePrediction, TierModel, load_tier_model, predicted_tokens
from model_router.routing.plan import (
    EXPECTED_OUTPUT_TOKENS,
    REFERENCE_COST_USD,
    Features,
    cost_aware_start,
    cost_weight,
    expected_cost,
    plan_route,
)
from model_router.settings import DEFAULT_MODEL_IDS, Settings
from model_router.steps.decide import _affordable
from model_router.tiers import TIER_ORDER, Tier
from model_router_tools.eval.harness import Policy, add_learned, prepare, simulate
from model_router_tools.replay.datasets import sample_path

try:
    import sklearn  # noqa: F401

    HAVE_SKLEARN = True
except ImportError:  # pragma: no cover - the dev extra installs it
    HAVE_SKLEARN = False

needs_sklearn = pytest.mark.skipif(not HAVE_SKLEARN, reason='training needs the train extra: pip install -e ".[train]"')
PRICES = tier_prices(DEFAULT_MODEL_IDS)
FAST = {"c_grid": (1.0,), "smoothing_grid": (0.0,), "folds": 3, "alpha_grid": (1.0, 10.0)}


# --- the threshold -> cost weight map and the rule --------------------------------------------------------


def test_cost_weight_is_monotone_with_the_documented_ends() -> None:
    grid = [i / 100 for i in range(101)] + [1.01]
    weights = [cost_weight(t) for t in grid]
    assert math.isinf(weights[0])  # threshold 0: nothing is worth paying for
    assert all(a > b for a, b in pairwise(weights[:101]))  # strictly decreasing up to threshold 1
    assert weights[100] == 0.0 and weights[-1] == 0.0  # threshold 1 (and above): nothing is too expensive
    assert cost_weight(0.5) == pytest.approx(1 / REFERENCE_COST_USD)
    assert cost_weight(0.8) == pytest.approx(0.25 / REFERENCE_COST_USD)


def test_cost_aware_start_trades_utility_against_extra_cost() -> None:
    tiers = tuple(TIER_ORDER)
    utilities = {"haiku": 0.0, "sonnet": 0.05, "opus": 0.15}
    costs = {"haiku": 0.001, "sonnet": 0.003, "opus": 0.005}
    assert cost_aware_start(utilities, costs, tiers, 0.0) == Tier.HAIKU
    assert cost_aware_start(utilities, costs, tiers, 1.0) == Tier.OPUS
    # lam = 100 / USD at 0.5 and 50 / USD at 2/3: Opus 0.15 - 50 x 0.004 < 0 = Haiku; at 0.8 (25 / USD):
    # Opus 0.15 - 0.1 = 0.05 beats Sonnet 0.05 - 0.05 and Haiku.
    assert cost_weight(0.5) == pytest.approx(100) and cost_weight(2 / 3) == pytest.approx(50)
    assert cost_aware_start(utilities, costs, tiers, 0.5) == Tier.HAIKU
    assert cost_aware_start(utilities, costs, tiers, 2 / 3) == Tier.HAIKU
    assert cost_aware_start(utilities, costs, tiers, 0.8) == Tier.OPUS
    # Ties go to the cheaper tier; the choice only moves up as the threshold rises.
    assert cost_aware_start(dict.fromkeys(utilities, 0.1), costs, tiers, 1.0) == Tier.HAIKU
    picks = [cost_aware_start(utilities, costs, tiers, t / 50).rank for t in range(51)]
    assert picks == sorted(picks)


def test_cost_estimate_is_monotone_in_predicted_tokens_and_capped() -> None:
    features = Features.of(validate_request({"prompt": "How many legs has a spider?"}))
    price = Price(3.0, 15.0, "test")
    costs = [expected_cost(price, features, 2048, tokens) for tokens in (1, 10, 100, 1000, 2048, 5000)]
    assert costs == sorted(costs) and costs[0] < costs[-1]
    assert costs[-1] == costs[-2]  # capped at max_tokens
    assert expected_cost(price, features, 2048) == price.cost(features.input_tokens, EXPECTED_OUTPUT_TOKENS)
    assert predicted_tokens(math.log1p(99)) == 99
    assert predicted_tokens(-5.0) == learned.MIN_PREDICTED_TOKENS
    assert predicted_tokens(1e9) == learned.MAX_PREDICTED_TOKENS


# --- training the heads ---------------------------------------------------------------------------------


def _synthetic(n: int = 300, seed: int = 2) -> list[dict[str, Any]]:
    """'hard' prompts: economy fails, premium mostly succeeds, answers are long; 'easy': everyone succeeds,
    answers are short. GSM8K-like records carry answer texts (so lengths are learned from them)."""
    return synthetic_records(n, seed, sonnet_rate=0.5, hard_answer="step " * 400, easy_answer="yes ",
                             tasks=("gsm8k", "mmlu"))


@pytest.fixture(scope="module")
def synthetic_doc() -> dict[str, Any]:
    if not HAVE_SKLEARN:
        pytest.skip("training needs the train extra")
    from model_router_tools.training.router import train_tier_model

    return train_tier_model(_synthetic(), seed=1, **FAST)  # type: ignore[arg-type]


@needs_sklearn
def test_heads_are_trained_stored_and_predict_every_tier(synthetic_doc: dict[str, Any]) -> None:
    assert set(synthetic_doc["gain_heads"]) == {"sonnet", "opus"}
    assert set(synthetic_doc["token_heads"]) == {t.value for t in TIER_ORDER}
    assert synthetic_doc["gain_heads"]["sonnet"]["sources"] == ["llmrouter"]  # RouteLLM borrows Sonnet
    assert synthetic_doc["start_rule"]["rule"] in ("margin", "cost")
    model = TierModel.from_document(json.loads(json.dumps(synthetic_doc)))
    prediction = model.predict_route("A hard question number 999 about owls?")
    assert isinstance(prediction, RoutePrediction)
    for part in (prediction.probabilities, prediction.gains, prediction.output_tokens, prediction.utilities):
        assert set(part) == {t.value for t in TIER_ORDER}
    assert all(isinstance(v, int) and v >= 1 for v in prediction.output_tokens.values())
    assert prediction.gains["haiku"] == 0.0
    # The success heads are the same numbers predict() gives.
    assert prediction.probabilities == model.predict("A hard question number 999 about owls?")


@needs_sklearn
def test_heads_learn_gain_and_length(synthetic_doc: dict[str, Any]) -> None:
    model = TierModel.from_document(synthetic_doc)
    hard = model.predict_route("A hard question number 999 about owls?")
    easy = model.predict_route("An easy question number 999 about owls?")
    assert hard.gains["opus"] > easy.gains["opus"] + 0.3
    # Hard answers are long (gsm8k estimate 220 tokens, 400-word texts); easy ones short (60, 1 word).
    assert hard.output_tokens["opus"] > 2 * easy.output_tokens["opus"]


@needs_sklearn
def test_heads_are_deterministic(synthetic_doc: dict[str, Any]) -> None:
    from model_router_tools.training.router import dumps_model, train_tier_model

    again = train_tier_model(list(reversed(_synthetic())), seed=1, **FAST)  # type: ignore[arg-type]
    assert dumps_model(again) == dumps_model(synthetic_doc)
    model = TierModel.from_document(synthetic_doc)
    assert model.predict_route("An easy one about tides?") == model.predict_route("An easy one about tides?")


# --- serving and the harness pick the same tier ---------------------------------------------------------


@pytest.fixture
def cost_rule_model(synthetic_doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> TierModel:
    """The synthetic model with the cost-aware rule (blend 0.5), served as the shipped model."""
    doc = dict(synthetic_doc, start_rule={"rule": "cost", "blend": 0.5})
    model = TierModel.from_document(doc)
    assert model.rule == "cost"
    monkeypatch.setattr(learned, "load_tier_model", lambda path=None: model)
    return model


def _plan(prompt: str, threshold: float, **routing: Any) -> tuple[Any, dict[str, Any]]:
    request = validate_request({"prompt": prompt, "routing": {"strategy": "learned",
                                                               "confidence_threshold": threshold, **routing}})
    return plan_route(request, default_strategy="learned", default_threshold=0.8, prices=PRICES,
                      max_output_tokens=2048)


@needs_sklearn
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.6, 0.8, 0.9, 0.96, 1.0])
def test_serving_and_harness_pick_the_same_start_tier(cost_rule_model: TierModel, threshold: float) -> None:
    cases = prepare([str(sample_path())], prices=PRICES, split="all")[::25]
    add_learned(cases, cost_rule_model, PRICES)
    for case in cases:  # the start tier is all this test compares: the scorer accepts the first answer
        case.confidence["learned"] = dict.fromkeys(case.tiers, 1.0)
    policy = Policy("learned", "", "learned", prior="learned", strategy="learned")
    picked = []
    for case in cases:
        classification, _ = _plan(case.prompt, threshold, tiers=[t.value for t in case.tiers])
        assert case.utilities["learned"]  # the harness took the cost-aware rule too
        assert classification.tier == simulate(case, policy, threshold).attempts[0]
        picked.append(classification.tier)
    if threshold == 0.0:
        assert all(t == case.tiers[0] for t, case in zip(picked, cases, strict=True))


@needs_sklearn
def test_classification_records_the_numbers_not_the_prompt(cost_rule_model: TierModel) -> None:
    prompt = "A hard question number 4242 about volcanoes?"
    classification, _ = _plan(prompt, 0.8)
    estimates = classification.route_estimates
    assert estimates is not None and estimates["rule"] == "cost"
    assert estimates["lambda_per_usd"] == pytest.approx(cost_weight(0.8))
    assert set(estimates["expected_output_tokens"]) == {t.value for t in TIER_ORDER}
    assert set(estimates["expected_cost_usd"]) == set(estimates["utilities"]) == {t.value for t in TIER_ORDER}
    assert "per USD" in classification.reason and "out tokens" in classification.reason
    assert "volcanoes" not in classification.reason and "volcanoes" not in json.dumps(estimates)
    json.dumps(classification.to_dict(), allow_nan=False)  # JSON (no infinities) for the state machine
    at_zero, _ = _plan(prompt, 0.0)
    assert at_zero.tier == Tier.HAIKU and at_zero.route_estimates["lambda_per_usd"] is None


@needs_sklearn
def test_budget_checks_use_the_predicted_output_length(cost_rule_model: TierModel) -> None:
    prompt = "An easy question number 31 about coffee?"
    classification, _ = _plan(prompt, 1.0)
    tokens = classification.route_estimates["expected_output_tokens"]
    assert tokens["haiku"] < EXPECTED_OUTPUT_TOKENS
    features = Features.of(validate_request({"prompt": prompt}))
    predicted = expected_cost(PRICES[Tier.HAIKU], features, 2048, tokens["haiku"])
    constant = expected_cost(PRICES[Tier.HAIKU], features, 2048)
    budget = (predicted + constant) / 2  # affordable with the prediction, not with the constant
    capped, plan = _plan(prompt, 1.0, max_cost_usd=budget, tiers=["haiku"])
    assert capped.tier == Tier.HAIKU
    # The Scorer step's budget check reads the same estimate from the classification.
    state = {"plan": plan, "classification": capped.to_dict(), "attempts": []}
    fits, cut = _affordable(state, [Tier.HAIKU], Settings.from_mapping({}))
    assert fits == [Tier.HAIKU] and not cut
    state["classification"]["route_estimates"] = None
    assert _affordable(state, [Tier.HAIKU], Settings.from_mapping({}))[0] == []


# --- the shipped model ----------------------------------------------------------------------------------


def test_shipped_model_is_small_and_has_every_head() -> None:
    path = learned.default_model_path()
    assert path.stat().st_size < 1_000_000
    model = load_tier_model()
    assert model is not None
    assert set(model.token_tiers) == set(model.tiers) == {t.value for t in TIER_ORDER}
    assert model.gain_tiers == ["sonnet", "opus"]
    prediction = model.predict_route("Natalia sold clips to 48 of her friends in April. How many clips?")
    assert all(1 <= v <= learned.MAX_PREDICTED_TOKENS for v in prediction.output_tokens.values())


def test_no_absolute_paths_in_the_provenance() -> None:
    note = Path(learned.default_model_path()).with_name("router_model.md").read_text()
    assert str(Path.cwd().resolve()) not in note and "start rule" in note.lower()
