"""The logic behind each Lambda, one function per state-machine step.

Handlers in functions/ are thin: they parse the event, call one of these, and return its result.
"""

from __future__ import annotations

from typing import Any

from model_router.circuit import with_circuit_breaker
from model_router.contracts.request import valid_request_id, validate_request
from model_router.errors import InvalidRequest
from model_router.pricing import tier_prices
from model_router.providers import ModelProvider, tier_limit
from model_router.routing.plan import plan_route
from model_router.settings import Settings
from model_router.steps.decide import failure_step, score_step
from model_router.steps.invoke import invoke_model

__all__ = ["classify_step", "failure_step", "invoke_step", "score_step"]


def classify_step(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Validate the request and classify it. Invalid input becomes ``valid: false`` (the Choice rejects it)."""
    raw = event.get("request")
    default_id = event.get("execution_name")
    try:
        request = validate_request(raw, default_request_id=default_id)
        # Which tiers can answer at all (every tier on Bedrock; replay: those its source recorded a model for).
        limit = tier_limit(settings, request["messages"])
        classification, plan = plan_route(
            request,
            default_strategy=settings.default_strategy,
            default_threshold=settings.confidence_threshold,
            prices=tier_prices(settings.model_ids, settings.price_overrides),
            max_output_tokens=settings.max_output_tokens,
            available=limit.tiers if limit else None,
            unavailable_reason=limit.reason if limit else "",
        )
    except InvalidRequest as exc:
        # Echo the caller's id only when it is a valid one: an invalid id may be huge or hold anything.
        request_id = valid_request_id(raw.get("request_id")) if isinstance(raw, dict) else None
        return {
            "valid": False,
            "request_id": request_id or str(default_id or ""),
            "invalid": {"field": exc.field, "message": exc.message, "cause": f"{exc.field}: {exc.message}"},
        }
    return {
        "valid": True,
        "request_id": request["request_id"],
        "request": request,
        "classification": classification.to_dict(),
        "plan": plan,
        "route": {"tier": classification.tier.value},
        "attempts": [],
        "best": None,
    }


def invoke_step(event: dict[str, Any], settings: Settings, provider: ModelProvider) -> dict[str, Any]:
    """Call this function's tier (unless its circuit is open); returns the attempt (with the answer) for the scorer."""
    return invoke_model(event["request"], settings, with_circuit_breaker(provider, settings))
