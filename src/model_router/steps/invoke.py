"""Call one tier's model and turn the reply into an attempt record."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from model_router.circuit import with_circuit_breaker
from model_router.model_features import DEFAULT_SERVICE_TIER, fit_cache_points, resolve_service_tier
from model_router.pricing import Price
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


def build_call(request: dict[str, Any], settings: Settings) -> tuple[ModelCall, Price, list[str]]:
    """The Converse call for this function's tier, the prices it is billed at (its service tier's) and notes on
    what the call leaves out that the request asked for (an undocumented service tier, cachePoint or ttl)."""
    assert settings.tier is not None, "invokers run with MODEL_TIER set"
    inference = dict(request.get("inference", {}))
    cap = settings.tier_max_output_tokens or TIER_MAX_OUTPUT_TOKENS  # this tier's cap (template parameter)
    inference["maxTokens"] = min(int(inference.get("maxTokens", settings.max_output_tokens)), cap)
    guardrail = None
    if settings.guardrail_id:
        guardrail = {"guardrailIdentifier": settings.guardrail_id,
                     "guardrailVersion": settings.guardrail_version or "DRAFT"}
    requested = request.get("routing", {}).get("service_tier", settings.default_service_tier)
    service_tier, price, tier_note = resolve_service_tier(settings.model_id, requested, settings.price_overrides,
                                                          settings.model_feature_overrides)
    messages, system, notes = fit_cache_points(request["messages"], request.get("system"), settings.model_id,
                                               settings.model_feature_overrides)
    call = ModelCall(
        tier=settings.tier,
        model_id=settings.model_id,
        messages=messages,
        system=system,
        inference=inference,
        guardrail=guardrail,
        service_tier=None if service_tier == DEFAULT_SERVICE_TIER else service_tier,
    )
    return call, price, notes + ([tier_note] if tier_note else [])


def invoke_model(request: dict[str, Any], settings: Settings, provider: ModelProvider) -> dict[str, Any]:
    """One Converse call; model errors propagate as the named exceptions the state machine matches."""
    call, price, notes = build_call(request, settings)
    reply = provider.converse(call)
    reply, cut_bytes = fit_answer(reply)
    writes = cache_writes(reply)
    cache_cost = price.cost(0, 0, reply.cache_read_tokens, writes)
    attempt: dict[str, Any] = {
        "tier": call.tier.value,
        "model_id": call.model_id,
        "answer": reply.text,
        "stop_reason": reply.stop_reason,
        "input_tokens": reply.input_tokens,
        "output_tokens": reply.output_tokens,
        "tokens_estimated": reply.tokens_estimated,
        "latency_ms": round(reply.latency_ms, 3),
        "cost_usd": round(price.cost(reply.input_tokens, reply.output_tokens) + cache_cost, 8),
        "cache_read_input_tokens": reply.cache_read_tokens,
        "cache_write_input_tokens": reply.cache_write_tokens,
        "cache_cost_usd": round(cache_cost, 8),
        "service_tier": reply.service_tier or call.service_tier or DEFAULT_SERVICE_TIER,
        "provider": reply.provider,
    }
    if notes:
        attempt["notes"] = notes
    if reply.recorded_model:
        attempt["recorded_model"] = reply.recorded_model
    if reply.note:
        attempt["note"] = reply.note
    if not reply.answer_recorded:
        attempt["answer_recorded"] = False
    if cut_bytes:
        attempt["answer_cut_bytes"] = cut_bytes
    return attempt


def cache_writes(reply: ModelReply) -> dict[str, int]:
    """The reply's cache writes by ttl: Bedrock's breakdown when it gives one (any remainder at 5m), else all at
    the 5-minute price."""
    by_ttl = dict(reply.cache_writes_by_ttl or {})
    rest = reply.cache_write_tokens - sum(by_ttl.values())
    if rest > 0:
        by_ttl["5m"] = by_ttl.get("5m", 0) + rest
    return by_ttl


def invoke_step(event: InvokerEvent, settings: Settings, provider: ModelProvider) -> dict[str, Any]:
    """Call this function's tier (unless its circuit is open); returns the attempt (with the answer) for the scorer.

    A shadow call still respects an open circuit (no load on a failing tier) but is not counted by the
    breaker: the shadow's traffic must not trip a tier for the callers."""
    return invoke_model(event.request, settings, with_circuit_breaker(provider, settings, count=not event.shadow))
