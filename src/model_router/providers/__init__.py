"""Model providers behind one interface: Bedrock Converse, replay of recorded outcomes, fault injection."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from model_router.providers.base import ModelCall, ModelProvider, ModelReply, TierLimit
from model_router.settings import Settings

__all__ = ["ModelCall", "ModelProvider", "ModelReply", "TierLimit", "provider_for", "tier_limit"]


@lru_cache(maxsize=16)
def _cached(kind: str, dataset: str | None, region: str | None, connect: float, read: float,
            faults: str | None, outcome_only: bool, borrowed_tiers: bool) -> ModelProvider:
    provider: ModelProvider
    if kind == "replay":
        from model_router_tools.replay.provider import ReplayProvider

        provider = ReplayProvider(dataset, outcome_only=outcome_only, borrowed_tiers=borrowed_tiers)
    else:
        from model_router.providers.bedrock import BedrockConverseProvider

        provider = BedrockConverseProvider(region=region, connect_timeout_s=connect, read_timeout_s=read)
    if faults:
        from model_router_tools.faults.provider import FaultInjectingProvider, FaultPlan

        provider = FaultInjectingProvider(provider, FaultPlan.parse(faults))
    return provider


def provider_for(settings: Settings) -> ModelProvider:
    """One provider (and so one boto3 client) per container and configuration."""
    return _cached(
        settings.model_provider,
        settings.replay_dataset,
        settings.bedrock_region,
        settings.bedrock_connect_timeout_s,
        settings.bedrock_read_timeout_s,
        settings.fault_injection,
        settings.replay_outcome_only,
        settings.replay_borrowed_tiers,
    )


def tier_limit(settings: Settings, messages: list[dict[str, Any]]) -> TierLimit | None:
    """The tiers the configured provider can answer ``messages`` on, when not every tier (None: all of them).

    Classify Request asks this before it picks a start tier, so every way into the workflow (a direct
    execution, a batch line, the demo, an evaluation run) routes between the same tiers. Bedrock serves
    every deployed tier: answered here without building its client, so the classifier stays cheap. Other
    providers may implement ``available_tiers`` (base.LimitsTiers); the fault injector is left out, it
    changes how calls fail, not which tiers exist.
    """
    if settings.model_provider == "bedrock":
        return None
    provider = _cached(settings.model_provider, settings.replay_dataset, settings.bedrock_region,
                       settings.bedrock_connect_timeout_s, settings.bedrock_read_timeout_s, None,
                       settings.replay_outcome_only, settings.replay_borrowed_tiers)
    hook = getattr(provider, "available_tiers", None)
    limit: TierLimit | None = hook(messages) if hook is not None else None
    return limit


def reset_providers() -> None:
    """Forget cached providers (tests and the local engine use this between runs)."""
    _cached.cache_clear()
