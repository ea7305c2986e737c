"""Call one tier's model and turn the reply into an attempt record."""

from __future__ import annotations

from typing import Any

from model_router.pricing import price_for
from model_router.providers import ModelCall, ModelProvider
from model_router.settings import Settings

# Largest maxTokens each current Claude tier accepts on Bedrock (Haiku/Sonnet/Opus 4.5: 64K).
TIER_MAX_OUTPUT_TOKENS = 64_000


def build_call(request: dict[str, Any], settings: Settings) -> ModelCall:
    assert settings.tier is not None, "invokers run with MODEL_TIER set"
    inference = dict(request.get("inference", {}))
    inference["maxTokens"] = min(int(inference.get("maxTokens", settings.max_output_tokens)), TIER_MAX_OUTPUT_TOKENS)
    guardrail = None
    if settings.guardrail_id:
        guardrail = {"guardrailIdentifier": settings.guardrail_id,
                     "guardrailVersion": settings.guardrail_version or "DRAFT"}
    return ModelCall(
        tier=settings.tier,
        model_id=settings.model_id,
        messages=request["messages"],
        system=request.get("system"),
        inference=inference,
        guardrail=guardrail,
    )


def invoke_model(request: dict[str, Any], settings: Settings, provider: ModelProvider) -> dict[str, Any]:
    """One Converse call; model errors propagate as the named exceptions the state machine matches."""
    call = build_call(request, settings)
    reply = provider.converse(call)
    price = price_for(call.model_id, settings.price_overrides)
    attempt: dict[str, Any] = {
        "tier": call.tier.value,
        "model_id": call.model_id,
        "answer": reply.text,
        "stop_reason": reply.stop_reason,
        "input_tokens": reply.input_tokens,
        "output_tokens": reply.output_tokens,
        "tokens_estimated": reply.tokens_estimated,
        "latency_ms": round(reply.latency_ms, 3),
        "cost_usd": round(price.cost(reply.input_tokens, reply.output_tokens), 8),
        "provider": reply.provider,
    }
    if reply.recorded_model:
        attempt["recorded_model"] = reply.recorded_model
    if not reply.answer_recorded:
        attempt["answer_recorded"] = False
    return attempt
