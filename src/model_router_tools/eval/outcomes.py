"""Evaluation against recorded outcomes: kept apart from serving.

The workflow never sees these numbers; the demo and the evaluation commands look them up afterwards
to say how good the routed answers were and what always-premium would have cost.
"""

from __future__ import annotations

from typing import Any

from model_router.pricing import Price, estimate_tokens
from model_router.tiers import PREMIUM_TIER, Tier
from model_router_tools.replay.datasets import tier_maps


def recorded_model(record: dict[str, Any], tier: Tier, dataset: str) -> str:
    return tier_maps(dataset)[record["source"]].models[tier]


def recorded_score(record: dict[str, Any], tier: Tier, dataset: str) -> float:
    """The recorded score in [0, 1] of the model that stands in for ``tier`` on this record."""
    return float(record["outcomes"][recorded_model(record, tier, dataset)]["score"])


def direct_cost(record: dict[str, Any], tier: Tier, price: Price, dataset: str) -> float:
    """Model cost of sending the record's prompt straight to ``tier`` (tokens estimated as ceil(chars/4))."""
    outcome = record["outcomes"][recorded_model(record, tier, dataset)]
    output = outcome.get("output_tokens") or estimate_tokens(outcome.get("response") or "")
    prompt = outcome.get("input_tokens") or estimate_tokens(record["prompt"])
    return price.cost(int(prompt), int(output))


def always_premium(record: dict[str, Any], prices: dict[Tier, Price], dataset: str) -> tuple[float, float]:
    """(quality, cost) of always using the premium tier for this record."""
    return (recorded_score(record, PREMIUM_TIER, dataset),
            direct_cost(record, PREMIUM_TIER, prices[PREMIUM_TIER], dataset))
