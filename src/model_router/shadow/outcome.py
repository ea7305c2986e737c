"""One outcome record per shadowed request, in the recorded-outcomes format that eval and train read.

The format (contracts/schemas/outcome.schema.json) is the shared datasets' (``id``, ``source``, ``task``,
``prompt``, ``reference``, ``outcomes`` by model, ``complexity``, ``meta``) with the deployment's facts in
``meta``: its tier map, the route the router took, the judge, the sampler and its probability, the costs.

Privacy by default: unless ``StoreShadowPrompts`` is on, a record holds no prompt or answer text, only the
prompt's SHA-256, the router's own features (hashed prompt buckets: no text, though someone holding a
vocabulary could test whether a given word occurred) and the classifier's signals, scores, tokens and costs.

Stored as one JSONL object per request under ``<prefix>dt=<day>/<id>.jsonl``: the key is named by the
request, so a retried step rewrites the record instead of adding a second one, and a day's records are one
prefix (``model-router eval --dataset s3://bucket/outcomes/``). A Firehose stream would batch objects but
adds a service, a buffer delay and at-least-once duplicates for no gain at shadow volumes.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import Any

from model_router.contracts.request import prompt_text
from model_router.providers.base import provider_notes
from model_router.routing.learned import prompt_features
from model_router.settings import Settings
from model_router.tiers import DATA_TIER_NAMES, TIER_ORDER, Tier

FORMAT_VERSION = 1
GOOD_SCORE = 0.5  # as the shared data derives "complexity": a tier "solves" a request at score >= 0.5


def record_id(request_id: str) -> str:
    return "shadow-" + hashlib.sha256(request_id.encode("utf-8")).hexdigest()[:16]


def derived_complexity(scores: dict[Tier, float | None]) -> str:
    """simple: the economy tier solved it; moderate: the standard one did; complex: otherwise."""
    economy, standard = scores.get(Tier.HAIKU), scores.get(Tier.SONNET)
    if economy is None:
        return "unknown"
    if economy >= GOOD_SCORE:
        return "simple"
    if standard is not None and standard >= GOOD_SCORE:
        return "moderate"
    return "complex"


def shadow_answers(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Every tier's answer entry: the routed one (from ``best`` and its attempt) and the shadow ones."""
    best = state["best"]
    routed = next(a for a in state["attempts"] if a["attempt"] == best["attempt"])
    entries = [{**routed, "answer": best["answer"], "routed": True, "shadow": False}]
    for answer in state.get("answers") or []:
        entries.append({**answer, "routed": False, "shadow": True})
    return entries


def _error(entry: dict[str, Any]) -> str | None:
    if not entry.get("failed"):
        return None
    cause = entry.get("cause") or ""
    try:
        message = json.loads(cause).get("errorMessage", "")
    except (ValueError, AttributeError):
        message = ""
    return f"{entry.get('error')}: {message}"[:300] if message else str(entry.get("error"))


def outcome_record(state: dict[str, Any], settings: Settings, now: datetime.datetime) -> dict[str, Any]:
    """The record for one finished shadow: ``state`` is the shadow workflow's state after Judge Answers."""
    request, classification = state["request"], state["classification"]
    judged = state["verdicts"]["value"]
    verdicts: dict[str, Any] = judged["verdicts"]
    store_text = settings.store_shadow_prompts
    prompt = prompt_text(request)
    outcomes: dict[str, Any] = {}
    scores: dict[Tier, float | None] = {}
    for entry in shadow_answers(state):
        tier = Tier(entry["tier"])
        verdict = verdicts.get(tier.value) or {}
        error = _error(entry) or verdict.get("error")
        score = None if entry.get("failed") else verdict.get("score")
        scores[tier] = score
        model_id = entry.get("model_id") or settings.model_ids[tier]
        outcomes[model_id] = {
            "tier": tier.value,
            "score": None if score is None else round(float(score), 6),
            "response": entry.get("answer") if store_text and not entry.get("failed") else None,
            "input_tokens": int(entry.get("input_tokens") or 0),
            "output_tokens": int(entry.get("output_tokens") or 0),
            "cost_usd": float(entry.get("cost_usd") or 0.0),
            "latency_ms": float(entry.get("latency_ms") or 0.0),
            "routed": entry["routed"],
            "shadow": entry["shadow"],
            "error": error,
            "judged_by": verdict.get("judged_by"),
        }
    asked = {Tier(e["tier"]) for e in shadow_answers(state)}
    shadow_cost = sum(o["cost_usd"] for o in outcomes.values() if o["shadow"]) + judged["judge"]["cost_usd"]
    best = state["best"]
    router_model = classification.get("model") or {}
    features = {str(bucket): round(value, 6) for bucket, value in prompt_features(prompt).items()}
    notes = provider_notes(shadow_answers(state))
    if judged["judge"].get("note"):
        notes.append(judged["judge"]["note"])
    return {
        "id": record_id(state["request_id"]),
        "source": "shadow",
        "task": request.get("task_type") or classification["complexity"],
        "prompt": prompt if store_text else None,
        "reference": None,
        "outcomes": outcomes,
        "complexity": derived_complexity(scores),
        "meta": {
            "format_version": FORMAT_VERSION,
            "prompt_sha256": hashlib.sha256(prompt.encode("utf-8")).hexdigest(),
            "tiers": {name: (settings.model_ids[tier] if tier in asked else None)
                      for name, tier in DATA_TIER_NAMES.items()},
            "features": {"hashed": features, "signals": classification.get("signals", {})},
            "route": {
                "start_tier": state["attempts"][0]["tier"],
                "tier": best["tier"],
                "model_id": best["model_id"],
                "confidence": best["confidence"],
                "status": state.get("status") or "answered",
                "strategy": classification.get("strategy"),
                "attempts": len(state["attempts"]),
                "cost_usd": round(sum(a["cost_usd"] for a in state["attempts"]), 8),
                "premium_cost_usd": (state.get("cost") or {}).get("premium_estimate_usd"),
                # Which router model classified it (routing/arms.py): the champion / challenger split of the records.
                "arm": router_model.get("arm"),
                "model_version": router_model.get("version"),
            },
            "judge": judged["judge"],
            "sampler": state["shadow"]["sampler"],
            "sample_probability": state["shadow"]["probability"],
            "shadow_cost_usd": round(shadow_cost, 8),
            "router_execution": state.get("router_execution", ""),
            "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "notes": notes,
        },
    }


def outcome_key(settings: Settings, record: dict[str, Any]) -> str:
    day = record["meta"]["created_at"][:10]
    return f"{settings.shadow_outcomes_prefix}dt={day}/{record['id']}.jsonl"


def outcome_line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def tier_order_of(record: dict[str, Any]) -> list[Tier]:
    """The record's tiers, cheapest first."""
    present = {Tier(o["tier"]) for o in record["outcomes"].values()}
    return [t for t in TIER_ORDER if t in present]
