"""Classify Request: validate the request and pick a starting tier (no model call, but for the LLM classifier
of the strategies llm and learned+llm: routing/llm_classifier.py).

An invalid request is a result (``valid: false`` with the field and why), which the state machine's
Choice sends to the Fail state ``Router.InvalidRequest``; it is never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from model_router.contracts.request import validate_request
from model_router.errors import InvalidRequest
from model_router.model_features import cache_support
from model_router.pricing import tier_prices
from model_router.providers import tier_limit
from model_router.routing.arms import choose_model
from model_router.routing.llm_classifier import LlmClassifier
from model_router.routing.plan import plan_route
from model_router.settings import Settings
from model_router.steps.events import ClassifierEvent


def classify(event: ClassifierEvent, settings: Settings, llm: LlmClassifier | None = None) -> dict[str, Any]:
    """The workflow's initial state: the validated request, its classification, route and plan. ``llm``: the LLM
    classifier of the llm strategies (default: the deployment's; ``route`` gives one that never calls)."""
    try:
        request = validate_request(event.request, default_request_id=event.execution_name)
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
            # Champion or challenger (routing/arms.py): loaded on first use, by the learned router only.
            router_model=lambda: choose_model(settings, request["request_id"]).routed(),
            cacheable=frozenset(tier for tier, model_id in settings.model_ids.items()
                                if cache_support(model_id, settings.model_feature_overrides).supported),
            # Strategies llm and learned+llm only: asked (and paid for) when they run and need it.
            llm=llm or LlmClassifier(settings),
            llm_margin=settings.llm_classifier_margin,
        )
    except InvalidRequest as exc:
        return {
            "valid": False,
            "request_id": event.request_id or "",
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


def classify_step(event: Mapping[str, Any], settings: Settings, llm: LlmClassifier | None = None) -> dict[str, Any]:
    """:func:`classify` for callers outside a workflow (``model-router route``, benches), which pass
    ``{"request": ...}`` and maybe an ``execution_name`` to default the request id to."""
    return classify(ClassifierEvent(request=event.get("request"), execution_name=event.get("execution_name")),
                    settings, llm)
