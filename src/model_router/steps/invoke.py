"""Call one tier's model and turn the reply into an attempt record."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from model_router.circuit import with_circuit_breaker
from model_router.pricing import price_for
from model_router.providers import ModelCall, ModelProvider, ModelReply
from model_router.settings import Settings
from model_router.steps.events import InvokerEvent

# Largest maxTokens each current Claude tier accepts on Bedrock (Haiku/Sonnet/Opus 4.5: 64K).
TIER_MAX_OUTPUT_TOKENS = 64_000
# Step Functions caps the workflow state at 256 KiB. It holds the request (at most MAX_REQUEST_BYTES), the
# best answer so far and the newest one, so each answer may take at most this much of it (JSON-encoded).
MAX_ANSWER_BYTES = 56 * 1024


def fit_answer(reply: ModelReply) -> tuple[ModelReply, int]:
    """Cut an answer that would not fit the workflow state; returns the reply and the bytes cut (0 if none).

    A cut answer is reported like a max_tokens stop, so the scorer treats it as truncated.
    """
    size = _json_bytes(reply.text)
    if size <= MAX_ANSWER_BYTES:
        return reply, 0
    low, high = 0, len(reply.text)  # the longest prefix whose JSON encoding fits
    while low < high:
        mid = (low + high + 1) // 2
        if _json_bytes(reply.text[:mid]) <= MAX_ANSWER_BYTES:
            low = mid
        else:
            high = mid - 1
    text = reply.text[:low]
    return replace(reply, text=text, stop_reason="max_tokens"), size - _json_bytes(text)


def _json_bytes(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8"))


def build_call(request: dict[str, Any], settings: Settings) -> ModelCall:
    assert settings.tier is not None, "invokers run with MODEL_TIER set"
    inference = dict(request.get("inference", {}))
    cap = settings.tier_max_output_tokens or TIER_MAX_OUTPUT_TOKENS  # this tier's cap (template parameter)
    inference["maxTokens"] = min(int(inference.get("maxTokens", settings.max_output_tokens)), cap)
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
    reply, cut_bytes = fit_answer(reply)
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
    if reply.note:
        attempt["note"] = reply.note
    if not reply.answer_recorded:
        attempt["answer_recorded"] = False
    if cut_bytes:
        attempt["answer_cut_bytes"] = cut_bytes
    return attempt


def invoke_step(event: InvokerEvent, settings: Settings, provider: ModelProvider) -> dict[str, Any]:
    """Call this function's tier (unless its circuit is open); returns the attempt (with the answer) for the scorer.

    A shadow call still respects an open circuit (no load on a failing tier) but is not counted by the
    breaker: the shadow's traffic must not trip a tier for the callers."""
    return invoke_model(event.request, settings, with_circuit_breaker(provider, settings, count=not event.shadow))
