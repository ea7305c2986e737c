"""Which Bedrock features (prompt caching, service tiers) each model accepts, and what a call does without them.

The facts live in data/model_features.json, each with its AWS source and retrieval date, like the prices. A
feature the file does not record as documented counts as unsupported: a cachePoint is dropped, a ``1h`` ttl
becomes the 5-minute default, a service tier becomes ``default``; each leaves a note in the result and none is
an error. A deployment records a fact the file lacks with ``MODEL_FEATURE_OVERRIDES`` (a service tier together
with its prices: never priced by guess).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from model_router.pricing import Price, cache_prices, foundation_model_id, price_for

DEFAULT_SERVICE_TIER = "default"


@lru_cache(maxsize=1)
def feature_table() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        resources.files("model_router.data").joinpath("model_features.json").read_text())
    return data


@dataclass(frozen=True)
class CacheSupport:
    supported: bool
    ttls: tuple[str, ...] = ()
    max_checkpoints: int | None = None
    min_tokens_per_checkpoint: int | None = None


def _override(model_id: str, overrides: dict[str, Any] | None) -> dict[str, Any]:
    overrides = overrides or {}
    entry = overrides.get(model_id) or overrides.get(foundation_model_id(model_id)) or {}
    return dict(entry)


def cache_support(model_id: str, overrides: dict[str, Any] | None = None) -> CacheSupport:
    entry = _override(model_id, overrides).get("prompt_caching")
    if entry is None:
        entry = feature_table()["prompt_caching"]["models"].get(foundation_model_id(model_id))
    if not entry or entry.get("supported") is False:
        return CacheSupport(False)
    return CacheSupport(True, tuple(entry.get("ttls") or ("5m",)), entry.get("max_checkpoints"),
                        entry.get("min_tokens_per_checkpoint"))


def service_tier_price(model_id: str, service_tier: str, price_overrides: dict[str, dict[str, float]] | None = None,
                       feature_overrides: dict[str, Any] | None = None) -> Price | None:
    """The prices of ``service_tier`` on ``model_id``, or None when that tier is not documented for it."""
    if service_tier == DEFAULT_SERVICE_TIER:
        return price_for(model_id, price_overrides)
    entry = (_override(model_id, feature_overrides).get("service_tiers") or {}).get(service_tier)
    if entry is None:
        entry = ((feature_table()["service_tiers"]["models"].get(foundation_model_id(model_id)) or {})
                 .get(service_tier))
    if entry is None:
        return None
    return Price(float(entry["input"]), float(entry["output"]), f"{service_tier} tier", *cache_prices(entry))


def resolve_service_tier(model_id: str, requested: str, price_overrides: dict[str, dict[str, float]] | None = None,
                         feature_overrides: dict[str, Any] | None = None) -> tuple[str, Price, str | None]:
    """(the tier the call will use, its prices, a note when it fell back to default)."""
    price = service_tier_price(model_id, requested, price_overrides, feature_overrides)
    if price is not None:
        return requested, price, None
    note = (f"service tier {requested!r} is not documented for {model_id} (data/model_features.json, "
            f"retrieved {feature_table()['retrieved']}): served on default")
    return DEFAULT_SERVICE_TIER, price_for(model_id, price_overrides), note


def is_cache_point(block: dict[str, Any]) -> bool:
    return "cachePoint" in block


def fit_cache_points(messages: list[dict[str, Any]], system: list[dict[str, Any]] | None, model_id: str,
                     overrides: dict[str, Any] | None = None
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None, list[str]]:
    """The request's cachePoints as ``model_id`` accepts them: all of them where it documents prompt caching
    (a ttl it does not document becomes the 5-minute default), none where it does not. Returns the messages,
    the system blocks and the notes saying what changed."""
    blocks = [b for b in (system or []) if is_cache_point(b)]
    blocks += [b for m in messages for b in m["content"] if is_cache_point(b)]
    if not blocks:
        return messages, system, []
    support = cache_support(model_id, overrides)
    retrieved = feature_table()["retrieved"]
    if not support.supported:
        note = (f"prompt caching is not documented for {model_id} (data/model_features.json, retrieved "
                f"{retrieved}): its {len(blocks)} cachePoint(s) were not sent")
        kept_system = [b for b in system or [] if not is_cache_point(b)] or None
        kept = [{**m, "content": [b for b in m["content"] if not is_cache_point(b)]} for m in messages]
        return kept, kept_system, [note]
    unsupported = sorted({b["cachePoint"]["ttl"] for b in blocks
                          if b["cachePoint"].get("ttl") and b["cachePoint"]["ttl"] not in support.ttls})
    if not unsupported:
        return messages, system, []

    def fit(block: dict[str, Any]) -> dict[str, Any]:
        if is_cache_point(block) and block["cachePoint"].get("ttl") in unsupported:
            return {"cachePoint": {k: v for k, v in block["cachePoint"].items() if k != "ttl"}}
        return block

    note = (f"cachePoint ttl {', '.join(unsupported)} is not documented for {model_id} (data/model_features.json, "
            f"retrieved {retrieved}): sent without a ttl (the 5-minute default)")
    return ([{**m, "content": [fit(b) for b in m["content"]]} for m in messages],
            [fit(b) for b in system] if system else system, [note])
